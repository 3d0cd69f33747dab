from django.core.management.base import BaseCommand

from annotations.models import RetrainRun
from detection.promotion import run_retrain


class Command(BaseCommand):
    help = "Retrain from the current model on the settled labels, evaluate on the held-out set, promote if not worse."

    def handle(self, *args, **opts) -> None:
        run = RetrainRun.objects.create(trigger="manual")
        run = run_retrain(run_id=run.pk)
        self.stdout.write(f"run {run.pk}: {run.status} {run.metrics.get('reason', '')} {run.error}")
