"""Index rows for a series without going through the PACS (most queue/label behaviour needs no pixels)."""

import uuid
from collections.abc import Callable

import numpy as np
import pytest

from detection.models import LocationScore, ModelVersion, ScoringJob
from portal.studies.models import Instance, Patient, Series, Study, StudyAccess


def _uid() -> str:
    return f"2.25.{uuid.uuid4().int}"


@pytest.fixture
def series_factory(db) -> Callable[..., Series]:
    def make(*, uploaded_by=None, n_slices: int = 20, shared_with=()) -> Series:
        patient = Patient.objects.create(patient_id=f"P-{uuid.uuid4().hex[:8]}")
        study = Study.objects.create(study_uid=_uid(), patient=patient, uploaded_by=uploaded_by)
        series = Series.objects.create(series_uid=_uid(), study=study, modality="CT", series_number=1)
        Instance.objects.bulk_create([
            Instance(sop_instance_uid=_uid(), series=series, sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                     instance_number=i + 1, slice_index=i, rows=512, columns=512)
            for i in range(n_slices)
        ])  # fmt: skip
        for user in shared_with:
            StudyAccess.objects.create(study=study, user=user, kind=StudyAccess.Kind.ASSIGN)
        return series

    return make


@pytest.fixture
def scored_job(db) -> Callable[..., ScoringJob]:
    """A finished scoring job with location scores: ``probs`` rows (TB, TM, FB, FM) at given locations."""

    def make(series: Series, locations: list[tuple[int, int, int]], probs: np.ndarray | None = None) -> ScoringJob:
        version, _ = ModelVersion.objects.get_or_create(
            name="test:0", defaults={"arch": "smallcnn", "status": ModelVersion.Status.UNTRAINED}
        )
        job = ScoringJob.objects.create(series=series, model_version=version, status=ScoringJob.Status.DONE)
        rng = np.random.default_rng(0)
        probs = probs if probs is not None else rng.dirichlet(np.ones(4), len(locations))
        LocationScore.objects.bulk_create([
            LocationScore(job=job, slice_index=z, x=x, y=y, p_tb=p[0], p_tm=p[1], p_fb=p[2], p_fm=p[3],
                          tamper=p[2] + p[3])
            for (z, x, y), p in zip(locations, probs, strict=True)
        ])  # fmt: skip
        return job

    return make


@pytest.fixture
def queue_of(series_factory, scored_job):
    """queue_of(n, required_labels=1, **series_kw) -> (series, items): n open items ranked by entropy."""
    from annotations.services import queue_build

    def make(n: int = 5, required_labels: int = 1, **series_kw):
        series = series_factory(**series_kw)
        locs = [(i % 20, 64 + 32 * i, 200) for i in range(n)]
        job = scored_job(series, locs)
        items = queue_build(job=job, strategy="entropy", batch_size=n, required_labels=required_labels)
        return series, items

    return make
