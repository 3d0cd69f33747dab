from django.core.management.base import BaseCommand

from portal.studies.services import sync_from_pacs


class Command(BaseCommand):
    help = "Re-build the study index from the PACS over QIDO-RS (the PACS is the source of truth)."

    def handle(self, *args, **options):
        counts = sync_from_pacs()
        self.stdout.write(f"synced {counts['studies']} studies, {counts['series']} series, "
                          f"{counts['instances']} instances")
