import dataclasses
import json
from pathlib import Path

from django.core.management.base import BaseCommand

from detection.ml.training import TrainConfig, train
from detection.models import ModelVersion
from portal.accounts.services import audit


def _int_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


class Command(BaseCommand):
    help = "Train a detector on simulated tampering of real scans and register it as a candidate model version."

    def add_arguments(self, parser):
        # One option per TrainConfig field, so the ML core stays the single source of training options.
        for field in dataclasses.fields(TrainConfig):
            default = field.default if field.default is not dataclasses.MISSING else None
            if isinstance(default, tuple):  # z ranges: --train-z 4,58
                kind = _int_tuple
            elif isinstance(default, bool):
                kind = _bool
            else:
                kind = type(default) if default is not None else str
            parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, type=kind, default=default)

    def handle(self, *args, **options):
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        # Fields without a plain default (channels, arch_kwargs) keep TrainConfig's own unless given.
        given = {k: v for k, v in options.items() if k in names and v is not None}
        artifact = Path(train(TrainConfig(**given)))
        meta = json.loads((artifact / "config.json").read_text())
        version, _ = ModelVersion.objects.update_or_create(
            name=f"{meta.get('model_name', meta.get('arch'))}:{meta.get('model_version', artifact.name)}",
            defaults={"arch": meta.get("arch", ""), "status": ModelVersion.Status.CANDIDATE, "trained": True,
                      "artifact_path": str(artifact.resolve()), "config": meta, "metrics": meta.get("metrics", {})},
        )
        audit(None, "model.train", version, artifact=str(artifact))
        self.stdout.write(f"registered candidate {version.name} from {artifact}")
