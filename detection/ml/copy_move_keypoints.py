"""Copy-move detection for copies that were rotated or scaled on the way, which block matching (copy_move.py,
equal blocks at one shift) cannot see; copies only moved are left to block matching. After Amerini et al.
(2011): SIFT keypoints of the image matched against the same image (generalised 2-nearest-neighbour test), the
matched pairs grouped by one similarity transform each (rotation, scale, shift; RANSAC), and every group
verified by mapping one place onto the other and comparing the pixels, so that anatomy that merely looks alike
(ribs, vertebrae) is not reported.

A mirror image is not a similarity transform: the left and right halves of a chest do not match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from detection.ml.copy_move import scaled

MAX_SIDE = 2048  # larger images are read shrunk: keypoints need no more, and SIFT's time grows with the area
FEATURES = 6000
CONTRAST = 0.02  # SIFT's default (0.04) finds few keypoints in soft tissue
NEIGHBOURS = 6
RATIO = 0.6  # g2NN: a neighbour is a match while its distance is under RATIO of the next one's
MIN_SHIFT = 24  # pixels between the two keypoints of a pair
MIN_INLIERS = 8  # pairs agreeing on one transform
RANSAC_PX = 3.0
MAX_GROUPS = 4
SCALES = (0.5, 2.0)  # a copy shrunk or enlarged beyond these is not looked for
MIN_SIDE = 24  # pixels: a smaller place is a repeated mark more often than a hidden finding
MIN_CORRELATION = 0.85  # of the pixels of both places once one is mapped onto the other
MIN_COMPARED = 16 * 16  # pixels inside the matches' hull: fewer say little
MIN_STD = 5.0  # grey levels: flat places (air, saturation) correlate with anything
# A copy neither turned nor resized is the block matcher's (copy_move.py), which skips burned-in text: repeated
# letters of a date or a marker are the same content twice, and their keypoints match.
MIN_DEGREES, MIN_RESIZE = 1.0, 0.02


@dataclass(frozen=True)
class TransformedCopy:
    """The same content at two places of one image, one mapped onto the other by a rotation and a scaling.
    Boxes are x, y, width, height in the image's pixels."""

    first: tuple[int, int, int, int]
    second: tuple[int, int, int, int]
    rotation: float  # degrees, counter-clockwise on screen
    scale: float  # size of ``second`` / size of ``first``
    matches: int  # keypoint pairs that agree on the transform
    correlation: float

    def as_dict(self) -> dict:
        shift = [self.second[1] - self.first[1], self.second[0] - self.first[0]]
        return {"shift": shift, "first": list(self.first), "second": list(self.second), "blocks": self.matches,
                "rotation": round(self.rotation, 1), "scale": round(self.scale, 3)}  # fmt: skip


def find_transformed_copies(grey: np.ndarray) -> list[TransformedCopy]:
    """Copies turned or resized on the way in an 8-bit greyscale image, most matches first."""
    if grey.ndim != 2 or min(grey.shape) < 4 * MIN_SIDE:
        return []
    factor = max(1.0, max(grey.shape) / MAX_SIDE)
    small = cv2.resize(grey, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA) if factor > 1 else grey
    points, pairs = _matched_pairs(np.ascontiguousarray(small, dtype=np.uint8))
    found = []
    for matrix, agreeing in _transforms(points, pairs):
        if (copy := _verified(small, matrix, points[agreeing[:, 0]], points[agreeing[:, 1]])) is not None:
            found.append(_scaled(copy, factor))
    return sorted(found, key=lambda c: -c.matches)


def _matched_pairs(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keypoint positions (n, 2) as x, y; pairs (m, 2) of indices whose descriptors match)."""
    sift = cv2.SIFT_create(nfeatures=FEATURES, contrastThreshold=CONTRAST)
    keypoints, descriptors = sift.detectAndCompute(grey, None)
    if descriptors is None or len(keypoints) < 2 * MIN_INLIERS:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), int)
    points = np.array([k.pt for k in keypoints], np.float32)
    pairs = set()
    for i, neighbours in enumerate(cv2.BFMatcher(cv2.NORM_L2).knnMatch(descriptors, descriptors, k=NEIGHBOURS + 1)):
        others = [m for m in neighbours if m.trainIdx != i]  # itself (distance 0), wherever it sorted
        for near, far in zip(others, others[1:], strict=False):
            if near.distance >= RATIO * far.distance:
                break
            j = near.trainIdx
            if np.hypot(*(points[i] - points[j])) >= MIN_SHIFT:
                pairs.add((min(i, j), max(i, j)))
    return points, np.array(sorted(pairs), int).reshape(-1, 2)


def _transforms(points: np.ndarray, pairs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Similarity transforms (2 x 3, mapping a pair's first point onto its second) each agreed on by enough
    pairs, with those pairs in the transform's direction. A pair's two points come in no order: both directions
    are offered and RANSAC keeps the one its transform explains."""
    out = []
    oriented = np.concatenate([pairs, pairs[:, ::-1]])
    left = np.ones(len(oriented), bool)
    while len(out) < MAX_GROUPS and left.sum() >= MIN_INLIERS:
        candidates = np.flatnonzero(left)
        src, dst = points[oriented[candidates, 0]], points[oriented[candidates, 1]]
        matrix, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                                   maxIters=4000, confidence=0.995)
        if matrix is None or mask is None or mask.sum() < MIN_INLIERS:
            break
        inliers = candidates[mask.ravel().astype(bool)]
        left[inliers % len(pairs)] = left[inliers % len(pairs) + len(pairs)] = False  # both directions used up
        scale = math.hypot(matrix[0, 0], matrix[1, 0])
        if SCALES[0] <= scale <= SCALES[1]:
            out.append((matrix, oriented[inliers]))
    return out


def _verified(grey: np.ndarray, matrix: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> TransformedCopy | None:
    """The copy the matched keypoints outline, if its pixels agree once the first place is mapped onto the
    second; None for look-alikes."""
    rotation = -math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))  # image y points down
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    if abs(rotation) < MIN_DEGREES and abs(scale - 1) < MIN_RESIZE:
        return None  # only moved: block matching's
    first, second = _box(sources, grey.shape), _box(targets, grey.shape)
    if min(first[2:] + second[2:]) < MIN_SIDE or _overlap(first, second):
        return None
    size = (grey.shape[1], grey.shape[0])
    mapped = cv2.warpAffine(grey, matrix, size, flags=cv2.INTER_LINEAR)
    # Compared where the matches are (their hull at the second place): the boxes also hold what surrounds a
    # rotated copy, which was not copied.
    where = np.zeros_like(grey)
    cv2.fillConvexPoly(where, cv2.convexHull(np.rint(targets).astype(np.int32)), 1)
    where &= cv2.warpAffine(np.ones_like(grey), matrix, size, flags=cv2.INTER_NEAREST)  # mapped from inside
    a, b = mapped[where > 0].astype(np.float32), grey[where > 0].astype(np.float32)
    if a.size < MIN_COMPARED or a.std() < MIN_STD or b.std() < MIN_STD:
        return None
    correlation = float(np.corrcoef(a, b)[0, 1])
    if correlation < MIN_CORRELATION:
        return None
    return TransformedCopy(first=first, second=second, rotation=rotation, scale=scale, matches=len(sources),
                           correlation=correlation)


def _box(points: np.ndarray, shape: tuple[int, ...], margin: int = 8) -> tuple[int, int, int, int]:
    x0, y0 = np.maximum(points.min(axis=0) - margin, 0).astype(int)
    x1 = int(min(points[:, 0].max() + margin, shape[1]))
    y1 = int(min(points[:, 1].max() + margin, shape[0]))
    return int(x0), int(y0), x1 - int(x0), y1 - int(y0)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """More than half of the smaller box inside the other: a texture matching itself nearby, not a copy."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    height = max(0, min(ay + ah, by + bh) - max(ay, by))
    return width * height > 0.5 * min(aw * ah, bw * bh)


def _scaled(copy: TransformedCopy, factor: float) -> TransformedCopy:
    def box(b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        return tuple(round(v * factor) for v in b)  # type: ignore[return-value]

    return replace(copy, first=box(copy.first), second=box(copy.second))


def with_transformed_copies(regions: list[dict], grey: np.ndarray, factor: int = 1) -> list[dict]:
    """``regions`` (the block matcher's, as dicts, boxes in the image's own pixels) followed by the copies
    found here that they do not already hold; ``grey`` is the image read shrunk by ``factor``."""
    out = list(regions)
    for copy in find_transformed_copies(grey):
        region = scaled(copy.as_dict(), factor)
        if not any(_same_places(region, found) for found in out):
            out.append(region)
    return out


def _same_places(a: dict, b: dict) -> bool:
    """Both boxes of ``a`` overlap the two boxes of ``b`` (in either order): one copy found twice."""
    def overlaps(p: list[int], q: list[int]) -> bool:
        return p[0] < q[0] + q[2] and q[0] < p[0] + p[2] and p[1] < q[1] + q[3] and q[1] < p[1] + p[3]

    return any(overlaps(a["first"], one) and overlaps(a["second"], other)
               for one, other in ((b["first"], b["second"]), (b["second"], b["first"])))


def transform_changes(region: dict) -> str:
    """How a copy was changed on the way, when it was: "turned 30 degrees, resized x1.20", else ""."""
    if "rotation" not in region:
        return ""
    changes = ([f"turned {abs(region['rotation']):.0f} degrees"] if abs(region["rotation"]) >= MIN_DEGREES else []) + \
        ([f"resized x{region['scale']:.2f}"] if abs(region["scale"] - 1) >= MIN_RESIZE else [])
    return ", ".join(changes)


def transform_words(region: dict) -> str:
    """The same in brackets after a sentence: " (turned 30 degrees, resized x1.20)", else ""."""
    return f" ({changes})" if (changes := transform_changes(region)) else ""
