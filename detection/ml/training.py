"""Training, resume and fine-tuning; every run writes a versioned artefact dir.

Artefact layout: config.json (arch, channels, patch size, data snapshot id, training params),
model.pt (state dict), metrics.json (validation metrics), curves.png, checkpoint.pt (for resume).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler
from tqdm import tqdm

from .constants import CLASS_INDEX, CLASSES, DEFAULT_CHANNELS, DEFAULT_PATCH, DEFAULT_STRIDE
from .data import PatchSet, default_scan_dir, load_scan, simulate_patchset
from .evaluation import compute_metrics
from .scoring import Detector, build_model, default_device


@dataclass
class TrainConfig:
    arch: str = "smallcnn"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    channels: list[list[Any]] = field(default_factory=lambda: [list(c) for c in DEFAULT_CHANNELS])
    patch_size: int = DEFAULT_PATCH
    stride: int = DEFAULT_STRIDE
    epochs: int = 14
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    n_train: int = 5000
    n_val: int = 800
    tb_factor: int = 2  # genuine TB patches per patch of each other class in the simulated training set
    scan_dir: str = ""  # "" -> shared CPTAC chest CT
    train_z: tuple[int, int] = (4, 58)  # z-sorted slice indices used for training sites
    val_z: tuple[int, int] = (64, 92)  # disjoint held-out z-region
    out_dir: str = "var/models"
    name: str = ""
    resume: str = ""  # artefact dir with checkpoint.pt to continue
    init_from: str = ""  # artefact dir whose weights initialise the model (fine-tuning)
    device: str = ""
    augment: bool = True
    # "resample": flips, rotation +-15 deg, scale and sub-pixel shifts through bilinear resampling, plus
    # additive Gaussian noise (std up to 0.02); "exact": flips and 90-degree rotations only, no noise, so
    # the pixel-level noise texture (what in-painting leaves behind) reaches the model unchanged.
    augment_mode: str = "resample"
    balance: bool = True
    # Extra weight of each class (CLASSES order) in the class-balanced sampler (1 = balanced).
    class_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    # Series-level false-alarm target of the calibrated tamper threshold (0 = no calibration).
    calibration_alpha: float = 0.05
    # Hard-negative mining: after ``epochs``, the most suspicious genuine grid patches of every other
    # ``block``-slice z-block of the training region join the training set as TB/TM for
    # ``hard_negative_epochs`` more epochs; the remaining blocks calibrate the threshold.
    hard_negatives: int = 0
    hard_negative_epochs: int = 4
    block: int = 6


def _uniform(gen: torch.Generator, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=gen) * (hi - lo) + lo


def _contrast_brightness(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-sample gain 0.85-1.15 around the channel mean and shift +-0.05 (not clamped)."""
    b, mean = x.shape[0], x.mean((2, 3), keepdim=True)
    gain, shift = _uniform(gen, 0.85, 1.15, b, 1, 1, 1), _uniform(gen, -0.05, 0.05, b, 1, 1, 1)
    return (x - mean) * gain.to(x) + mean + shift.to(x)


def augment_exact(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flips, 90-degree rotations and contrast/brightness (per sample): no resampling, no added noise."""
    b = x.shape[0]
    k = torch.randint(0, 4, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    x = torch.stack([torch.rot90(xi, int(ki), (-2, -1)) for xi, ki in zip(x, k.tolist(), strict=True)])
    return _contrast_brightness(x, gen).clamp(0, 1)


def augment(x: torch.Tensor, gen: torch.Generator, mode: str = "resample") -> torch.Tensor:
    """Flips, rotation +-15 deg, shifts +-4 px, scale, contrast/brightness, Gaussian noise (per sample);
    ``mode="exact"``: see ``augment_exact``."""
    if mode == "exact":
        return augment_exact(x, gen)
    b = x.shape[0]

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return _uniform(gen, lo, hi, b, *shape)

    flip_x = torch.where(u(0, 1) < 0.5, -1.0, 1.0)
    flip_y = torch.where(u(0, 1) < 0.5, -1.0, 1.0)
    ang, scale = u(-math.pi / 12, math.pi / 12), u(0.9, 1.1)
    shift = u(-4, 4, 2) * 2 / x.shape[-1]
    cos, sin = torch.cos(ang) * scale, torch.sin(ang) * scale
    theta = torch.stack(
        [torch.stack([cos * flip_x, -sin, shift[:, 0]], 1), torch.stack([sin, cos * flip_y, shift[:, 1]], 1)],
        1,
    )
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    x = _contrast_brightness(x, gen)
    return (x + torch.randn(x.shape, generator=gen).to(x) * u(0, 0.02, 1, 1, 1).to(x)).clamp(0, 1)


def _loader(ps: PatchSet, cfg: TrainConfig, shuffle: bool) -> DataLoader:
    ds = TensorDataset(torch.from_numpy(ps.x), torch.from_numpy(ps.y))
    if not shuffle:
        return DataLoader(ds, batch_size=256)
    sampler = None
    if cfg.balance:  # inverse class frequency, so rare classes are seen as often as common ones
        counts = np.bincount(ps.y, minlength=len(CLASSES)).astype(float)
        weights = np.asarray(cfg.class_weights, float)[ps.y] / counts[ps.y]
        sampler = WeightedRandomSampler(
            torch.as_tensor(weights), len(ps), generator=torch.Generator().manual_seed(cfg.seed)
        )
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        sampler=sampler,
        shuffle=sampler is None,
        drop_last=len(ps) > cfg.batch_size,
    )


def _run_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    opt: torch.optim.Optimizer | None,
    gen: torch.Generator | None,
    desc: str,
    augment_mode: str = "resample",
) -> tuple[float, float, np.ndarray, np.ndarray]:
    model.train(opt is not None)
    losses, probs, ys = [], [], []
    with torch.set_grad_enabled(opt is not None):
        for xb, yb in tqdm(loader, desc=desc, leave=False, mininterval=2):
            xb = xb.float()
            if gen is not None:
                xb = augment(xb, gen, augment_mode)
            xb, yb = xb.to(device), yb.to(device)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            losses.append(loss.item() * len(yb))
            probs.append(logits.detach().float().softmax(1).cpu().numpy())
            ys.append(yb.cpu().numpy())
    y, p = np.concatenate(ys), np.concatenate(probs)
    return sum(losses) / len(y), float((p.argmax(1) == y).mean()), y, p


def build_datasets(cfg: TrainConfig) -> tuple[PatchSet, PatchSet, dict[str, Any]]:
    """Simulated train/val patches from two disjoint z-regions of one scan."""
    scan = cfg.scan_dir or str(default_scan_dir())
    vol, spacing = load_scan(scan)
    chans = [tuple(c) for c in cfg.channels]
    mix = (max(int(cfg.tb_factor), 1), 1, 1, 1)
    train = simulate_patchset(
        vol, spacing, cfg.n_train, tuple(cfg.train_z), cfg.seed, cfg.patch_size, chans, class_mix=mix
    )
    # Validation stays class-balanced: it selects the checkpoint and reports per-class metrics.
    val = simulate_patchset(vol, spacing, cfg.n_val, tuple(cfg.val_z), cfg.seed + 1, cfg.patch_size, chans)
    info = {"scan_dir": scan, "spacing": list(spacing), "n_slices": int(vol.shape[0])}
    return train, val, info


def save_curves(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, key in zip(axes, ("loss", "acc"), strict=True):
        ax.plot(ep, [h[f"train_{key}"] for h in history], label="train")
        ax.plot(ep, [h[f"val_{key}"] for h in history], label="val")
        ax.set(xlabel="epoch", title=key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fit(
    cfg: TrainConfig,
    train: PatchSet,
    val: PatchSet,
    out: Path,
    extra: dict[str, Any] | None = None,
    reset_best: bool = False,
) -> Path:
    """Core loop: AdamW + cosine LR, checkpoint every epoch, keep the best-val-loss weights.

    ``reset_best``: when resuming, only epochs from now on compete for the kept weights (a new stage
    with other training data)."""
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device or default_device())
    config = {**asdict(cfg), "classes": list(CLASSES), "model_name": cfg.name or cfg.arch, **(extra or {})}
    model = build_model(config)
    if cfg.init_from:
        model.load_state_dict(Detector.load(cfg.init_from, "cpu").model.state_dict())
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Per-epoch cosine from the current cfg.epochs, so a resumed run may extend the schedule.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: 0.5 * (1 + math.cos(math.pi * min(e / cfg.epochs, 1)))
    )
    start, history, best = 0, [], math.inf
    ckpt_path = out / "checkpoint.pt"
    if cfg.resume and (Path(cfg.resume) / "checkpoint.pt").exists():
        ckpt = torch.load(Path(cfg.resume) / "checkpoint.pt", map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        start, history, best = ckpt["epoch"], ckpt["history"], math.inf if reset_best else ckpt["best"]
    gen = torch.Generator().manual_seed(cfg.seed + start)
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        tl, ta, *_ = _run_epoch(
            model,
            _loader(train, cfg, True),
            device,
            opt,
            gen if cfg.augment else None,
            f"epoch {epoch + 1}/{cfg.epochs}",
            cfg.augment_mode,
        )
        sched.step()
        vl, va, *_ = _run_epoch(model, _loader(val, cfg, False), device, None, None, "val")
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": tl,
                "train_acc": ta,
                "val_loss": vl,
                "val_acc": va,
                "seconds": time.time() - t0,
            }
        )
        print(
            f"epoch {epoch + 1}: train loss {tl:.3f} acc {ta:.3f} | val loss {vl:.3f} acc {va:.3f}",
            flush=True,
        )
        if vl < best:
            best = vl
            torch.save(model.state_dict(), out / "model.pt")
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch + 1,
                "history": history,
                "best": best,
            },
            ckpt_path,
        )
    save_curves(history, out / "curves.png")
    config.update(trained=True, history=history)
    (out / "config.json").write_text(json.dumps(config, indent=2, default=list))
    det = Detector.load(out, str(device))
    from .evaluation import detector_probs

    metrics = compute_metrics(val.y, detector_probs(det, val))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return out


def mine_hard_negatives(
    detector: Detector, vol: np.ndarray, spacing: Sequence[float], z_range: Sequence[int], n: int, block: int
) -> PatchSet:
    """The n most suspicious genuine grid patches of the even z-blocks of z_range, labelled TM where
    their centre is dense lung structure (the simulator's rule), else TB."""
    from scipy import ndimage as ndi

    z0, z1 = int(z_range[0]), int(z_range[1])
    cells, prob = detector.cell_probs(vol, spacing, (z0, z1))
    cells, prob = cells[((cells[:, 0] - z0) // block) % 2 == 0], prob[((cells[:, 0] - z0) // block) % 2 == 0]
    top = np.argsort(-(prob[:, CLASS_INDEX["FB"]] + prob[:, CLASS_INDEX["FM"]]), kind="stable")[:n]
    locs = [(int(cells[i, 0]), *detector.cell_centre(int(cells[i, 1]), int(cells[i, 2]))) for i in top]
    smooth = {z: ndi.gaussian_filter(vol[z], 2) for z in {z for z, _, _ in locs}}
    labels = ["TM" if smooth[z][y, x] > -350 else "TB" for z, x, y in locs]
    x = detector.patches(vol, locs).numpy().astype(np.float16) if locs else np.zeros((0,), np.float16)
    return PatchSet(
        x,
        np.array([CLASS_INDEX[lab] for lab in labels], np.int64),
        np.array([f"scan:z{z // 10}" for z, _, _ in locs]),
        [{"label": lab, "site": "hard_negative", "z": z, "x": xx, "y": y, "tamper": float(t)}
         for (z, xx, y), lab, t in zip(locs, labels, (prob[top, 2] + prob[top, 3]).tolist(), strict=True)],
    )  # fmt: skip


def _concat(a: PatchSet, b: PatchSet) -> PatchSet:
    return PatchSet(
        np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]), np.concatenate([a.groups, b.groups]), a.meta + b.meta
    )


def calibrate_artifact(
    artifact_dir: str | Path,
    scan_dir: str | None = None,
    z_range: Sequence[int] | None = None,
    alpha: float | None = None,
    blocks: dict | None = None,
) -> dict[str, Any]:
    """Calibrate the artefact's series-level tamper threshold on the genuine scoring grid of its training
    z-region (never the held-out region) and store it in config.json (``calibration``), and the thresholds
    for one image scored alone, on the same slices (``calibration_single_image``, single_image.py)."""
    from . import single_image
    from .calibration import calibrate

    path = Path(artifact_dir)
    config = json.loads((path / "config.json").read_text())
    previous = config.get("calibration") or {}
    # "" = the shared demo CT wherever SHARED_DATA puts it (an absolute path would not travel with the model)
    scan = scan_dir or previous.get("scan_dir") or config.get("scan_dir") or ""
    if scan and Path(scan).resolve() == default_scan_dir().resolve():
        scan = ""
    z = tuple(z_range or previous.get("z_range") or config["train_z"])
    a = float(alpha if alpha is not None else previous.get("alpha", config.get("calibration_alpha", 0.05)))
    blocks = blocks if blocks is not None else previous.get("blocks")
    vol, spacing = load_scan(scan or None)
    detector = Detector.load(path, "cpu")
    result = calibrate(detector, vol, spacing, (int(z[0]), int(z[1])), alpha=a, blocks=blocks)
    result["scan_dir"] = scan
    config["calibration"] = result
    config["calibration_single_image"] = single_image.calibrate(
        detector, vol, spacing, (int(z[0]), int(z[1])), alpha=a, blocks=blocks)
    (path / "config.json").write_text(json.dumps(config, indent=2, default=list))
    return result


def _new_artifact_dir(cfg: TrainConfig) -> Path:
    if cfg.resume:
        return Path(cfg.resume)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(cfg.out_dir) / f"{cfg.name or cfg.arch}-{stamp}"
    out.mkdir(parents=True, exist_ok=False)
    return out


def train(config: TrainConfig | dict[str, Any]) -> Path:
    """Simulate data, train, evaluate on the held-out z-region; returns the artefact dir."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig(**config)
    out = _new_artifact_dir(cfg)
    train_ps, val_ps, info = build_datasets(cfg)
    stamp = out.name.rsplit("-", 2)[-2:]
    extra = {
        "data_snapshot": {"train": train_ps.snapshot_id(), "val": val_ps.snapshot_id(), **info},
        "model_version": f"{cfg.name or cfg.arch}-{'-'.join(stamp)}-{train_ps.snapshot_id()[:6]}",
        "training_data": "simulated CT-GAN-style tampering (detection.ml.simulator) of one genuine CT; "
        f"train sites z in [{cfg.train_z[0]}, {cfg.train_z[1]}), "
        f"validation sites z in [{cfg.val_z[0]}, {cfg.val_z[1]})",
    }
    fit(cfg, train_ps, val_ps, out, extra)
    blocks = None
    if cfg.hard_negatives > 0:
        vol, spacing = load_scan(info["scan_dir"])
        det = Detector.load(out, str(cfg.device or default_device()))
        mined = mine_hard_negatives(det, vol, spacing, cfg.train_z, cfg.hard_negatives, cfg.block)
        print(f"hard negatives: {len(mined)} genuine patches, tamper {mined.meta[-1]['tamper']:.3f}"
              f"-{mined.meta[0]['tamper']:.3f}", flush=True)  # fmt: skip
        extra["hard_negatives"] = {
            "n": len(mined), "epochs": cfg.hard_negative_epochs, "block": cfg.block, "z_blocks": "even",
            "labels": {c: int((mined.y == i).sum()) for i, c in enumerate(CLASSES)},
            "tamper_range": [mined.meta[-1]["tamper"], mined.meta[0]["tamper"]],
        }  # fmt: skip
        stage2 = replace(cfg, epochs=cfg.epochs + cfg.hard_negative_epochs, resume=str(out))
        fit(stage2, _concat(train_ps, mined), val_ps, out, extra, reset_best=True)
        blocks = {"size": cfg.block, "parity": 1}  # calibrate on the blocks that gave no hard negatives
    if cfg.calibration_alpha > 0:
        calibrate_artifact(out, info["scan_dir"], cfg.train_z, cfg.calibration_alpha, blocks)
    return out


@dataclass
class LabelledSample:
    """An analyst-labelled location: volume is a z-sorted HU array, x = column, y = row."""

    volume: np.ndarray
    slice: int
    x: int
    y: int
    label: str


def fine_tune(
    base_artifact_dir: str | Path,
    samples: Sequence[LabelledSample | tuple[np.ndarray, int, int, int, str]],
    epochs: int = 3,
    lr: float = 3e-4,
    out_dir: str | Path | None = None,
    val_fraction: float = 0.2,
) -> Path:
    """Continue training a model on labelled (volume, slice, x, y, class) samples (active learning)."""
    base = json.loads((Path(base_artifact_dir) / "config.json").read_text())
    fields = set(TrainConfig.__dataclass_fields__)
    cfg = TrainConfig(**{k: v for k, v in base.items() if k in fields})
    cfg.epochs, cfg.lr, cfg.resume, cfg.init_from = epochs, lr, "", str(base_artifact_dir)
    cfg.out_dir = str(out_dir or Path(base_artifact_dir).parent)
    cfg.name = f"{base.get('model_name', cfg.arch)}-ft"
    det = Detector.load(base_artifact_dir, "cpu")
    rows = [s if isinstance(s, LabelledSample) else LabelledSample(*s) for s in samples]
    x = np.stack([det.patches(r.volume, [(r.slice, r.x, r.y)])[0].numpy() for r in rows]).astype(np.float16)
    y = np.array([CLASS_INDEX[r.label] for r in rows], np.int64)
    groups = np.array([f"{id(r.volume)}" for r in rows])  # one group per volume: split by scan
    ps = PatchSet(x, y, groups, [{"slice": r.slice, "x": r.x, "y": r.y, "label": r.label} for r in rows])
    rng = np.random.default_rng(cfg.seed)
    is_val = rng.random(len(ps)) < val_fraction if len(ps) >= 10 else np.zeros(len(ps), bool)
    train_ps, val_ps = (
        ps.subset(np.flatnonzero(~is_val)),
        ps.subset(np.flatnonzero(is_val) if is_val.any() else np.arange(len(ps))),
    )
    out = _new_artifact_dir(cfg)
    extra = {
        "base_artifact": str(base_artifact_dir),
        "data_snapshot": {"train": train_ps.snapshot_id(), "n": len(ps)},
        "model_version": f"{out.name}-{train_ps.snapshot_id()[:6]}",
        "training_data": "fine-tune on labelled samples",
    }
    fit(cfg, train_ps, val_ps, out, extra)
    if bc := base.get("calibration"):  # the new weights need their own threshold, on the same genuine patches
        calibrate_artifact(out, bc.get("scan_dir"), bc.get("z_range"), bc.get("alpha"))
    return out
