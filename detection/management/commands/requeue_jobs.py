from django.core.management.base import BaseCommand

from detection.services import requeue_unfinished


class Command(BaseCommand):
    help = "Send queued/running scoring jobs to the job queue again (after the broker was down)."

    def handle(self, *args, **options):
        self.stdout.write(f"requeued {requeue_unfinished()} job(s)")
