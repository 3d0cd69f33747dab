"""Dev evaluation of an artefact for the removal experiments: genuine scan, validation patches (seed+1, the
checkpoint-selection set) and seed-7 simulated series (10 FM + 10 FB in the held-out region), raw cell probabilities
pickled for analyse.py. Usage: python dev_series.py ARTIFACT|default OUT.pkl [seed=7] [n=10]
Only slices within 9 of the tamper are re-scored; the rest of a tampered copy equals the genuine scan (checked: same
figures as scoring every slice for the default model)."""

import pickle
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from detection.ml.data import load_scan, simulate_patchset
from detection.ml.evaluation import compute_metrics, detector_probs
from detection.ml.scoring import Detector
from detection.ml.simulator import simulate_series_tamper, site_catalogue

art, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 7
n = int(sys.argv[4]) if len(sys.argv) > 4 else 10
t0 = time.time()
det = Detector.load(None if art == "default" else art, "cpu")
vol, spacing = load_scan()
res = {"threshold": det.threshold, "calibration": det.config.get("calibration")}
cells, prob = det.cell_probs(vol, spacing)
res["genuine"] = (cells, prob)
# calibration blocks cell probs (training region odd blocks) for alternative rules
z0, z1 = det.config["train_z"]
sel = (cells[:, 0] >= z0) & (cells[:, 0] < z1) & (((cells[:, 0] - z0) // 6) % 2 == 1)
res["calib_sel"] = sel
val = simulate_patchset(vol, spacing, 800, tuple(det.config["val_z"]), det.config["seed"] + 1, det.patch, det.channels)
pv = detector_probs(det, val)
res["val"] = compute_metrics(val.y, pv)
sites = site_catalogue(vol, tuple(det.config["val_z"]), pixel_mm=float(spacing[1]))
cases = []
for label in ("FM", "FB"):
    for i in range(n):
        tv, params = simulate_series_tamper(vol, spacing, label, tuple(det.config["val_z"]), seed * 1000 + i, sites)
        # Only slices near the tamper differ from the genuine scan: score those, copy the rest.
        c = det.scoring_cells(tv, spacing)
        zt = params["slice"]
        key = {tuple(r): k for k, r in enumerate(cells.tolist())}
        idx = np.array([key.get(tuple(r), -1) for r in c.tolist()])
        todo = (np.abs(c[:, 0] - zt) <= 9) | (idx < 0)
        p = np.zeros((len(c), 4), np.float32)
        p[~todo] = prob[idx[~todo]]
        from detection.ml.preprocessing import PatchGrid

        p[todo] = det._score_cells(PatchGrid(tv, det.patch, det.stride, det.channels, c[todo]), c[todo])
        cases.append((label, params, c, p))
res["cases"] = cases
pickle.dump(res, open(out, "wb"))
print("done", time.time() - t0)
