"""Thin DRF views over annotations.services / selectors. Django ValidationError -> 400."""

from __future__ import annotations

import functools
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes, permission_classes, renderer_classes
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from annotations import copy_move_review, measurements, relabel, selectors, services
from annotations.agreement import agreement_report
from annotations.models import Label, Measurement, QueueItem, RetrainRun
from annotations.permissions import LabelAccess
from annotations.serializers import (
    AdjudicateSerializer,
    AdjudicationItemSerializer,
    AgreementQuerySerializer,
    AgreementSerializer,
    CopyMoveFindingSerializer,
    CopyMoveReviewCreateSerializer,
    CtganImportSerializer,
    LabelCreateSerializer,
    LabelSerializer,
    LabelUpdateSerializer,
    MeasurementCreateSerializer,
    MeasurementMoveSerializer,
    MeasurementSerializer,
    QueueItemSerializer,
    QueueRebuildSerializer,
    QueueSummarySerializer,
    RelabelSerializer,
    RetrainRunSerializer,
    RevisionSerializer,
)
from annotations.strategies import available
from portal.accounts.permissions import CanBrowseStudies, CanLabel, IsAdmin, IsExpert
from portal.api_schema import PACS_ERRORS, binary, errors, paged
from portal.pagination import paginate
from portal.renderers import download_renderers
from portal.studies import dicomweb
from portal.studies.selectors import visible_series, visible_studies
from portal.studies.serializers import CopyMoveReviewSerializer


def django_errors(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": "; ".join(exc.messages)}
            return Response(detail, status=status.HTTP_400_BAD_REQUEST)

    return wrapper


def _reason(request) -> str:
    """Why (kept in the label's history): in the body, or the query string (a DELETE may have no body)."""
    body = request.data.get("reason", "") if hasattr(request.data, "get") else ""
    return body or request.query_params.get("reason", "")


def _visible_label(request, pk: int) -> Label:
    label = selectors.visible_labels(request.user).filter(pk=pk).first()
    if label is None:
        raise NotFound("no such label")
    return label


@extend_schema(methods=["GET"], operation_id="labels_list", responses=paged(LabelSerializer), parameters=[
    OpenApiParameter("series", str, description="series instance UID"),
    OpenApiParameter("study", str, description="study instance UID"),
    OpenApiParameter("page", int)])
@extend_schema(methods=["POST"], operation_id="labels_create", request=LabelCreateSerializer,
               responses={201: LabelSerializer, **errors(400, 404)})
@api_view(["GET", "POST"])
@permission_classes([LabelAccess])
@django_errors
def labels(request):
    if request.method == "GET":
        qs = selectors.label_list(
            request.user, series_uid=request.query_params.get("series", ""),
            study_uid=request.query_params.get("study", ""),
        )  # fmt: skip
        return paginate(request, qs, LabelSerializer)
    data = LabelCreateSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    d = data.validated_data
    series = visible_series(request.user).filter(series_uid=d["series_uid"]).first()
    if series is None:
        raise NotFound("no such series (or you cannot see it)")
    item = None
    if d["queue_item"]:
        item = get_object_or_404(QueueItem, pk=d["queue_item"], series=series)
    label = services.label_create(
        user=request.user, series=series, slice_index=d["slice_index"], x=d["x"], y=d["y"],
        label_class=d["label_class"], sop_instance_uid=d["sop_instance_uid"], box=d["box"], comment=d["comment"],
        queue_item=item,
    )  # fmt: skip
    return Response(LabelSerializer(label, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema(methods=["GET"], operation_id="labels_retrieve", responses={200: LabelSerializer, **errors(404)})
@extend_schema(methods=["PATCH"], request=LabelUpdateSerializer, responses={200: LabelSerializer, **errors(400, 404)})
@extend_schema(methods=["DELETE"], parameters=[OpenApiParameter("reason", str, description="why (kept in history)")],
               responses={204: None, **errors(404)})
@api_view(["GET", "PATCH", "DELETE"])
@permission_classes([LabelAccess])
@django_errors
def label_detail(request, pk: int):
    label = _visible_label(request, pk)
    if request.method == "GET":
        return Response(LabelSerializer(label, context={"request": request}).data)
    if request.method == "DELETE":
        services.label_delete(user=request.user, label=label, reason=_reason(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = LabelUpdateSerializer(data=request.data, partial=True)
    data.is_valid(raise_exception=True)
    changes = dict(data.validated_data)
    reason = changes.pop("reason", "")
    label = services.label_update(user=request.user, label=label, reason=reason, **changes)
    return Response(LabelSerializer(label, context={"request": request}).data)


@extend_schema(request=None, parameters=[OpenApiParameter("reason", str, description="why (kept in history)")],
               responses={200: LabelSerializer, **errors(400, 403, 404)})
@api_view(["POST"])
@permission_classes([LabelAccess])
@django_errors
def label_restore(request, pk: int):
    """Bring back a deleted label (the viewer's undo): its author, or an expert with a reason."""
    label = selectors.deleted_labels(request.user).filter(pk=pk).first() or _visible_label(request, pk)
    label = services.label_restore(user=request.user, label=label, reason=_reason(request))
    return Response(LabelSerializer(label, context={"request": request}).data)


@extend_schema(responses={200: RevisionSerializer(many=True), **errors(404)})
@api_view(["GET"])
@permission_classes([LabelAccess])
def label_history(request, pk: int):
    # History includes deleted labels: that is its point.
    label = Label.objects.filter(pk=pk, study__in=visible_studies(request.user).values("pk")).first()
    if label is None:
        raise NotFound("no such label")
    return Response(RevisionSerializer(selectors.label_history(label), many=True).data)


@extend_schema(request=RelabelSerializer, responses={
    200: inline_serializer("Relabelled", {"label": LabelSerializer(), "history": RevisionSerializer(many=True)}),
    **errors(400, 404)})
@api_view(["POST"])
@permission_classes([IsExpert])
@django_errors
def label_relabel(request, pk: int):
    """An expert changes a label's class with a reason; answers the label and its full history."""
    label = _visible_label(request, pk)
    data = RelabelSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    label = relabel.label_relabel(expert=request.user, label=label, **data.validated_data)
    return Response({"label": LabelSerializer(label, context={"request": request}).data,
                     "history": RevisionSerializer(selectors.label_history(label), many=True).data})


@extend_schema(request=None, responses={
    200: QueueItemSerializer, 204: OpenApiResponse(description="nothing to label for you now")})
@api_view(["POST"])
@permission_classes([CanLabel])
def queue_next(request):
    item = services.lease_next(user=request.user)
    if item is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(QueueItemSerializer(item).data)


@extend_schema(request=None, responses={200: QueueItemSerializer, **errors(404)})
@api_view(["POST"])
@permission_classes([CanLabel])
def queue_release(request, pk: int):
    item = get_object_or_404(QueueItem, pk=pk)
    return Response(QueueItemSerializer(services.lease_release(user=request.user, item=item)).data)


@extend_schema(responses=paged(QueueItemSerializer), parameters=[
    OpenApiParameter("status", str), OpenApiParameter("series", str, description="series instance UID"),
    OpenApiParameter("page", int)])
@api_view(["GET"])
@permission_classes([CanLabel])
def queue_list(request):
    qs = selectors.queue_items(request.user, status=request.query_params.get("status", ""))
    if series := request.query_params.get("series"):
        qs = qs.filter(series__series_uid=series)
    return paginate(request, qs, QueueItemSerializer)


@extend_schema(responses={200: AgreementSerializer, **errors(400)}, parameters=[
    OpenApiParameter("since", OpenApiTypes.DATE, description="only labels given on or after this day")])
@api_view(["GET"])
@permission_classes([IsExpert])
def agreement(request):
    """How far annotators agree with each other and with the final answers on review-queue items."""
    query = AgreementQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    day = query.validated_data.get("since")
    start = timezone.make_aware(datetime.combine(day, time.min)) if day else None
    return Response(agreement_report(selectors.agreement_items(request.user, since=start)))


@extend_schema(responses=QueueSummarySerializer)
@api_view(["GET"])
@permission_classes([CanLabel])
def queue_summary(request):
    return Response(QueueSummarySerializer(selectors.queue_summary(request.user, timezone.now())).data)


@extend_schema(responses=inline_serializer("Strategies", {
    "strategies": serializers.ListField(child=serializers.CharField()), "default": serializers.CharField()}))
@api_view(["GET"])
@permission_classes([CanLabel])
def strategies(request):
    return Response({"strategies": available(), "default": services.default_strategy()})


@extend_schema(request=QueueRebuildSerializer, responses={
    201: QueueItemSerializer(many=True), **errors(400, 404), **errors(409, description="series not scored yet"),
    **PACS_ERRORS})
@api_view(["POST"])
@permission_classes([IsExpert])
@django_errors
def queue_rebuild(request):
    from detection.services import latest_done_job

    data = QueueRebuildSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    d = data.validated_data
    series = visible_series(request.user).filter(series_uid=d["series_uid"]).first()
    if series is None:
        raise NotFound("no such series")
    if d["strategy"] and d["strategy"] not in available():
        return Response({"strategy": f"choose one of {', '.join(available())}"}, status=400)
    job = latest_done_job(series)
    if job is None:
        return Response({"detail": "this series has not been scored yet"}, status=status.HTTP_409_CONFLICT)
    # Strategies on embeddings or MC samples re-read the series from the PACS; if it is down or refuses,
    # the answer is a 503/502 (portal.api_errors) and the series' queue stays as it was.
    items = services.queue_build(
        job=job, strategy=d["strategy"] or None, batch_size=d["batch_size"],
        required_labels=d["required_labels"], actor=request.user,
    )  # fmt: skip
    return Response(QueueItemSerializer(items, many=True).data, status=status.HTTP_201_CREATED)


@extend_schema(operation_id="adjudications_list", responses=paged(AdjudicationItemSerializer),
               parameters=[OpenApiParameter("page", int)])
@api_view(["GET"])
@permission_classes([IsExpert])
def adjudication_list(request):
    return paginate(request, selectors.adjudication_queue(request.user), AdjudicationItemSerializer)


@extend_schema(methods=["GET"], operation_id="adjudications_retrieve",
               responses={200: AdjudicationItemSerializer, **errors(404)})
@extend_schema(methods=["POST"], request=AdjudicateSerializer, responses={201: LabelSerializer, **errors(400, 404)})
@api_view(["GET", "POST"])
@permission_classes([IsExpert])
@django_errors
def adjudicate(request, pk: int):
    item = get_object_or_404(selectors.queue_items(request.user), pk=pk)
    if request.method == "GET":
        return Response(AdjudicationItemSerializer(item, context={"request": request}).data)
    data = AdjudicateSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    label = services.adjudicate(expert=request.user, item=item, **data.validated_data)
    return Response(LabelSerializer(label, context={"request": request}).data, status=status.HTTP_201_CREATED)


def _visible_study(request, study_uid: str):
    study = visible_studies(request.user).filter(study_uid=study_uid).first()
    if study is None:
        raise NotFound("no such study")
    return study


@extend_schema(responses={**binary("text/csv", "labels in the CT-GAN layout type,uuid,slice,x,y"),
                          **errors(404)})
@api_view(["GET"])
@renderer_classes(download_renderers("text/csv"))
@permission_classes([LabelAccess])
def export_csv(request, study_uid: str):
    study = _visible_study(request, study_uid)
    response = HttpResponse(selectors.export_ctgan_csv(study), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="labels-{study_uid}.csv"'
    return response


@extend_schema(responses={**binary("application/dicom", "DICOM SR (TID 1500) of the study's labels"),
                          **errors(404)})
@api_view(["GET"])
@renderer_classes(download_renderers("application/dicom"))
@permission_classes([LabelAccess])
def export_sr(request, study_uid: str):
    from annotations.sr import export_sr as build_sr

    study = _visible_study(request, study_uid)
    try:
        sr = build_sr(study)
    except ValueError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
    response = HttpResponse(dicomweb.file_bytes(sr), content_type="application/dicom")
    response["Content-Disposition"] = f'attachment; filename="labels-{study_uid}.sr.dcm"'
    return response


@extend_schema(
    request={"multipart/form-data": inline_serializer("CtganCsvUpload", {
                 "file": serializers.FileField(), "series_uid": serializers.CharField(required=False)}),
             "application/json": inline_serializer("CtganCsvText", {
                 "csv": serializers.CharField(), "series_uid": serializers.CharField(required=False)})},
    responses={201: inline_serializer("CtganImported", {
        "imported": serializers.IntegerField(), "ids": serializers.ListField(child=serializers.IntegerField())}),
        **errors(400, 404)})
@api_view(["POST"])
@permission_classes([IsExpert])
@parser_classes([MultiPartParser, FormParser, JSONParser])
@django_errors
def import_csv(request):
    """CT-GAN CSV (file field ``file`` or JSON ``csv``); ``series_uid`` maps CT-GAN scan ids to one series."""
    form = CtganImportSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    default_series = None
    if series_uid := form.validated_data.get("series_uid"):
        default_series = visible_series(request.user).filter(series_uid=series_uid).first()
        if default_series is None:
            raise NotFound("no such series")
    created = services.import_ctgan_csv(user=request.user, text=form.validated_data["csv"],
                                        default_series=default_series)  # fmt: skip
    return Response({"imported": len(created), "ids": [lab.pk for lab in created]}, status=status.HTTP_201_CREATED)


@extend_schema(methods=["GET"], operation_id="retrain_list", responses=paged(RetrainRunSerializer),
               parameters=[OpenApiParameter("page", int)])
@extend_schema(methods=["POST"], operation_id="retrain_create", request=None,
               responses={202: RetrainRunSerializer, **errors(403)})
@api_view(["GET", "POST"])
@permission_classes([IsExpert])
def retrain(request):
    if request.method == "GET":
        return paginate(request, RetrainRun.objects.select_related("base_version", "candidate_version"),
                        RetrainRunSerializer)  # fmt: skip
    if not IsAdmin().has_permission(request, None):
        return Response({"detail": "only admins start retraining"}, status=status.HTTP_403_FORBIDDEN)
    run = services.retrain_request(actor=request.user, trigger="manual")
    return Response(RetrainRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(methods=["GET"], operation_id="series_measurements_list",
               responses={200: MeasurementSerializer(many=True), **errors(404)})
@extend_schema(methods=["POST"], operation_id="series_measurements_create", request=MeasurementCreateSerializer,
               responses={201: MeasurementSerializer, **errors(400, 404)})
@api_view(["GET", "POST"])
@permission_classes([CanBrowseStudies])
@django_errors
def series_measurements(request, series_uid: str):
    """Distances measured on the series' slices, by anyone who may read it; the portal computes each length."""
    series = visible_series(request.user).filter(series_uid=series_uid).first()
    if series is None:
        raise NotFound("no such series (or you cannot see it)")
    if request.method == "GET":
        rows = measurements.series_measurements(series)
        return Response(MeasurementSerializer(rows, many=True, context={"request": request}).data)
    data = MeasurementCreateSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    measurement = measurements.measurement_create(user=request.user, series=series, **data.validated_data)
    return Response(MeasurementSerializer(measurement, context={"request": request}).data,
                    status=status.HTTP_201_CREATED)


@extend_schema(methods=["PATCH"], request=MeasurementMoveSerializer,
               responses={200: MeasurementSerializer, **errors(400, 403, 404)})
@extend_schema(methods=["DELETE"], responses={204: None, **errors(403, 404)})
@api_view(["PATCH", "DELETE"])
@permission_classes([CanBrowseStudies])
@django_errors
def measurement_detail(request, pk: int):
    """Move a measurement's end points, or delete it: its author, or an admin."""
    measurement = (Measurement.objects.filter(pk=pk, series__in=visible_series(request.user))
                   .select_related("series__study").first())  # fmt: skip
    if measurement is None:
        raise NotFound("no such measurement")
    if request.method == "DELETE":
        measurements.measurement_delete(user=request.user, measurement=measurement)
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = MeasurementMoveSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    measurement = measurements.measurement_move(user=request.user, measurement=measurement, **data.validated_data)
    return Response(MeasurementSerializer(measurement, context={"request": request}).data)


@extend_schema(responses=paged(CopyMoveFindingSerializer), parameters=[
    OpenApiParameter("reviewed", bool, description="false: only images waiting for a review; true: only reviewed "
                                                   "ones; absent: all"),
    OpenApiParameter("page", int)])
@api_view(["GET"])
@permission_classes([IsExpert])
def copy_move_findings(request):
    """Images in radiographs the copy-move check found a copy in (latest check of each series), the longest
    waiting first, each with its latest expert review."""
    reviewed = {"true": True, "false": False}.get(request.query_params.get("reviewed", "").lower())
    return paginate(request, copy_move_review.findings(request.user, reviewed=reviewed), CopyMoveFindingSerializer)


@extend_schema(methods=["GET"], operation_id="copy_move_reviews_list",
               responses={200: CopyMoveReviewSerializer(many=True), **errors(404)})
@extend_schema(methods=["POST"], operation_id="copy_move_reviews_create", request=CopyMoveReviewCreateSerializer,
               responses={201: CopyMoveReviewSerializer, **errors(400, 403, 404)})
@api_view(["GET", "POST"])
@permission_classes([IsExpert])
@django_errors
def copy_move_reviews(request, series_uid: str, sop_instance_uid: str):
    """An image's reviews, newest first (GET), or a new one (POST): confirmed, or dismissed with a reason. The
    study's verdict leaves out images whose latest review dismissed the copy."""
    series = get_object_or_404(visible_series(request.user), series_uid=series_uid)
    if request.method == "GET":
        reviews = series.copy_move_reviews.filter(sop_instance_uid=sop_instance_uid).select_related("reviewer")
        return Response(CopyMoveReviewSerializer(reviews, many=True).data)
    data = CopyMoveReviewCreateSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    review = copy_move_review.review_copy_move(actor=request.user, series=series, sop_instance_uid=sop_instance_uid,
                                               **data.validated_data)
    return Response(CopyMoveReviewSerializer(review).data, status=status.HTTP_201_CREATED)
