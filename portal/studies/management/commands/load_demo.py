import os
from pathlib import Path

import numpy as np
import pydicom
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from pydicom.uid import generate_uid

from detection.ml.preprocessing import dicom_to_hu, volume_from_datasets, with_hu
from detection.ml.radiograph import as_cr
from detection.ml.simulator import copy_move_2d, simulate_series_tamper, simulated_radiograph
from portal.accounts.models import Role
from portal.accounts.services import user_create
from portal.studies import dicomweb
from portal.studies.models import Instance, Study, StudyAccess
from portal.studies.services import study_upload

# The tampered demo copy: one simulated injection (detection.ml.simulator) in the region the shipped model
# was not trained on (slices 64-91, docs/evaluation); with this seed it lands at slice 82 of 99.
TAMPERED_PATIENT_ID = "C3N-00247-CTGAN-DEMO"
TAMPER_Z_RANGE, TAMPER_SEED, TAMPER_DIAMETER_MM = (66, 90), 2026, 14.0
# The demo radiographs: two simulated X-rays made from CT slices (none ships with the portal), a region copied
# inside the first (detection.ml.simulator), which the copy-move check finds.
RADIOGRAPH_PATIENT_ID, RADIOGRAPH_SLICES, RADIOGRAPH_SIZE, RADIOGRAPH_SEED = "C3N-00247-XR-DEMO", (40, 60), 1024, 7
DEMO_CT = Path(os.environ.get("SHARED_DATA", settings.BASE_DIR.parent / "shared" / "data")) / \
    "cptac-lscc-C3N-00247-chest-ct"


class Command(BaseCommand):
    help = ("Create one demo user per role, upload the demo chest CT, a copy of it with a simulated injected "
            "nodule and two simulated radiographs (one with a copied region), share the CT with demo-insurer and "
            "file a demo claim (idempotent).")

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
        for user in users.values():
            if not user.email:  # demo users made by an older version
                User.objects.filter(pk=user.pk).update(email=f"{user.username}@example.org")
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
        # (A few slices, as some tests load, hold no site for the injection.)
        tampered_loaded = Study.objects.filter(patient__patient_id=TAMPERED_PATIENT_ID).exists()
        if len(files) > TAMPER_Z_RANGE[1] and not tampered_loaded:
            self.upload_tampered_copy(users[Role.CLINICIAN], files)
        radiographs_loaded = Study.objects.filter(patient__patient_id=RADIOGRAPH_PATIENT_ID).exists()
        if len(files) > max(RADIOGRAPH_SLICES) and not radiographs_loaded:
            self.upload_radiographs(users[Role.CLINICIAN], files)
        for study in Study.objects.all():
            StudyAccess.objects.get_or_create(study=study, user=users[Role.ANNOTATOR],
                                              defaults={"kind": StudyAccess.Kind.ASSIGN})
        if apps.is_installed("portal.claims"):
            self.file_demo_claim(users, files)
        self.stdout.write("demo users: " + ", ".join(f"demo-{r}" for r in Role.values) + f" (password {password!r})")

    def upload_tampered_copy(self, clinician: User, files: list[Path]) -> None:
        """A second demo study: the same CT with a CT-GAN-style injected nodule (simulated, FM), under new UIDs
        and its own patient ID, so the demo shows what the detector does with a tampered scan."""
        datasets = [pydicom.dcmread(p) for p in files]
        volume, spacing, order = volume_from_datasets(datasets)
        tampered, params = simulate_series_tamper(volume, spacing, "FM", TAMPER_Z_RANGE, seed=TAMPER_SEED,
                                                  diameter_mm=TAMPER_DIAMETER_MM)
        study_uid, series_uid = generate_uid(), generate_uid()
        copies = with_hu([datasets[i] for i in order], tampered)
        for ds in copies:
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.PatientID, ds.PatientName = TAMPERED_PATIENT_ID, "DEMO^TAMPERED"
            ds.StudyDescription = "CT CHEST (demo copy with a simulated injected nodule)"
        outcome = study_upload(user=clinician, files=[SimpleUploadedFile(f"{i:03d}.dcm", dicomweb.file_bytes(ds))
                                                      for i, ds in enumerate(copies)])
        if not outcome.pacs_down:
            self.stdout.write(f"uploaded the tampered demo copy ({TAMPERED_PATIENT_ID}): a "
                              f"{TAMPER_DIAMETER_MM:.0f} mm nodule injected at slice {params['slice'] + 1}, "
                              f"x {params['x']}, y {params['y']}")

    def upload_radiographs(self, clinician: User, files: list[Path]) -> None:
        """A third demo study: two simulated chest radiographs (CR), the first with a region copied onto another
        place of it; the CT detector does not read them, the copy-move check does."""
        rng = np.random.default_rng(RADIOGRAPH_SEED)
        study_uid, series_uid, uploads = generate_uid(), generate_uid(), []
        for number, z in enumerate(RADIOGRAPH_SLICES, start=1):
            ds = pydicom.dcmread(files[z])
            image = simulated_radiograph(dicom_to_hu(ds), RADIOGRAPH_SIZE, rng)
            if number == 1:
                image, _, params = copy_move_2d(image, rng)
            as_cr(ds, image)
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study_uid, series_uid, number
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.PatientID, ds.PatientName = RADIOGRAPH_PATIENT_ID, "DEMO^RADIOGRAPH"
            ds.StudyDescription = ds.SeriesDescription = "CR CHEST (demo: simulated radiographs)"
            uploads.append(SimpleUploadedFile(f"xr{number}.dcm", dicomweb.file_bytes(ds)))
        if not study_upload(user=clinician, files=uploads).pacs_down:
            (y, x), size = params["dst"], params["size"]
            self.stdout.write(f"uploaded the demo radiographs ({RADIOGRAPH_PATIENT_ID}): image 1 has a {size} px "
                              f"region copied to x {x}, y {y}")

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
