from django.core.management.base import BaseCommand

from portal.studies.dicomweb import PacsUnavailable
from portal.studies.models import UploadBatch
from portal.studies.services import store_batch


class Command(BaseCommand):
    help = "Store upload batches still staged on disk (the PACS was down when they arrived)."

    def handle(self, *args, **options):
        for batch in UploadBatch.objects.filter(status=UploadBatch.Status.STAGED):
            try:
                batch = store_batch(batch_id=str(batch.id))
                self.stdout.write(f"{batch.id}: {batch.status}, {batch.instances_stored} stored")
            except PacsUnavailable as exc:
                self.stderr.write(f"{batch.id}: still waiting for the PACS ({exc})")
