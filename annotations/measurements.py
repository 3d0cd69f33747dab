"""Distances measured in the viewer, kept with the study: shown again when the series is reopened, to everyone
who may read it, and listed in the study report. The portal computes each length itself from the pixel spacing
indexed at upload (the figure a clinician or an insurer reads must not depend on a browser)."""

from __future__ import annotations

import math

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet

from annotations.models import Measurement
from portal.accounts.models import Role
from portal.accounts.services import audit, has_role
from portal.studies.models import Instance, Series, Study


def series_measurements(series: Series) -> QuerySet[Measurement]:
    return Measurement.objects.filter(series=series).select_related("author")


def study_measurements(study: Study) -> QuerySet[Measurement]:
    return (Measurement.objects.filter(series__study=study).select_related("author", "series")
            .order_by("series__series_uid", "slice_index", "id"))  # fmt: skip


def length_mm(points: list[list[float]], pixel_spacing: list[float] | None) -> float | None:
    """Euclidean length of the segment in mm; PixelSpacing is (between rows, between columns) and a point is
    (column, row). None without a spacing: a pixel count is not a size."""
    if not pixel_spacing or len(pixel_spacing) != 2:
        return None
    (x0, y0), (x1, y1) = points
    return math.hypot((x1 - x0) * pixel_spacing[1], (y1 - y0) * pixel_spacing[0])


def _checked_points(instance: Instance, points) -> list[list[float]]:
    valid = (isinstance(points, list) and len(points) == 2
             and all(isinstance(p, list | tuple) and len(p) == 2 for p in points)
             and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                     for p in points for v in p))  # fmt: skip
    if not valid:
        raise ValidationError({"points": "must be two [x, y] points in native pixels (x = column, y = row)"})
    if instance.columns and instance.rows and not all(
            0 <= x <= instance.columns and 0 <= y <= instance.rows for x, y in points):
        raise ValidationError({"points": f"must lie on the image ({instance.columns} × {instance.rows} pixels)"})
    return [[float(x), float(y)] for x, y in points]


def measurement_create(*, user: User, series: Series, sop_instance_uid: str, points) -> Measurement:
    instance = Instance.objects.filter(series=series, sop_instance_uid=sop_instance_uid).first()
    if instance is None:
        raise ValidationError({"sop_instance_uid": "no such image in this series"})
    points = _checked_points(instance, points)
    measurement = Measurement.objects.create(
        series=series, sop_instance_uid=sop_instance_uid, slice_index=instance.slice_index or 0, points=points,
        length_mm=length_mm(points, instance.pixel_spacing), author=user,
    )  # fmt: skip
    audit(user, "measurement.create", measurement, study_uid=series.study.study_uid, series_uid=series.series_uid,
          slice_index=measurement.slice_index, length_mm=measurement.length_mm)  # fmt: skip
    return measurement


def _can_change(user: User, measurement: Measurement) -> None:
    if measurement.author_id != user.pk and not has_role(user, Role.ADMIN):
        raise PermissionDenied("only its author (or an admin) may change or delete a measurement")


def measurement_move(*, user: User, measurement: Measurement, points) -> Measurement:
    _can_change(user, measurement)
    instance = Instance.objects.get(series_id=measurement.series_id, sop_instance_uid=measurement.sop_instance_uid)
    measurement.points = _checked_points(instance, points)
    measurement.length_mm = length_mm(measurement.points, instance.pixel_spacing)
    measurement.save(update_fields=["points", "length_mm", "updated"])
    audit(user, "measurement.update", measurement, length_mm=measurement.length_mm)
    return measurement


def measurement_delete(*, user: User, measurement: Measurement) -> None:
    _can_change(user, measurement)
    audit(user, "measurement.delete", measurement, study_uid=measurement.series.study.study_uid,
          series_uid=measurement.series.series_uid, slice_index=measurement.slice_index,
          length_mm=measurement.length_mm)  # fmt: skip
    measurement.delete()
