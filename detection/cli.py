"""Plain CLI for the ML core (no Django): ``python -m detection.cli <command>`` (train, calibrate, evaluate,
score, single-image, report)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _train(args: argparse.Namespace) -> None:
    from detection.ml.training import TrainConfig, train

    cfg = TrainConfig(
        arch=args.arch,
        epochs=args.epochs,
        n_train=args.n_train,
        n_val=args.n_val,
        tb_factor=args.tb_factor,
        hard_negatives=args.hard_negatives,
        hard_negative_epochs=args.hard_negative_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        out_dir=args.out_dir,
        name=args.name,
        resume=args.resume or "",
        scan_dir=args.scan_dir or "",
        device=args.device or "",
        augment_mode=args.augment_mode,
        class_weights=tuple(float(v) for v in args.class_weights.split(",")),
        **({"channels": parse_channels(args.channels)} if args.channels else {}),
    )
    print(train(cfg))


def parse_channels(spec: str) -> list[list]:
    """``"lung:-1,lung:0,lung:1,full:0"`` -> [["lung", -1], ...]: (window, z offset) per input channel."""
    from detection.ml.constants import WINDOWS

    channels = []
    for item in spec.split(","):
        name, _, dz = item.strip().partition(":")
        if name not in WINDOWS or not dz.lstrip("-").isdigit():
            raise SystemExit(f"bad channel {item!r}: expected window:offset, window one of {sorted(WINDOWS)}")
        channels.append([name, int(dz)])
    return channels


def _evaluate(args: argparse.Namespace) -> None:
    from detection.ml.data import ctgan_patchset, load_scan, simulate_patchset
    from detection.ml.evaluation import evaluate
    from detection.ml.scoring import Detector

    det = Detector.load(args.artifact)
    if args.ctgan_root:
        ps = ctgan_patchset(args.ctgan_root, args.labels_dir, det.patch, det.channels)
    else:
        vol, spacing = load_scan(args.scan_dir)
        z = tuple(det.config.get("val_z", (64, 92)))
        ps = simulate_patchset(vol, spacing, args.n, z, args.seed + 1000, det.patch, det.channels)
    metrics = evaluate(det, ps, args.out, det.model_name, args.n_boot)
    print(json.dumps({k: v for k, v in metrics.items() if k not in ("per_class",)}, indent=2))


def _score(args: argparse.Namespace) -> None:
    from detection.ml.preprocessing import read_series
    from detection.ml.scoring import Detector

    res = Detector.load(args.artifact).score_series(read_series(args.series))
    top = res.locations[: args.top]
    print(
        json.dumps(
            {
                "verdict": res.verdict,
                "score": res.verdict_score,
                "model": res.model_version,
                "trained": res.trained,
                "top": [vars(loc) for loc in top],
            },
            indent=2,
        )
    )


def _calibrate(args: argparse.Namespace) -> None:
    from detection.ml.training import calibrate_artifact

    z = tuple(int(v) for v in args.z_range.split(",")) if args.z_range else None
    result = calibrate_artifact(args.artifact, args.scan_dir, z, args.alpha)
    print(json.dumps(result, indent=2))


def _single_image(args: argparse.Namespace) -> None:
    from detection.ml import single_image
    from detection.ml.data import load_scan
    from detection.ml.scoring import Detector

    det = Detector.load(args.artifact)
    vol, spacing = load_scan(args.scan_dir)
    z = tuple(det.config.get("val_z", (64, 92)))
    result = single_image.evaluate(det, vol, spacing, z, args.n, args.seed)
    print(f"single images of held-out slices z {z[0]}-{z[1] - 1}, flagged (FB/FM verdict) / images:")
    print(f"{'path':10} {'threshold':14} {'genuine':>9} {'FM inject':>10} {'FB remove':>10}")
    for path, r in result["paths"].items():
        for name, flagged in r["flagged"].items():
            cells = [f"{flagged[k]}/{r['n'][k]}" for k in ("genuine", "FM", "FB")]
            label = f"{name} {r['thresholds'][name]:.7f}"
            print(f"{path:10} {label:>14} {cells[0]:>9} {cells[1]:>10} {cells[2]:>10}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


def _report(args: argparse.Namespace) -> None:
    from detection.ml.report import write_report

    write_report(args.artifact, args.out, n_test=args.n, n_boot=args.n_boot, n_series=args.n_series)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m detection.cli")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train on simulated tampering, write an artefact dir")
    t.add_argument("--arch", default="smallcnn")
    t.add_argument("--epochs", type=int, default=14)
    t.add_argument("--n-train", type=int, default=5000)
    t.add_argument("--tb-factor", type=int, default=2, help="genuine TB patches per patch of each other class")
    t.add_argument("--n-val", type=int, default=800)
    t.add_argument("--hard-negatives", type=int, default=0,
                   help="genuine grid patches of the training region mined after --epochs (0: none)")
    t.add_argument("--hard-negative-epochs", type=int, default=4)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out-dir", default="var/models")
    t.add_argument("--name", default="")
    t.add_argument("--resume", help="artefact dir holding checkpoint.pt")
    t.add_argument("--scan-dir")
    t.add_argument("--device")
    t.add_argument("--augment-mode", default="resample", choices=("resample", "exact"),
                   help="exact: flips / 90-degree rotations, no resampling or added noise (keeps noise texture)")
    t.add_argument("--class-weights", default="1,1,1,1", help="sampler weight per class TB,TM,FB,FM")
    t.add_argument("--channels", help="input channels as window:z-offset, e.g. lung:0 for a single-image "
                   "model (default: lung:-1,lung:0,lung:1,full:0, the 2.5D series model)")
    t.set_defaults(fn=_train)
    e = sub.add_parser("evaluate", help="metrics + plots on simulated held-out region or a CT-GAN folder")
    e.add_argument("--artifact", default=None)
    e.add_argument("--ctgan-root", help="folder with <uuid>/<slice>.dcm and labels_exp*.csv")
    e.add_argument("--labels-dir")
    e.add_argument("--scan-dir")
    e.add_argument("--n", type=int, default=800)
    e.add_argument("--n-boot", type=int, default=500)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default="var/eval")
    e.set_defaults(fn=_evaluate)
    s = sub.add_parser("score", help="score one DICOM series folder")
    s.add_argument("series")
    s.add_argument("--artifact", default=None)
    s.add_argument("--top", type=int, default=5)
    s.set_defaults(fn=_score)
    c = sub.add_parser("calibrate", help="set an artefact's series-level tamper threshold on genuine patches")
    c.add_argument("artifact")
    c.add_argument("--scan-dir", help="genuine scan (default: the one the artefact was trained on)")
    c.add_argument("--z-range", help="z0,z1 of the calibration slices (default: the training region)")
    c.add_argument("--alpha", type=float, help="expected genuine locations above the threshold per series")
    c.set_defaults(fn=_calibrate)
    si = sub.add_parser("single-image", help="claim images: single-slice verdicts on held-out slices and "
                        "simulated tampers, single-image vs series threshold")
    si.add_argument("--artifact", default=None, help="artefact dir (default: the series model; the model that "
                    "scores claim images is detection/weights/single_image)")
    si.add_argument("--scan-dir", default=None)
    si.add_argument("--n", type=int, default=20, help="simulated tampers per class (FM, FB)")
    si.add_argument("--seed", type=int, default=0)
    si.add_argument("--out", help="write the full result (every image's max score) as JSON")
    si.set_defaults(fn=_single_image)
    r = sub.add_parser("report", help="write docs/evaluation (model vs SVM/RF/DT, plots)")
    r.add_argument("--artifact", default=None)
    r.add_argument("--out", default=str(Path("docs") / "evaluation"))
    r.add_argument("--n", type=int, default=1200)
    r.add_argument("--n-boot", type=int, default=500)
    r.add_argument("--n-series", type=int, default=10, help="simulated-tamper series per class (FM, FB)")
    r.set_defaults(fn=_report)
    args = p.parse_args(argv)
    args.fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
