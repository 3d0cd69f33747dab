"""C = A + a second hard-negative round: 1200 genuine grid patches of the even training blocks mined with A,
4 more epochs (best val loss kept), recalibrated on the odd blocks. Usage: copy A's artefact dir, pass the copy."""

import json
import sys
from dataclasses import replace

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from detection.ml.data import load_scan
from detection.ml.scoring import Detector
from detection.ml.training import TrainConfig, _concat, build_datasets, calibrate_artifact, fit, mine_hard_negatives

out = sys.argv[1]
c = json.load(open(f"{out}/config.json"))
cfg = TrainConfig(**{k: v for k, v in c.items() if k in TrainConfig.__dataclass_fields__ and k != "hard_negatives"})
cfg = replace(
    cfg, hard_negatives=1200, out_dir="/tmp/fbexp/C", name="fbC", train_z=tuple(cfg.train_z), val_z=tuple(cfg.val_z)
)
train_ps, val_ps, info = build_datasets(cfg)
vol, spacing = load_scan()
det = Detector.load(out, "cpu")
mined = mine_hard_negatives(det, vol, spacing, cfg.train_z, 1200, 6)
print("mined", len(mined), mined.meta[-1]["tamper"], mined.meta[0]["tamper"], flush=True)
extra = {k: c[k] for k in ("data_snapshot", "model_version", "training_data")}
extra["hard_negatives"] = {"rounds": [c["hard_negatives"], {"n": 1200, "epochs": 4}]}
stage = replace(cfg, epochs=len(c["history"]) + 4, resume=out)
fit(stage, _concat(train_ps, mined), val_ps, __import__("pathlib").Path(out), extra, reset_best=True)
print(calibrate_artifact(out, "", cfg.train_z, 0.05, {"size": 6, "parity": 1})["tamper_threshold"])
