"""Where a series' slices lie: gaps in the positions mean slices are missing (lost, never sent, or deleted).
The detector reads each slice with its neighbours, so it treats a gap as it treats the ends of a series
(neighbours clamped, the edge threshold): across a gap a "neighbour" is another part of the body."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import median

GAP_FACTOR = 1.5  # a step this many times the usual one leaves room for at least one missing slice


@dataclass(frozen=True)
class SliceGap:
    after_index: int  # the gap lies between slice_index after_index and after_index + 1
    z_from: float
    z_to: float
    missing: int  # about how many slices at the usual step would fill it

    def as_dict(self) -> dict:
        return asdict(self)


def slice_gaps(zs: Sequence[float | None]) -> tuple[float | None, list[SliceGap]]:
    """(usual step in mm, gaps) for positions in slice order. The usual step is the median one; a series with
    fewer than three positioned slices, or any slice without a position, has no usual step and no gaps."""
    if len(zs) < 3 or any(z is None for z in zs):
        return None, []
    steps = [abs(b - a) for a, b in zip(zs, zs[1:], strict=False)]  # type: ignore[operator]
    usual = median(steps)
    if usual <= 0:
        return None, []
    gaps = [
        SliceGap(after_index=i, z_from=float(zs[i]), z_to=float(zs[i + 1]), missing=max(1, round(step / usual) - 1))
        for i, step in enumerate(steps) if step > GAP_FACTOR * usual
    ]  # fmt: skip
    return round(usual, 3), gaps


def edge_slices(n_slices: int, breaks: Sequence[int] = ()) -> list[int]:
    """Slices with a missing neighbour: the first, the last, and both sides of every gap (``breaks``: the
    slices after which one lies, each gap's ``after_index``)."""
    if n_slices <= 0:
        return []
    edges = {0, n_slices - 1} | {i for b in breaks for i in (b, b + 1)}
    return sorted(i for i in edges if 0 <= i < n_slices)
