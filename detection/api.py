"""Model versions: list/detail for experts and admins, rollback for admins (mounted in annotations/urls.py)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from annotations.permissions import CanReadModels
from annotations.serializers import ModelVersionSerializer
from detection import promotion, services
from detection.models import ModelVersion
from portal.accounts.permissions import IsAdmin
from portal.api_schema import errors, paged
from portal.pagination import paginate


@extend_schema(operation_id="models_list", responses=paged(ModelVersionSerializer),
               parameters=[OpenApiParameter("page", int)])
@api_view(["GET"])
@permission_classes([CanReadModels])
def model_list(request):
    return paginate(request, ModelVersion.objects.select_related("parent").order_by("-created"), ModelVersionSerializer)


@extend_schema(operation_id="models_retrieve", responses={200: ModelVersionSerializer, **errors(404)})
@api_view(["GET"])
@permission_classes([CanReadModels])
def model_detail(request, pk: int):
    return Response(ModelVersionSerializer(get_object_or_404(ModelVersion, pk=pk)).data)


@extend_schema(request=None, responses={
    200: ModelVersionSerializer, **errors(404), **errors(409, description="this version was never promoted")})
@api_view(["POST"])
@permission_classes([IsAdmin])
def model_rollback(request, pk: int):
    """Re-activate this (previously promoted) version."""
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        version = promotion.rollback(actor=request.user, to=version)
    except ValueError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return Response(ModelVersionSerializer(version).data)


@extend_schema(methods=["GET"], operation_id="models_stale_series", responses=inline_serializer("StaleSeries", {
    "model": serializers.CharField(help_text="the model that scores new uploads"),
    "stale_series": serializers.IntegerField(help_text="series whose latest scores are another model's"),
}))
@extend_schema(methods=["POST"], operation_id="models_rescore_stale", request=None, responses={
    202: inline_serializer("RescoreStale", {"queued": serializers.IntegerField(),
                                            "already_pending": serializers.IntegerField(),
                                            "not_scored": serializers.IntegerField(help_text="not CT")}),
    **errors(403)})  # fmt: skip
@api_view(["GET", "POST"])
@permission_classes([CanReadModels])
def stale_series(request):
    """Series last scored by another model than the current one; an admin re-scores them all (POST)."""
    if request.method == "GET":
        return Response({"model": services.current_model_version().name,
                         "stale_series": services.stale_series().count()})
    if not IsAdmin().has_permission(request, None):
        return Response({"detail": "only admins re-score every series"}, status=status.HTTP_403_FORBIDDEN)
    return Response(services.rescore_stale(actor=request.user), status=status.HTTP_202_ACCEPTED)


@extend_schema(operation_id="models_single_image", responses={200: inline_serializer("SingleImageModel", {
    "in_use": serializers.BooleanField(help_text="false: claim images are scored by the active series model"),
    "model_kind": serializers.ChoiceField(["single-image", "series"]),
    "model": serializers.CharField(),
    "thresholds": serializers.DictField(child=serializers.FloatField(),
                                        help_text="tamper threshold per input path (dicom, lung_png)"),
    "arch": serializers.CharField(required=False), "trained": serializers.BooleanField(required=False),
    "channels": serializers.ListField(required=False, help_text="(window, z offset) per input channel"),
    "alpha": serializers.FloatField(required=False, allow_null=True,
                                    help_text="expected genuine locations above the threshold per image"),
    "metrics": serializers.DictField(required=False, help_text="patch-level validation metrics"),
    "validation_z": serializers.ListField(child=serializers.IntegerField(), required=False),
    "training_data": serializers.CharField(required=False),
})})
@api_view(["GET"])
@permission_classes([CanReadModels])
def single_image_model(request):
    """The model that scores claim images (one slice each), with its thresholds."""
    return Response(services.single_image_model_info())
