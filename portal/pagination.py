"""The paginated list answer of the function-based API views (what generic views get from DRF itself)."""

from django.db.models import QuerySet
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer


def paginate(request: Request, queryset: QuerySet, serializer_cls: type[BaseSerializer]) -> Response:
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request)
    return paginator.get_paginated_response(serializer_cls(page, many=True, context={"request": request}).data)
