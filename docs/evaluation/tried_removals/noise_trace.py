import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
import numpy as np
from scipy import ndimage as ndi

from detection.ml.data import load_scan
from detection.ml.simulator import simulate_series_tamper, site_catalogue

vol, sp = load_scan()
sites = site_catalogue(vol, (64, 92), pixel_mm=float(sp[1]))


def stats(img, m):
    r = img - ndi.gaussian_filter(img, 1.5)
    rr = r[m]
    # lag-1 autocorr of residual inside mask (horizontal)
    a = r[:, :-1][m[:, :-1] & m[:, 1:]]
    b = r[:, 1:][m[:, :-1] & m[:, 1:]]
    return rr.std(), np.corrcoef(a, b)[0, 1]


for i in range(6):
    tv, p = simulate_series_tamper(vol, sp, "FB", (64, 92), 7000 + i, sites)
    z, y, x = p["slice"], p["y"], p["x"]
    diff = np.abs(tv[z] - vol[z]) > 1
    ring = ndi.binary_dilation(diff, iterations=12) & ~ndi.binary_dilation(diff, iterations=3) & (vol[z] < -600)
    if diff.sum() < 10:
        print(i, "tiny")
        continue
    print(
        i,
        p["remove"]["method"],
        round(p["size_mm"], 1),
        "npx",
        diff.sum(),
        "inpaint resid std/ac %.1f %.2f" % stats(tv[z], diff),
        "ring %.1f %.2f" % stats(tv[z], ring),
        "orig at mask %.1f %.2f" % stats(vol[z], diff),
    )
