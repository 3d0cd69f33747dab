#!/usr/bin/env python
"""Active-learning benchmark: accuracy vs number of labels, each strategy vs random.

Protocol (details and results in docs/active_learning.md):
* data: CT-GAN-style tampering simulated (detection.ml.simulator) on the shared chest CT, 2.5D 32 px patches.
  Fixed scan-region split: the unlabelled pool comes from slices z in [4, 58), the test set from z in
  [64, 92) (no site, and no slice, on both sides). The test set is class-balanced (100 per class); the pool
  is simulated balanced (--n-pool) and then keeps every TB patch but only --rare of the TM/FB/FM ones, so
  it looks like a real queue where genuine tissue dominates (--rare 1 gives the balanced variant).
* model: frozen features (detection.ml.baselines.patch_features, standardised on the pool) + a light
  MLP head with dropout (retrained from scratch after every query round; MC-dropout = dropout on at
  inference). Embeddings for the diversity strategies = the head's hidden layer.
* loop: start from INIT random labels, query BATCH per round with the strategy until BUDGET labels;
  accuracy on the test set after each round; averaged over SEEDS seeds (the seed drives the initial
  set, head initialisation and tie breaking; the patch sets are fixed).

Run:  .venv/bin/python scripts/bench_active_learning.py            (defaults: 5 seeds, pool 2000 -> ~720)
      .venv/bin/python scripts/bench_active_learning.py --rare 1 --n-pool 800 --seeds 3 \
          --out docs/active_learning_curve_balanced.png                      (balanced-pool variant)
About 3 minutes on 2 CPU cores; the simulated patches are cached under var/bench (first run simulates them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from annotations.strategies import Pool, available, get_strategy  # noqa: E402
from detection.ml.baselines import patch_features  # noqa: E402
from detection.ml.data import PatchSet, load_scan, simulate_patchset  # noqa: E402

POOL_Z, TEST_Z = (4, 58), (64, 92)
torch.set_num_threads(min(2, os.cpu_count() or 1))


def patch_sets(n_pool: int, n_test: int, patch: int, cache: Path) -> tuple[PatchSet, PatchSet]:
    cache.mkdir(parents=True, exist_ok=True)
    paths = cache / f"al_pool_{n_pool}_p{patch}.npz", cache / f"al_test_{n_test}_p{patch}.npz"
    if all(p.exists() for p in paths):
        return PatchSet.load(paths[0]), PatchSet.load(paths[1])
    vol, spacing = load_scan()
    t = time.time()
    pool = simulate_patchset(vol, spacing, n_pool, POOL_Z, seed=101, patch=patch, scan_id="pool")
    test = simulate_patchset(vol, spacing, n_test, TEST_Z, seed=202, patch=patch, scan_id="test")
    print(f"simulated {n_pool}+{n_test} patches in {time.time() - t:.0f}s", flush=True)
    pool.save(paths[0])
    test.save(paths[1])
    return pool, test


class Head(nn.Module):
    def __init__(self, d: int, hidden: int = 64, drop: float = 0.3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, hidden), nn.ReLU())
        self.drop = nn.Dropout(drop)
        self.fc = nn.Linear(hidden, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.body(x)))


def fit_head(x: torch.Tensor, y: torch.Tensor, seed: int, steps: int = 150) -> Head:
    torch.manual_seed(seed)
    head = Head(x.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-3)
    # Class-balanced loss: early query rounds can be very skewed.
    w = torch.bincount(y, minlength=4).float().clamp(min=1)
    loss_fn = nn.CrossEntropyLoss(weight=(w.sum() / w) / 4)
    head.train()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(head(x), y).backward()
        opt.step()
    return head.eval()


def pool_view(head: Head, x: torch.Tensor, needs: frozenset[str], mc: int = 20) -> dict:
    with torch.no_grad():
        hidden = head.body(x)
        out = {"probs": head.fc(hidden).softmax(1).numpy().astype(np.float64), "emb": hidden.numpy()}
        if "mc" in needs:
            head.drop.train()
            out["mc"] = torch.stack([head.fc(head.drop(hidden)).softmax(1) for _ in range(mc)]).numpy()
            head.drop.eval()
    return out


def run(strategy: str, seed: int, xp: torch.Tensor, yp: torch.Tensor, xt: torch.Tensor, yt: np.ndarray,
        init: int, batch: int, budget: int) -> list[tuple[int, float]]:  # fmt: skip
    rng = np.random.default_rng(seed)
    strat = get_strategy(strategy)
    labelled = list(rng.choice(len(yp), init, replace=False))
    curve = []
    while True:
        head = fit_head(xp[labelled], yp[labelled], seed)
        with torch.no_grad():
            acc = float((head(xt).argmax(1).numpy() == yt).mean())
        curve.append((len(labelled), acc))
        if len(labelled) >= budget:
            return curve
        rest = np.setdiff1d(np.arange(len(yp)), labelled)
        view = pool_view(head, xp[rest], strat.needs)
        lab_emb = pool_view(head, xp[labelled], frozenset())["emb"]
        pool = Pool(probs=view["probs"], mc_probs=view.get("mc"), embeddings=view["emb"], labelled_embeddings=lab_emb)
        chosen, _ = strat.select(pool, min(batch, budget - len(labelled)), rng)
        labelled += [int(rest[i]) for i in chosen]


def labels_to_reach(curve: np.ndarray, counts: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(curve >= target)
    return int(counts[hit[0]]) if len(hit) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n-pool", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--init", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--budget", type=int, default=160)
    ap.add_argument("--strategies", default=",".join(available()))
    ap.add_argument("--rare", type=float, default=0.15,
                    help="keep this fraction of the TM/FB/FM pool patches (TB all): <1 makes the pool look like "
                         "a real queue, where genuine tissue dominates; the test set stays class-balanced")
    ap.add_argument("--cache", default=str(REPO / "var" / "bench"))
    ap.add_argument("--out", default=str(REPO / "docs" / "active_learning_curve.png"))
    args = ap.parse_args()
    t0 = time.time()
    pool, test = patch_sets(args.n_pool, args.n_test, args.patch, Path(args.cache))
    if args.rare < 1.0:
        keep_rng = np.random.default_rng(999)  # fixed: every strategy and seed sees the same pool
        keep = np.flatnonzero((pool.y == 0) | (keep_rng.random(len(pool.y)) < args.rare))
        pool = pool.subset(keep)
    fp, ft = patch_features(pool.x), patch_features(test.x)
    mu, sd = fp.mean(0), fp.std(0) + 1e-6  # standardised on the (unlabelled) pool only
    xp, xt = torch.tensor((fp - mu) / sd, dtype=torch.float32), torch.tensor((ft - mu) / sd, dtype=torch.float32)
    yp, yt = torch.tensor(pool.y), test.y
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    curves: dict[str, np.ndarray] = {}
    counts = None
    for name in strategies:
        runs = [run(name, seed, xp, yp, xt, yt, args.init, args.batch, args.budget) for seed in range(args.seeds)]
        counts = np.array([n for n, _ in runs[0]])
        curves[name] = np.array([[a for _, a in r] for r in runs])
        print(f"{name:16s} done ({time.time() - t0:.0f}s)", flush=True)
    full = fit_head(xp, yp, 0, steps=300)
    with torch.no_grad():
        full_acc = float((full(xt).argmax(1).numpy() == yt).mean())
    target = curves["random"].mean(0)[-1]
    rows = []
    for name, c in curves.items():
        mean = c.mean(0)
        need = labels_to_reach(mean, counts, target)
        marks = [n for n in sorted({40, 80, 120, 160, int(counts[-1])}) if n in counts]
        rows.append({"strategy": name, **{f"acc@{n}": float(mean[list(counts).index(n)]) for n in marks},
                     "final_std": float(c[:, -1].std()), "labels_to_random_final": need,
                     "fraction_of_random": (need / counts[-1]) if need else None})  # fmt: skip
    cols = [k for k in rows[0] if k.startswith("acc@")]
    shares = np.bincount(pool.y, minlength=4) / len(pool.y)
    print(f"\npool class shares TB/TM/FB/FM = {np.round(shares, 2).tolist()}")
    print(f"pool {len(pool)} patches (z {POOL_Z}), test {len(test)} (z {TEST_Z}); {args.seeds} seeds; "
          f"init {args.init}, batch {args.batch}, budget {args.budget}")
    print(f"random's final accuracy (target) = {target:.3f}; all {len(pool)} pool labels = {full_acc:.3f}\n")
    print(f"| strategy | {' | '.join(cols)} | std@final | labels to reach target | fraction of random's |")
    print("|---" * (len(cols) + 4) + "|")
    for r in rows:
        need = r["labels_to_random_final"]
        frac = f"{r['fraction_of_random']:.0%}" if r["fraction_of_random"] else "not reached"
        print(f"| {r['strategy']} | {' | '.join(f'{r[c]:.3f}' for c in cols)} | {r['final_std']:.3f} | "
              f"{need if need else '-'} | {frac} |")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, c in curves.items():
        m, s = c.mean(0), c.std(0)
        ax.plot(counts, m, label=name, lw=2.2 if name == "random" else 1.4, ls="--" if name == "random" else "-")
        ax.fill_between(counts, m - s, m + s, alpha=0.08)
    ax.axhline(target, color="grey", lw=0.8, ls=":")
    ax.axhline(full_acc, color="black", lw=0.8, ls="-.", label=f"all {len(pool)} labels")
    ax.set(xlabel="labelled patches", ylabel="test accuracy (4 classes)",
           title=f"Active learning on simulated CT-GAN tampering ({args.seeds} seeds)")  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    json_path = Path(args.out).with_suffix(".json")
    json_path.write_text(json.dumps({"counts": counts.tolist(), "curves": {k: v.tolist() for k, v in curves.items()},
                                     "target": target, "all_labels_acc": full_acc, "rows": rows,
                                     "args": vars(args)}, indent=1))  # fmt: skip
    print(f"\nsaved {args.out} and {json_path.name}; total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
