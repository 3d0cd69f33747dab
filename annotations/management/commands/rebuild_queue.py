from django.core.management.base import BaseCommand, CommandError

from annotations.services import queue_build
from annotations.strategies import available
from detection.services import latest_done_job
from portal.studies.models import Series


class Command(BaseCommand):
    help = "Re-rank the active-learning queue of scored series with a strategy."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--strategy", choices=available(), default=None)
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--series", help="one series UID (default: every scored series)")

    def handle(self, *args, **opts) -> None:
        series = Series.objects.all()
        if opts["series"]:
            series = series.filter(series_uid=opts["series"])
            if not series.exists():
                raise CommandError(f"no series {opts['series']}")
        for s in series:
            job = latest_done_job(s)
            if job is None:
                continue
            items = queue_build(job=job, strategy=opts["strategy"], batch_size=opts["batch_size"])
            self.stdout.write(f"{s.series_uid}: {len(items)} items")
