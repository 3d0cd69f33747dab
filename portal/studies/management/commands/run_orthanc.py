import time

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.orthanc import OrthancServer


class Command(BaseCommand):
    help = "Run the embedded local Orthanc (+DICOMweb) with its data under var/orthanc, until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8042)

    def handle(self, *args, port, **options):
        server = OrthancServer(settings.VAR_DIR / "orthanc", port).start()
        self.stdout.write(f"Orthanc DICOMweb at {server.dicomweb_url} (data in {server.data_dir})")
        try:
            while server.process and server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
