"""Offline: does requiring the score along z (mean logit of P(FB)+P(FM) over z-1, z, z+1 at the same grid cell)
separate removals from the genuine tail better? Calibrated like the default (alpha 0.05, odd training blocks)."""

import pickle
import sys

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from detection.ml.calibration import logit, tail_threshold
from detection.ml.evaluation import _near
from detection.ml.scoring import LocationScore

SP = (3.0, 0.564453125, 0.564453125)
STRIDE = 32


def zmean(c, p, mode):
    u = logit(p[:, 2] + p[:, 3])
    key = {tuple(r): k for k, r in enumerate(c.tolist())}
    out = np.empty_like(u)
    for k, (z, y, x) in enumerate(c.tolist()):
        nb = [u[key[(z + d, y, x)]] if (z + d, y, x) in key else u[k] for d in (-1, 1)]
        out[k] = (u[k] + nb[0] + nb[1]) / 3 if mode == "mean" else np.sort([u[k], *nb])[1]
    return 1 / (1 + np.exp(-out))


for f in sys.argv[1:]:
    r = pickle.load(open(f, "rb"))
    gc, gp = r["genuine"]
    sel = r["calib_sel"]
    M = len(gc)
    for mode in ("mean", "median"):
        g = zmean(gc, gp, mode)
        thr = tail_threshold(g[sel], M, 0.05)["tamper_threshold"]
        res = {}
        for lab in ("FM", "FB"):
            fl = loc = 0
            for label, params, c, p in r["cases"]:
                if label != lab:
                    continue
                s = zmean(c, p, mode)
                i = int(np.argmax(s))
                if s[i] >= thr:
                    fl += 1
                    z, iy, ix = c[i]
                    loc += _near(
                        LocationScore(int(z), int(ix) * STRIDE + 16, int(iy) * STRIDE + 16, {}, 0), params, SP, STRIDE
                    )
            res[lab] = f"{fl}/{loc}"
        print(
            f"{f.split('/')[-1]} z-{mode}: thr {thr:.4f} genuine flagged {(g >= thr).sum()} max {g.max():.3f} | FM flagged/located {res['FM']} FB {res['FB']}"
        )
