import pickle
import sys

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from detection.ml.calibration import tail_threshold
from detection.ml.evaluation import _near
from detection.ml.scoring import LocationScore

SP = (3.0, 0.564453125, 0.564453125)
STRIDE = 32


def loc(c):
    return LocationScore(int(c[0]), int(c[2]) * STRIDE + 16, int(c[1]) * STRIDE + 16, {}, 0.0)


for f in sys.argv[1:]:
    r = pickle.load(open(f, "rb"))
    gc, gp = r["genuine"]
    sel = r["calib_sel"]
    M = len(gc)
    thr = r["threshold"]
    m = r["val"]["per_class"]
    print(
        f"== {f}: thr {thr:.4f} val acc {r['val']['accuracy']:.3f} FB rec {m['FB']['recall']:.3f} FB auc {m['FB']['roc_auc']:.3f} tamperAUC {r['val']['tamper_roc_auc']:.3f}"
    )
    gt = gp[:, 2] + gp[:, 3]
    print(
        f"  genuine flagged {(gt >= thr).sum()} / {M}; max {gt.max():.3f}; held-out max {gt[(gc[:, 0] >= 64) & (gc[:, 0] < 92)].max():.3f}"
    )
    # rules: sum (current); FB-only threshold (alpha/2) + FM-only (alpha/2); sum + FB extra (alpha/2 each)
    tfb = tail_threshold(gp[sel, 2], M, 0.025)["tamper_threshold"]
    tfm = tail_threshold(gp[sel, 3], M, 0.025)["tamper_threshold"]
    tsum2 = tail_threshold(gt[sel], M, 0.025)["tamper_threshold"]
    print(
        f"  FB thr(a/2) {tfb:.4f} genuine FB max {gp[:, 2].max():.3f} flagged {(gp[:, 2] >= tfb).sum()}; FM thr {tfm:.4f}; sum a/2 {tsum2:.4f}"
    )
    for lab in ("FM", "FB"):
        rows = []
        for label, params, c, p in r["cases"]:
            if label != lab:
                continue
            t = p[:, 2] + p[:, 3]
            near = np.array([_near(loc(cc), params, SP, STRIDE) for cc in c])
            o = np.argsort(-t, kind="stable")
            rank = int(np.flatnonzero(near[o])[0]) if near.any() else None
            top_on = bool(near[o[0]])
            flag = t.max() >= thr
            fbflag = p[:, 2].max() >= tfb
            fb_top = bool(near[np.argmax(p[:, 2])])
            combo = (t.max() >= tsum2) or (p[:, 2].max() >= tfb)
            rows.append(
                (
                    flag,
                    flag and top_on,
                    float(t[near].max()) if near.any() else 0,
                    rank,
                    fbflag,
                    fbflag and fb_top,
                    float(p[near, 2].max()) if near.any() else 0,
                    combo,
                    params.get("remove", {}).get("method", "inj"),
                    round(params["size_mm"], 1),
                )
            )
        a = np.array([x[:2] for x in rows])
        print(
            f"  {lab}: sum-rule flagged {sum(x[0] for x in rows)}/{len(rows)} located {sum(x[1] for x in rows)}; FB-thr flagged {sum(x[4] for x in rows)} located {sum(x[5] for x in rows)}; combo(a/2 sum | a/2 FB) {sum(x[7] for x in rows)}"
        )
        print("     site max tamper", [round(x[2], 3) for x in rows], "ranks", [x[3] for x in rows])
        print("     site max P(FB)  ", [round(x[6], 3) for x in rows], [x[8][:3] + str(x[9]) for x in rows])
