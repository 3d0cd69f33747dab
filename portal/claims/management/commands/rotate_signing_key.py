from django.core.management.base import BaseCommand

from portal.accounts.services import audit
from portal.claims import crypto


class Command(BaseCommand):
    help = "Generate a new Ed25519 signing key; old public keys stay published so old ledger entries verify."

    def handle(self, *args, **options):
        new, old = crypto.rotate_signing_key()
        audit(None, "provenance.rotate_key", object_type="SigningKey", object_id=new, previous=old)
        self.stdout.write(f"active signing key: {new} (previous: {old or 'none'}) in {crypto.key_dir()}")
