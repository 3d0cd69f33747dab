import signal
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.orthanc import OrthancServer


class Command(BaseCommand):
    help = "Run the embedded local Orthanc (+DICOMweb) with its data under var/orthanc, until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8042)

    def handle(self, *args, port, **options):
        # `kill` (run.sh's cleanup, a process manager) sends SIGTERM, whose default action skips `finally` and
        # would leave Orthanc running on the port: turn it into an orderly exit.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        server = OrthancServer(settings.VAR_DIR / "orthanc", port)
        try:  # a signal may come while start() still waits for Orthanc: stop() must run then too
            server.start()
            self.stdout.write(f"Orthanc DICOMweb at {server.dicomweb_url} (data in {server.data_dir})")
            while server.process and server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
