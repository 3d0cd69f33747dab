"""Evaluate the copy-move check of uploaded radiographs (detection.ml.radiograph) on simulated X-ray images.

There is no X-ray in ../shared/data, so each image is a slice of the shared chest CT rendered in the lung window
as a 12-bit radiograph, upscaled to the size a CR/DX detector gives (bicubic) with detector noise. Three kinds
per size: clean images and images with a region copied onto another place (detection.ml.simulator.copy_move_2d,
7-22 % of the side) from slices z = 10, 17, ... (12 each); images whose copy was also turned (up to 45 degrees
either way) and resized (0.8-1.25 x) on the way (copy_move_transformed_2d) from slices z = 13, 20, ... (11).
For each size it prints how many copies were found (both places boxed), how many clean images were flagged,
the factor the image was read at, and the median seconds per image.

    .venv/bin/python scripts/eval_radiograph_copy_move.py [--sizes 1024 2048 3000 5000]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detection.ml.preprocessing import load_volume  # noqa: E402
from detection.ml.radiograph import as_cr, check_image, display_grey  # noqa: E402
from detection.ml.simulator import copy_move_2d, copy_move_transformed_2d, simulated_radiograph  # noqa: E402

CT = Path(os.environ.get("SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CT = CT / "cptac-lscc-C3N-00247-chest-ct"


def radiograph(hu: np.ndarray, size: int, rng: np.random.Generator, clone=None) -> tuple[pydicom.Dataset, dict]:
    """``clone``: copy_move_2d or copy_move_transformed_2d, or None for a clean image."""
    image = simulated_radiograph(hu, size, rng)
    params: dict = {}
    if clone:
        image, _, params = clone(image, rng)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPInstanceUID = generate_uid()
    return as_cr(ds, image), params


def boxed(region: dict, params: dict) -> bool:
    """Both places of the copy overlap the region's two boxes."""
    def overlaps(box: list[int], y: int, x: int) -> bool:
        bx, by, bw, bh = box
        return bx < x + params["size"] and x < bx + bw and by < y + params["size"] and y < by + bh

    places = [params["src"], params["dst"]]
    return all(any(overlaps(box, *place) for place in places) for box in (region["first"], region["second"]))


def timed(ds: pydicom.Dataset, seconds: list[float]) -> list[dict]:
    """check_image, its time added to ``seconds``."""
    started = time.perf_counter()
    regions = check_image(ds)
    seconds.append(time.perf_counter() - started)
    return regions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 3000, 5000])
    args = parser.parse_args()
    volume, _ = load_volume(CT)
    print(f"{'side (px)':>9} {'read at':>8} {'copies found':>13} {'turned+resized found':>21} "
          f"{'clean flagged':>14} {'s/image':>8}")
    for size in args.sizes:
        rng, turned_rng = np.random.default_rng(size), np.random.default_rng(size + 1)
        found = turned = flagged = 0
        seconds: list[float] = []
        slices, turned_slices = range(10, 90, 7), range(13, 90, 7)
        for z in slices:
            for clone in (copy_move_2d, None):
                ds, params = radiograph(volume[z], size, rng, clone)
                regions = timed(ds, seconds)
                if clone:
                    found += any(boxed(r, params) for r in regions)
                else:
                    flagged += bool(regions)
        for z in turned_slices:
            ds, params = radiograph(volume[z], size, turned_rng, copy_move_transformed_2d)
            turned += any(boxed(r, params) for r in timed(ds, seconds))
        factor = display_grey(ds)[1]
        print(f"{size:>9} {'1/' + str(factor):>8} {found:>9} / {len(slices)} {turned:>17} / {len(turned_slices)} "
              f"{flagged:>10} / {len(slices)} {np.median(seconds):>8.2f}")


if __name__ == "__main__":
    main()
