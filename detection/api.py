"""Model versions: list/detail for experts and admins, rollback for admins (mounted in annotations/urls.py)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from annotations.permissions import CanReadModels
from annotations.serializers import ModelVersionSerializer
from detection import promotion
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
