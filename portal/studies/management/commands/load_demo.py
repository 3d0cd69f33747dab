import os
from pathlib import Path

import pydicom
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand

from portal.accounts.models import Role
from portal.accounts.services import user_create
from portal.studies.models import Instance, Study, StudyAccess
from portal.studies.services import study_upload

DEMO_CT = Path(os.environ.get("SHARED_DATA", settings.BASE_DIR.parent / "shared" / "data")) / \
    "cptac-lscc-C3N-00247-chest-ct"


class Command(BaseCommand):
    help = ("Create one demo user per role, upload the demo chest CT, share it with demo-insurer and file a demo "
            "claim (idempotent).")

    def add_arguments(self, parser):
        parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD", "demo-portal-2026"))
        parser.add_argument("--ct-dir", default=str(DEMO_CT))

    def handle(self, *args, password, ct_dir, **options):
        users = {}
        for role in Role.values:
            name = f"demo-{role}"
            users[role] = User.objects.filter(username=name).first() or \
                user_create(username=name, password=password, role=role, email=f"{name}@example.org")
        User.objects.filter(username="demo-admin").update(is_superuser=True, is_staff=True)
        files = sorted(Path(ct_dir).glob("*.dcm"))
        if not files:
            self.stderr.write(f"no demo CT found in {ct_dir}; users created, no study loaded")
            return
        if not Study.objects.exists():
            outcome = study_upload(user=users[Role.CLINICIAN],
                                   files=[SimpleUploadedFile(p.name, p.read_bytes()) for p in files])
            if outcome.pacs_down:
                self.stderr.write(f"PACS down; the demo study is staged and will be stored later: {outcome.pacs_down}")
            else:
                self.stdout.write(f"uploaded {len(outcome.stored)} instances; scoring jobs queued")
        for study in Study.objects.all():
            StudyAccess.objects.get_or_create(study=study, user=users[Role.ANNOTATOR],
                                              defaults={"kind": StudyAccess.Kind.ASSIGN})
        if apps.is_installed("portal.claims"):
            self.file_demo_claim(users, files)
        self.stdout.write("demo users: " + ", ".join(f"demo-{r}" for r in Role.values) + f" (password {password!r})")

    def file_demo_claim(self, users: dict, files: list[Path]) -> None:
        """The demo insurer's claim on the demo study's middle stored slice (none while the PACS was down)."""
        from portal.claims.demo import load_demo_claim

        path_by_sop = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in files}
        stored = list(Instance.objects.filter(sop_instance_uid__in=path_by_sop).select_related("series__study")
                      .order_by("series__series_number", "slice_index"))
        if stored:
            middle = stored[len(stored) // 2]
            if load_demo_claim(clinician=users[Role.CLINICIAN], insurer=users[Role.INSURER],
                               study=middle.series.study,
                               middle_slice=pydicom.dcmread(path_by_sop[middle.sop_instance_uid])):
                self.stdout.write("demo claim filed for demo-insurer (an exact and a retouched slice export)")
