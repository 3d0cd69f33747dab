"""Evaluation: the copy-move detector (detection/ml/copy_move.py) on real slices, as a claim would carry them.

Genuine images: every slice of the shared 99-slice chest CT and the LIDC-IDRI slice (another patient and
scanner), rendered in the lung window. Clones: detection.ml.simulator.copy_move_2d (a square of 5-17 % of the
side copied elsewhere) on the held-out slices z 3, 9, 15, ... (the constants were chosen on z 0, 6, 12, ...),
two per slice (seed 2027: clones not seen while choosing them). Burned-in text (letters repeated on a flat
background) is checked on every 11th slice at three sizes. Splicing and retouching (simulator.splice_2d,
retouch_2d) are not copy-moves: their rate shows what else the detector reacts to. Copies that were also
turned (up to 45 degrees) and resized (0.8-1.25 x) on the way (copy_move_transformed_2d, 10-30 % of the side)
are made on the same held-out slices (seed 2028). Each image is checked as PNG and as JPEG at quality 90 and
75. Prints one table and the time per image. ``--keypoints``: with the keypoint check for turned or resized
copies (detection/ml/copy_move_keypoints.py) after the block matcher, as claims and radiographs run them.

    .venv/bin/python scripts/eval_copy_move.py [--keypoints]
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from detection.ml.copy_move import find_copy_moves  # noqa: E402
from detection.ml.copy_move_keypoints import with_transformed_copies  # noqa: E402
from detection.ml.preprocessing import dicom_to_hu, load_volume, window  # noqa: E402
from detection.ml.simulator import copy_move_2d, copy_move_transformed_2d, retouch_2d, splice_2d  # noqa: E402

DATA = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data"))


def lung(hu: np.ndarray) -> np.ndarray:
    return np.rint(window(hu, "lung") * 255).astype(np.uint8)


def as_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


def with_text(image: np.ndarray, size: int) -> np.ndarray:
    """Burned-in text as exports carry it (a date, window and side markers): repeated letters, not a clone."""
    out = Image.fromarray(image)
    draw, font = ImageDraw.Draw(out), ImageFont.truetype(FONT, size)
    draw.text((10, 10), "2010-02-20 10:20:20", fill=255, font=font)
    draw.text((10, image.shape[0] - size - 10), "R  W 1500 L -600  R", fill=255, font=font)
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keypoints", action="store_true")
    args = parser.parse_args()

    def copies(image: np.ndarray) -> list[dict]:
        found = [clone.as_dict() for clone in find_copy_moves(image)]
        return with_transformed_copies(found, image) if args.keypoints else found

    vol, _ = load_volume(DATA / "cptac-lscc-C3N-00247-chest-ct")
    ct = [lung(vol[z]) for z in range(vol.shape[0])]
    lidc = [lung(dicom_to_hu(pydicom.dcmread(p))) for p in sorted((DATA / "lidc-idri-0002-single-slice").glob("*.dcm"))]
    held_out = list(range(3, len(ct), 6))
    rng = np.random.default_rng(2027)
    clones, splices, retouches = [], [], []
    for z in held_out:
        for _ in range(2):
            clones.append(copy_move_2d(ct[z], rng)[0])
            splices.append(splice_2d(ct[z], ct[(z + 40) % len(ct)], rng)[0])
            retouches.append(retouch_2d(ct[z], rng)[0])
    turning = np.random.default_rng(2028)
    turned = [copy_move_transformed_2d(ct[z], turning, frac=0.2)[0] for z in held_out for _ in range(2)]
    texts = {size: [with_text(ct[z], size) for z in range(0, len(ct), 11)] for size in (18, 24, 32)}
    sets = [("genuine CT slices (all 99)", ct), ("genuine LIDC-IDRI slice", lidc),
            *((f"genuine, burned-in text {size} px", images) for size, images in texts.items()),
            ("copy-move, held-out slices", clones), ("copy-move turned and resized, held-out slices", turned),
            ("splice (not a copy-move)", splices),
            ("retouch (not a copy-move)", retouches)]
    forms = [("PNG", lambda a: a), ("JPEG q90", lambda a: as_jpeg(a, 90)), ("JPEG q75", lambda a: as_jpeg(a, 75))]
    print(f"| images | {' | '.join(name for name, _ in forms)} |")
    print(f"|---|{'---|' * len(forms)}")
    seconds, checked = 0.0, 0
    for title, images in sets:
        cells = []
        for _, form in forms:
            flagged = 0
            for image in images:
                image = form(image)
                started = time.perf_counter()
                flagged += bool(copies(image))
                seconds += time.perf_counter() - started
                checked += 1
            cells.append(f"{flagged} / {len(images)} flagged")
        print(f"| {title} | {' | '.join(cells)} |")
    print(f"\n{seconds / checked:.3f} s per image on average (512 x 512), {checked} images")


if __name__ == "__main__":
    main()
