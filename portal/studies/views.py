import io
import itertools
import re

import django_filters
import numpy as np
from django.apps import apps
from django.conf import settings
from django.db.models import Case, F, Prefetch, Q, When
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from PIL import Image
from rest_framework import generics, serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from detection.models import ScoringJob
from detection.services import CannotRescore, heatmap_slice, latest_done_job, rescore_series
from portal.accounts.models import AuditEvent, Role
from portal.accounts.permissions import CanBrowseStudies, CanRescore, CanUpload, IsAdmin
from portal.accounts.services import audit, has_role, primary_role
from portal.api_schema import PACS_ERRORS, binary, errors, file_errors
from portal.renderers import download_renderers
from portal.studies import dicomweb, proxy_access, selectors, services, withdrawal
from portal.studies.models import Instance, Series, Study, UploadBatch
from portal.studies.serializers import (
    AccessEventSerializer,
    JobSerializer,
    SeriesDetailSerializer,
    StudyDetailSerializer,
    StudySerializer,
    UploadBatchSerializer,
)
from portal.studies.upload_stream import HeaderCsrfSessionAuthentication, StreamedUpload


class MeView(APIView):
    @extend_schema(responses=inline_serializer("Me", {
        "username": serializers.CharField(), "role": serializers.CharField(),
        "idle_logoff_s": serializers.IntegerField(help_text="a browser session ends after this long unused")}))
    def get(self, request):
        return Response({"username": request.user.username, "role": primary_role(request.user),
                         "idle_logoff_s": settings.SESSION_COOKIE_AGE})


UPLOAD_RESULT = inline_serializer("UploadResult", {
    "batch": serializers.UUIDField(required=False, help_text="absent only when the request held no file"),
    "stored": inline_serializer("StoredInstance", {
        "file": serializers.CharField(), "sop_instance_uid": serializers.CharField(),
        "study_uid": serializers.CharField(), "series_uid": serializers.CharField()}, many=True),
    "errors": file_errors(),
    "jobs": JobSerializer(many=True),
    "not_scored": inline_serializer("NotScoredSeries", {
        "study_uid": serializers.CharField(), "series_uid": serializers.CharField(),
        "reason": serializers.CharField(help_text="why the detector does not score it (e.g. not CT)"),
        "copy_move_check": serializers.BooleanField(help_text=(
            "a radiograph: checked for a region copied inside its images instead (GET /api/series/{uid}: "
            "copy_move)"))}, many=True),
    "detail": serializers.CharField(required=False),
    "retry": serializers.BooleanField(required=False),
})  # fmt: skip


class UploadView(APIView):
    permission_classes = [CanUpload]
    authentication_classes = [TokenAuthentication, HeaderCsrfSessionAuthentication]  # Token first: anonymous -> 401
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        responses={201: UPLOAD_RESULT, 207: OpenApiResponse(UPLOAD_RESULT, description="some files were refused"),
                   400: OpenApiResponse(UPLOAD_RESULT, description="nothing could be stored"),
                   503: OpenApiResponse(UPLOAD_RESULT, description="PACS unreachable; files kept, stored on retry")})
    def post(self, request):
        # Files are ingested while the rest of the body is still arriving (see upload_stream).
        streamed = StreamedUpload(request, "files") if StreamedUpload.possible(request) else None
        files = iter(streamed if streamed else request.FILES.getlist("files"))
        first = next(files, None)
        if first is None:
            return Response({"detail": "no files: send them as multipart field 'files'", "stored": [], "jobs": [],
                             "not_scored": [], "errors": streamed.errors if streamed else []},
                            status=status.HTTP_400_BAD_REQUEST)
        outcome = services.study_upload(user=request.user, files=itertools.chain([first], files),
                                        body_errors=streamed.errors if streamed else None)
        body = {"batch": str(outcome.batch.id), "stored": outcome.stored, "errors": outcome.errors,
                "jobs": JobSerializer(outcome.jobs, many=True).data, "not_scored": outcome.not_scored}
        if outcome.pacs_down:
            body.update(detail=f"The image archive is unreachable; {outcome.batch.instances_staged} instance(s) are "
                               f"kept and will be stored automatically when it is back. ({outcome.pacs_down})",
                        retry=True)
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"})
        if not outcome.stored:
            body["detail"] = "no file could be stored; see errors"
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body, status=status.HTTP_207_MULTI_STATUS if outcome.errors else status.HTTP_201_CREATED)


class StudyFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search")
    modality = django_filters.CharFilter(field_name="series__modality", lookup_expr="iexact", distinct=True)
    verdict = django_filters.ChoiceFilter(method="filter_verdict", choices=[
        ("TB", "TB"), ("TM", "TM"), ("FB", "FB"), ("FM", "FM"),
        ("tampered", "tampering suspected: FB or FM, or a copy-move found in a radiograph"),
        ("genuine", "no tampering found: TB or TM, and no copy-move found"),
        ("copy_move", "a copy-move found in a radiograph"),
        ("unscored", "not scored yet (nor a radiograph checked)"),
        ("nothing_to_score", "scored, but no lung tissue to score: no verdict"),
    ])
    date_from = django_filters.DateFilter(field_name="study_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="study_date", lookup_expr="lte")
    patient_id = django_filters.CharFilter(field_name="patient__patient_id")
    withdrawn = django_filters.BooleanFilter(
        method="filter_withdrawn", label="true: the withdrawn studies instead (admins only; empty for others)")
    ordering = django_filters.ChoiceFilter(method="order", empty_label=None, choices=[
        ("uploaded", "newest upload first (the default)"), ("study_date", "newest study date first"),
        ("patient", "patient ID"),
        ("suspicion", "tampering suspected first (FB/FM most probable first, then copy-moves in radiographs, most "
                      "images first); then newest upload"),
    ])

    TAMPERED = ["FB", "FM"]
    COPY_MOVE = Q(copy_move_images__gt=0)

    def order(self, queryset, name, value):
        if value == "study_date":
            return queryset.order_by(F("study_date").desc(nulls_last=True), "-created")
        if value == "patient":
            return queryset.order_by("patient__patient_id", "-created")
        if value == "suspicion":
            tamper_score = Case(When(verdict__in=self.TAMPERED, then=F("verdict_score")))
            return queryset.order_by(tamper_score.desc(nulls_last=True),
                                     Case(When(self.COPY_MOVE, then=F("copy_move_images"))).desc(nulls_last=True),
                                     "-created")
        return queryset

    def filter_verdict(self, queryset, name, value):
        # A study without a verdict names the model that scored it when it found nothing to score.
        if value == "unscored":
            return queryset.filter(verdict="", model_version="", copy_move_images__isnull=True)
        if value == "nothing_to_score":
            return queryset.filter(verdict="").exclude(model_version="")
        if value == "tampered":
            return queryset.filter(Q(verdict__in=self.TAMPERED) | self.COPY_MOVE)
        if value == "genuine":
            return queryset.filter(verdict__in=["TB", "TM"]).exclude(self.COPY_MOVE)
        if value == "copy_move":
            return queryset.filter(self.COPY_MOVE)
        return queryset.filter(verdict=value)

    def filter_withdrawn(self, queryset, name, value):
        return queryset.filter(withdrawn_at__isnull=not value)

    def filter_search(self, queryset, name, value):
        return queryset.filter(
            Q(patient__patient_id__icontains=value) | Q(patient__patient_name__icontains=value)
            | Q(description__icontains=value) | Q(study_uid__startswith=value)
        )


class StudyListView(generics.ListAPIView):
    permission_classes = [CanBrowseStudies]
    serializer_class = StudySerializer
    filterset_class = StudyFilter

    def get_queryset(self):
        return selectors.study_list(self.request.user, withdrawn=_wants_withdrawn(self.request)).prefetch_related(
            "series").order_by("-created")


def _wants_withdrawn(request) -> bool:
    # The list's base: the withdrawn studies or the others (the filter of the same name then keeps them).
    return request.query_params.get("withdrawn", "").lower() in ("true", "1")


class StudyDetailView(generics.RetrieveAPIView):
    permission_classes = [CanBrowseStudies]
    serializer_class = StudyDetailSerializer
    lookup_field = "study_uid"

    def get_queryset(self):
        # An admin also opens a withdrawn study: its page says so and offers to restore it.
        return selectors.with_counts(selectors.openable_studies(self.request.user)).prefetch_related("series")

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        services.record_study_view(user=request.user, study_uid=kwargs["study_uid"], via="study page")
        return response


class StudyReportView(APIView):
    """The study's tamper report (PDF): verdicts, most suspicious locations with their slices, labels, and
    whether the PACS still holds the images as signed at upload."""

    permission_classes = [CanBrowseStudies]
    renderer_classes = download_renderers("application/pdf")

    @extend_schema(responses={**binary("application/pdf", "the study's tamper report"), **errors(404),
                              **PACS_ERRORS})
    def get(self, request, study_uid: str):
        from portal.studies.report import render_pdf

        study = get_object_or_404(selectors.visible_studies(request.user), study_uid=study_uid)
        integrity = copies = None
        # The provenance ledger lives in portal.claims, and only those who may read provenance see it.
        if apps.is_installed("portal.claims"):
            from portal.claims.copies import study_copies
            from portal.claims.integrity import study_integrity
            from portal.claims.permissions import CanReadProvenance

            if CanReadProvenance().has_permission(request, self):
                integrity = study_integrity(actor=request.user, study=study)
                copies = study_copies(user=request.user, study=study)
        pdf = render_pdf(study, integrity, copies)
        audit(request.user, "study.report_pdf", study)
        return HttpResponse(pdf, content_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="tamper-report-{study.study_uid}.pdf"'})


class StudyAccessLogView(generics.ListAPIView):
    """Who opened the study, who was given or lost access, which claims referenced it: for its uploader
    and admins."""

    permission_classes = [CanBrowseStudies]
    serializer_class = AccessEventSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no study in the path
            return AuditEvent.objects.none()
        study = get_object_or_404(selectors.visible_studies(self.request.user), study_uid=self.kwargs["study_uid"])
        if not (study.uploaded_by_id == self.request.user.pk or has_role(self.request.user, Role.ADMIN)):
            raise PermissionDenied("only the study's uploader and admins read its access log")
        return services.study_access_log(study)


class StudyWithdrawView(APIView):
    """Withdraw the study (uploaded in error, consent withdrawn): hidden from everyone but admins, out of the
    queues and retraining; nothing is deleted from the PACS or the ledger. The uploader or an admin."""

    permission_classes = [CanBrowseStudies]

    @extend_schema(request=inline_serializer("WithdrawRequest", {"reason": serializers.CharField(
        help_text=f"why (kept in the audit log), at most {withdrawal.REASON_MAX_CHARS} characters")}),
        responses={200: StudyDetailSerializer, **errors(400, 403, 404),
                   **errors(409, description="withdrawn already")})
    def post(self, request, study_uid: str):
        study = get_object_or_404(selectors.visible_studies(request.user), study_uid=study_uid)
        try:
            withdrawal.withdraw_study(actor=request.user, study=study, reason=str(request.data.get("reason", "")))
        except withdrawal.AlreadyInState as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return _study_detail(request, study)


class StudyRestoreView(APIView):
    """Bring a withdrawn study back (admins)."""

    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={200: StudyDetailSerializer, **errors(403, 404),
                                            **errors(409, description="not withdrawn")})
    def post(self, request, study_uid: str):
        study = get_object_or_404(selectors.openable_studies(request.user), study_uid=study_uid)
        try:
            withdrawal.restore_study(actor=request.user, study=study)
        except withdrawal.AlreadyInState as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return _study_detail(request, study)


def _study_detail(request, study: Study) -> Response:
    """The study as it is now, for whoever just changed it (an uploader no longer sees it once withdrawn)."""
    study = selectors.with_counts(Study.objects.filter(pk=study.pk).select_related("patient", "withdrawn_by")).get()
    return Response(StudyDetailSerializer(study, context={"request": request}).data)


class UploadBatchMixin:
    """Upload history: what each upload request stored, refused and why, and whether files the PACS could
    not take yet (it was down) have been stored since. Clinicians see their own, admins everyone's."""

    permission_classes = [CanUpload]
    serializer_class = UploadBatchSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: nobody asking
            return UploadBatch.objects.none()
        return selectors.visible_batches(self.request.user)

    def get_serializer(self, *args, **kwargs):
        batches = args[0] if args else []
        batches = batches if isinstance(batches, list | tuple) else [batches]
        uids = {uid for batch in batches for uid in batch.study_uids}
        studies = selectors.openable_studies(self.request.user).filter(study_uid__in=uids)
        kwargs["context"] = {**self.get_serializer_context(), "studies": {s.study_uid: s for s in studies}}
        return super().get_serializer(*args, **kwargs)


class UploadBatchListView(UploadBatchMixin, generics.ListAPIView):
    filterset_fields = {"status": ["exact"]}


class UploadBatchDetailView(UploadBatchMixin, generics.RetrieveAPIView):
    pass


class SeriesDetailView(generics.RetrieveAPIView):
    permission_classes = [CanBrowseStudies]
    serializer_class = SeriesDetailSerializer
    lookup_field = "series_uid"

    def get_queryset(self):
        ordered = Instance.objects.order_by("slice_index", "instance_number")
        return selectors.visible_series(self.request.user).prefetch_related(Prefetch("instances", ordered))

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        services.record_study_view(user=request.user, study_uid=response.data["study_uid"], via="viewer")
        return response


class JobListView(generics.ListAPIView):
    permission_classes = [CanBrowseStudies]
    serializer_class = JobSerializer
    filterset_fields = {"status": ["exact"], "series__series_uid": ["exact"]}

    def get_queryset(self):
        jobs = ScoringJob.objects.filter(series__in=selectors.visible_series(self.request.user))
        if series_uid := self.request.query_params.get("series"):
            jobs = jobs.filter(series__series_uid=series_uid)
        return jobs.select_related("series__study", "model_version")


class JobDetailView(generics.RetrieveAPIView):
    permission_classes = [CanBrowseStudies]
    serializer_class = JobSerializer

    def get_queryset(self):
        return ScoringJob.objects.filter(series__in=selectors.visible_series(self.request.user)).select_related(
            "series__study", "model_version")


class SeriesRescoreView(APIView):
    """Score the series again with the current model (after a failed job, or once a newer model is active)."""

    permission_classes = [CanRescore]

    @extend_schema(request=None, responses={202: JobSerializer, **errors(404),
                                            **errors(409, description="already queued or being scored, or a "
                                                                      "modality the detector does not score")})
    def post(self, request, series_uid: str):
        series = _visible_series_or_404(request.user, series_uid)
        try:
            job = rescore_series(series=series, actor=request.user)
        except CannotRescore as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        job = ScoringJob.objects.select_related("series__study", "model_version").get(pk=job.pk)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _visible_series_or_404(user, series_uid: str) -> Series:
    return get_object_or_404(selectors.visible_series(user), series_uid=series_uid)


_PROBS = serializers.DictField(child=serializers.FloatField(), help_text="TB/TM/FB/FM probabilities")


class SeriesScoresView(APIView):
    permission_classes = [CanBrowseStudies]

    @extend_schema(responses={200: inline_serializer("SeriesScores", {
        "job": serializers.IntegerField(),
        "model_version": inline_serializer("ScoringModel", {
            "name": serializers.CharField(), "status": serializers.CharField(), "trained": serializers.BooleanField(),
        }, allow_null=True),
        "verdict": serializers.CharField(allow_null=True, help_text="TB/TM/FB/FM; null when the detector "
                                         "found nothing to score (scored_locations 0)"),
        "verdict_score": serializers.FloatField(allow_null=True),
        "scored_locations": serializers.IntegerField(
            allow_null=True, help_text="locations scored (in and around the lungs only); 0: no lung tissue, "
            "no verdict; null for jobs scored before it was recorded"),
        "flag_threshold": serializers.FloatField(
            allow_null=True, help_text="a location is a finding when its tamper score (P(FB)+P(FM)) reaches "
            "this; calibrated by the model for a whole series (null for jobs scored before it was recorded)"),
        "flagged_locations": serializers.IntegerField(
            allow_null=True, help_text="locations of the series at or above their threshold"),
        "edge_flag_threshold": serializers.FloatField(
            allow_null=True, help_text="the threshold of the edge_slices, which lack a neighbour "
            "(null: the same as flag_threshold)"),
        "edge_slices": serializers.ListField(
            child=serializers.IntegerField(), help_text="slice indices scored as edges: the first, the last, and "
            "both sides of each gap in the slice positions (a missing neighbour)"),
        "slices": inline_serializer("SliceScore", {
            "slice_index": serializers.IntegerField(), "sop_instance_uid": serializers.CharField(),
            "probs": _PROBS, "tamper": serializers.FloatField()}, many=True),
        "locations": inline_serializer("LocationScore", {
            "slice_index": serializers.IntegerField(), "x": serializers.IntegerField(), "y": serializers.IntegerField(),
            "probs": _PROBS, "tamper": serializers.FloatField()}, many=True),
    }), **errors(404)})  # fmt: skip
    def get(self, request, series_uid: str):
        series = _visible_series_or_404(request.user, series_uid)
        job = latest_done_job(series)
        if job is None:
            raise Http404("this series has not been scored yet")
        version = job.model_version
        slices = list(job.slice_scores.all())
        return Response({
            "job": job.pk,
            "model_version": {"name": version.name, "status": version.status, "trained": version.trained}
            if version else None,
            "verdict": job.verdict or None, "verdict_score": job.verdict_score,
            "scored_locations": job.scored_locations,
            "flag_threshold": job.flag_threshold, "flagged_locations": job.flagged_locations,
            "edge_flag_threshold": job.edge_flag_threshold,
            "edge_slices": job.edge_slice_indices(len(slices)),
            "slices": [{"slice_index": s.slice_index, "sop_instance_uid": s.sop_instance_uid, "probs": s.probs(),
                        "tamper": s.tamper} for s in slices],
            "locations": [{"slice_index": loc.slice_index, "x": loc.x, "y": loc.y, "probs": loc.probs(),
                           "tamper": loc.tamper} for loc in job.location_scores.all()[:200]],
        })


class HeatmapView(APIView):
    permission_classes = [CanBrowseStudies]
    renderer_classes = download_renderers("image/png")

    @extend_schema(responses={**binary("image/png", "tamper heatmap of the slice, 0-255 grey"), **errors(404)})
    def get(self, request, series_uid: str, slice_index: int):
        series = _visible_series_or_404(request.user, series_uid)
        job = latest_done_job(series)
        if job is None or not job.heatmap_path:
            raise Http404("no heatmap for this series yet")
        try:
            heat = heatmap_slice(job, slice_index)
        except (IndexError, FileNotFoundError) as exc:
            raise Http404(f"no heatmap for slice {slice_index}") from exc
        buffer = io.BytesIO()
        Image.fromarray(np.clip(heat * 255, 0, 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
        return HttpResponse(buffer.getvalue(), content_type="image/png",
                            headers={"Cache-Control": "private, max-age=300"})


PASS_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "ETag", "Last-Modified")
# A WADO-RS path segment: a UID, a keyword (series, metadata, frames...), frame numbers "1,2", a bulk data tag.
# Nothing else: the PACS resolves "..", also percent-encoded, after the study in the path was checked.
PROXY_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.,_-]*")


def dicomweb_proxy(request, path: str):
    """WADO-RS for the viewer, per-study permission check, streamed (never buffers a series)."""
    if request.method not in ("GET", "HEAD"):
        return JsonResponse({"detail": "the DICOMweb proxy is read-only; upload through /api/studies/upload"},
                            status=405)
    user = proxy_access.proxy_user(request)
    if not user.is_authenticated:
        return JsonResponse({"detail": "authentication required"}, status=401)
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "studies":
        return JsonResponse({"detail": "only /dicomweb/studies/{StudyInstanceUID}/... is proxied"}, status=404)
    if not all(PROXY_SEGMENT.fullmatch(part) for part in parts):
        return JsonResponse({"detail": "a WADO-RS path has only UIDs, keywords and frame numbers between its "
                                       "slashes (no '..', '%' or empty segments)"}, status=400)  # fmt: skip
    if not proxy_access.can_view_study(user, parts[1]):
        return JsonResponse({"detail": "study not found"}, status=404)
    services.record_study_view(user=user, study_uid=parts[1], via="DICOMweb")
    try:
        upstream = dicomweb.open_stream(path, request.META.get("QUERY_STRING", ""),
                                        request.headers.get("Accept", ""))
    except dicomweb.PacsUnavailable as exc:
        return JsonResponse({"detail": str(exc)}, status=503, headers={"Retry-After": "30"})
    response = StreamingHttpResponse(dicomweb.iter_body(upstream), status=upstream.status)
    for header in PASS_HEADERS:
        if header in upstream.headers:
            response[header] = upstream.headers[header]
    response["Cache-Control"] = "private, max-age=3600"
    return response
