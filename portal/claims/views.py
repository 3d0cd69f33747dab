"""Thin views: JSON API (DRF) under api/claims|provenance|shares and server-rendered pages under claims/."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes, permission_classes, renderer_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from portal.accounts.models import Role
from portal.accounts.permissions import IsAdmin
from portal.accounts.services import audit, has_role
from portal.api_schema import PACS_ERRORS, binary, errors
from portal.claims import copies, crypto, imaging, integrity, ledger, services, share_access
from portal.claims.models import Claim, ClaimImage, EncryptedShare, LedgerEntry
from portal.claims.permissions import CanCheckClaims, CanReadProvenance, CanShareStudies
from portal.claims.report import image_figures, image_rows, render_pdf
from portal.claims.selectors import (
    can_read_study_uid,
    insurer_accounts,
    insurers_with_access,
    readable_studies,
    studies_shared_with_insurer,
    visible_claims,
    visible_shares,
)
from portal.claims.serializers import (
    ClaimCreateSerializer,
    ClaimSerializer,
    EncryptedShareCreatedSerializer,
    EncryptedShareCreateSerializer,
    EncryptedShareSerializer,
    InsurerAccessSerializer,
    ShareInsurerSerializer,
    ShareKeySerializer,
    StudyRefSerializer,
)
from portal.renderers import download_renderers
from portal.studies.models import Series, Study, StudyAccess

FIGURE_LABELS = {"input", "original", "overlay", "diff", "heatmap", "copy_move"}


def _error(exc: Exception, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return Response({"detail": message}, status=code)


def _claim_or_404(user: User, claim_id) -> Claim:
    return get_object_or_404(visible_claims(user), pk=claim_id)


# --- OpenAPI description of the function views below (drf-spectacular) ----------------------------------------

INVALID = errors(400)
GONE = {410: OpenApiResponse(inline_serializer("ShareRevoked", {
    "detail": serializers.CharField(), "ok": serializers.BooleanField(), "revoked": serializers.BooleanField(),
}), description="The share was revoked by its creator.")}
SHARE_FAILURE = inline_serializer("ShareFailure", {
    "detail": serializers.CharField(required=False, help_text="absent when a field is missing: {field: [message]}"),
    "ok": serializers.BooleanField(required=False, help_text="false when present"),
})
KEY_REFUSED = "the key is wrong, or the archive does not decrypt (altered, truncated, not a portal archive)"
KEY_HOLDER_ERRORS = {
    400: OpenApiResponse(SHARE_FAILURE, description=f"Invalid input ({{key: [message]}}), or {KEY_REFUSED}."),
    **errors(404, description="No such share, or its archive is missing on the server."),
    **GONE,
}


def share_opened(**more: serializers.Field) -> dict[str, serializers.Field]:
    """services.encrypted_share_open's result without its private "_members" (a fresh dict: the serializer
    class built from it takes its fields out)."""
    return {
        "header": serializers.DictField(),
        "files": serializers.ListField(child=serializers.CharField()),
        "ledger_verified": serializers.IntegerField(help_text="DICOM files whose pixels are in the provenance ledger"),
        "problems": serializers.ListField(child=serializers.CharField()),
        "ok": serializers.BooleanField(),
        **more,
    }


LEDGER_ENTRY = inline_serializer("LedgerEntryChecked", {  # ledger.entry_dict
    "seq": serializers.IntegerField(),
    "recorded_at": serializers.DateTimeField(),
    **{name: serializers.CharField() for name in ("study_uid", "series_uid", "sop_instance_uid", "pixel_sha256",
                                                  "file_sha256", "render_sha256")},
    "pixel_shape": serializers.ListField(child=serializers.IntegerField()),
    **{name: serializers.CharField() for name in ("pixel_dtype", "transfer_syntax_uid", "key_id", "prev_hash",
                                                  "entry_hash", "signature")},
    "signature_valid": serializers.BooleanField(),
    "problems": serializers.ListField(child=serializers.CharField()),
}, many=True)


# --- claims API ---------------------------------------------------------------------------------------------

@extend_schema(methods=["GET"], operation_id="claims_list", responses=inline_serializer("ClaimSummary", {
    "id": serializers.UUIDField(), "reference": serializers.CharField(), "created": serializers.DateTimeField(),
    "insurer": serializers.CharField(), "report_url": serializers.CharField(),
}, many=True))
@extend_schema(methods=["POST"], operation_id="claims_create", request=ClaimCreateSerializer,
               responses={201: ClaimSerializer, **INVALID})
@api_view(["GET", "POST"])
@permission_classes([CanCheckClaims])
def claim_list(request):
    if request.method == "POST":
        form = ClaimCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            claim = services.claim_create(actor=request.user, **form.validated_data)
        except ValidationError as exc:
            return _error(exc)
        return Response(ClaimSerializer(claim).data, status=status.HTTP_201_CREATED)
    claims = visible_claims(request.user)
    audit(request.user, "claim.list", object_type="Claim", object_id="*", count=claims.count())
    return Response([{"id": str(c.id), "reference": c.reference, "created": c.created, "insurer": c.insurer.username,
                      "report_url": f"/claims/{c.id}/"} for c in claims])


@extend_schema(operation_id="claims_retrieve", responses={200: ClaimSerializer, **errors(404)})
@api_view(["GET"])
@permission_classes([CanCheckClaims])
def claim_detail(request, claim_id):
    claim = _claim_or_404(request.user, claim_id)
    audit(request.user, "claim.view", claim)
    return Response(ClaimSerializer(claim).data)


@extend_schema(
    operation_id="claims_images_create",
    request={"multipart/form-data": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "DICOM, PNG or JPEG images"},
        "file": {"type": "string", "format": "binary", "description": "one image; read only when 'files' is empty"},
    }}},
    responses={
        201: inline_serializer("ClaimImagesAdded", {"images": inline_serializer("ClaimImageAdded", {
            "position": serializers.IntegerField(),
            "provenance": serializers.ChoiceField(choices=ClaimImage.Provenance.choices),
            "status": serializers.ChoiceField(choices=ClaimImage.Status.choices),
            "result": serializers.JSONField(),
        }, many=True)}),
        **errors(400, description="No file sent, or a file was refused."),
        **errors(404),
    },
)
@api_view(["POST"])
@permission_classes([CanCheckClaims])
@parser_classes([MultiPartParser, FormParser])
def claim_images(request, claim_id):
    claim = _claim_or_404(request.user, claim_id)
    files = request.FILES.getlist("files") or request.FILES.getlist("file")
    if not files:
        return Response({"detail": "send one or more files in the 'files' field"}, status=400)
    try:
        images = [services.claim_add_image(actor=request.user, claim=claim, name=f.name, data=f.read())
                  for f in files]
    except ValidationError as exc:
        return _error(exc)
    return Response({"images": [{"position": i.position, "provenance": i.provenance, "status": i.status,
                                 "result": i.result} for i in images]}, status=status.HTTP_201_CREATED)


@extend_schema(operation_id="claims_studies_create", request=StudyRefSerializer, responses={
    201: inline_serializer("ClaimStudyAdded", {"study_uid": serializers.CharField()}), **INVALID, **errors(404),
})
@api_view(["POST"])
@permission_classes([CanCheckClaims])
@parser_classes([JSONParser, FormParser])
def claim_studies(request, claim_id):
    claim = _claim_or_404(request.user, claim_id)
    form = StudyRefSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        study = services.claim_reference_study(
            actor=request.user, claim=claim, study_uid=form.validated_data["study_uid"]
        )
    except ValidationError as exc:
        return _error(exc)
    return Response({"study_uid": study.study_uid}, status=status.HTTP_201_CREATED)


@extend_schema(operation_id="claims_shared_studies_list", responses=inline_serializer("SharedStudy", {
    "study_uid": serializers.CharField(), "description": serializers.CharField(),
    "study_date": serializers.DateField(allow_null=True), "patient_id": serializers.CharField(),
}, many=True))
@api_view(["GET"])
@permission_classes([CanCheckClaims])
def shared_studies(request):
    """Studies clinicians shared with this insurer (what a claim may reference)."""
    studies = studies_shared_with_insurer(request.user)
    audit(request.user, "claim.shared_studies", object_type="Study", object_id="*", count=studies.count())
    return Response([{"study_uid": s.study_uid, "description": s.description, "study_date": s.study_date,
                      "patient_id": s.patient.patient_id} for s in studies])


# --- provenance API -----------------------------------------------------------------------------------------

@extend_schema(operation_id="provenance_keys_retrieve", responses=inline_serializer("PublicKeys", {
    "algorithm": serializers.CharField(),
    "active": serializers.CharField(help_text="id of the key that signs new entries"),
    "keys": inline_serializer("PublicKey", {
        "key_id": serializers.CharField(), "public_key_pem": serializers.CharField(),
        "active": serializers.BooleanField(),
    }, many=True),
}))
@api_view(["GET"])
@permission_classes([AllowAny])
def public_keys(request):
    """Anyone may verify the portal's signatures: every key id with its PEM public key."""
    keys = crypto.public_keys()
    active = crypto.active_key_id()
    return Response({"algorithm": "Ed25519", "active": active,
                     "keys": [{"key_id": kid, "public_key_pem": crypto.public_pem(k), "active": kid == active}
                              for kid, k in sorted(keys.items())]})


@extend_schema(operation_id="provenance_ledger_verify", responses=inline_serializer("LedgerReport", {
    "ok": serializers.BooleanField(), "entries": serializers.IntegerField(),
    "head": serializers.CharField(help_text="entry_hash of the last entry"),
    "problems": inline_serializer("LedgerProblem", {
        "seq": serializers.IntegerField(), "problem": serializers.CharField(),
    }, many=True),
}))
@api_view(["GET"])
@permission_classes([IsAdmin])
def ledger_verify(request):
    report = ledger.verify_chain()
    audit(request.user, "provenance.verify_chain", object_type="Ledger", object_id="*", ok=report.ok,
          entries=report.entries)
    return Response(report.as_dict())


INTEGRITY_PROBLEM = inline_serializer("IntegrityProblem", {
    "series_uid": serializers.CharField(), "sop_instance_uid": serializers.CharField(),
    "slice_index": serializers.IntegerField(allow_null=True), "reason": serializers.CharField(),
}, many=True)


@extend_schema(operation_id="provenance_study_integrity", request=None, responses={
    200: inline_serializer("StudyIntegrity", {
        "ok": serializers.BooleanField(help_text="every indexed instance is in the PACS with its signed pixels"),
        "checked": serializers.IntegerField(), "matching": serializers.IntegerField(),
        "changed": INTEGRITY_PROBLEM, "missing": INTEGRITY_PROBLEM, "unverifiable": INTEGRITY_PROBLEM,
        "seconds": serializers.FloatField(),
    }),
    **errors(404), **PACS_ERRORS,
})
@api_view(["POST"])
@permission_classes([CanReadProvenance])
def study_integrity(request, study_uid):
    """Fetch the study from the PACS and compare every image with what the portal signed at upload."""
    return Response(integrity.study_integrity(actor=request.user, study=_readable_study(request, study_uid)))


def _readable_study(request, study_uid: str) -> Study:
    study = Study.objects.filter(study_uid=study_uid).first()
    if study is None or not can_read_study_uid(request.user, study_uid):
        raise Http404("no such study you may read")
    return study


@extend_schema(operation_id="provenance_study_copies", responses={
    200: inline_serializer("StudyCopy", {
        "study_uid": serializers.CharField(), "patient_id": serializers.CharField(),
        "study_date": serializers.DateField(allow_null=True), "description": serializers.CharField(),
        "shared_images": serializers.IntegerField(help_text="this study's images the other holds pixel for pixel"),
        "images": serializers.IntegerField(help_text="this study's images with signed pixels"),
        "differing": inline_serializer("CopyDifference", {
            "series_uid": serializers.CharField(),
            "slices": serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()),
                                            help_text="[first, last] slice_index ranges of this series that differ"),
        }, many=True),
    }, many=True),
    **errors(404),
})
@api_view(["GET"])
@permission_classes([CanReadProvenance])
def study_copies(request, study_uid):
    """Other studies (that you may read) holding this study's images pixel for pixel, and where they differ."""
    return Response(copies.study_copies(user=request.user, study=_readable_study(request, study_uid)))


@extend_schema(operation_id="provenance_series_copy_pairs", responses={
    200: inline_serializer("CopySlicePairs", {
        "other_study_uid": serializers.CharField(), "other_series_uid": serializers.CharField(),
        "pairs": inline_serializer("CopySlicePair", {
            "slice_index": serializers.IntegerField(), "sop_instance_uid": serializers.CharField(),
            "other_sop_instance_uid": serializers.CharField(allow_null=True,
                                                            help_text="null: no image at this place in the copy"),
            "identical": serializers.BooleanField(help_text="pixel for pixel, by the hashes signed at upload"),
        }, many=True),
    }),
    **errors(404),
})
@api_view(["GET"])
@permission_classes([CanReadProvenance])
def series_copy_pairs(request, series_uid, other_study_uid):
    """This series' slices beside the other study's images at the same place (the viewer's comparison)."""
    series = Series.objects.filter(series_uid=series_uid).select_related("study").first()
    if series is None or not can_read_study_uid(request.user, series.study.study_uid):
        raise Http404("no such series you may read")
    pairs = copies.slice_pairs(series=series, other=_readable_study(request, other_study_uid))
    if pairs is None:
        raise Http404("the other study holds none of this series' images")
    return Response(pairs)


@extend_schema(operation_id="provenance_instance_retrieve", responses={
    200: inline_serializer("InstanceProvenance", {
        "sop_instance_uid": serializers.CharField(), "entries": LEDGER_ENTRY,
    }),
    **errors(404),
})
@api_view(["GET"])
@permission_classes([CanReadProvenance])
def instance_provenance(request, sop_uid):
    entries = list(LedgerEntry.objects.filter(sop_instance_uid=sop_uid).order_by("seq"))
    if not entries or not can_read_study_uid(request.user, entries[0].study_uid):
        raise Http404("no provenance record you may read")
    audit(request.user, "provenance.view", object_type="Instance", object_id=sop_uid)
    keys = crypto.public_keys()
    return Response({"sop_instance_uid": sop_uid, "entries": [ledger.entry_dict(e, keys) for e in entries]})


@extend_schema(operation_id="provenance_instance_png", responses={
    **binary("image/png", "Lung-window 8-bit grey PNG, as an attachment."),
    **errors(404),
    **errors(409, description="The PACS copy does not match the signed original."),
    **errors(422, description="The instance has no decodable image pixels (e.g. a structured report)."),
    **PACS_ERRORS,
})
@api_view(["GET"])
@renderer_classes(download_renderers("image/png"))
@permission_classes([CanReadProvenance])
def instance_png(request, sop_uid):
    """The portal's canonical export of a slice: lung window, 8-bit grey PNG (what claim PNGs are matched to)."""
    entry = LedgerEntry.objects.filter(sop_instance_uid=sop_uid).order_by("seq").first()
    if entry is None or not can_read_study_uid(request.user, entry.study_uid):
        raise Http404("no such instance you may read")
    if not entry.pixel_sha256:  # recorded without decodable pixels (an SR, an unsupported encoding)
        return Response({"detail": "this instance has no image pixels the portal could decode; nothing to render"},
                        status=status.HTTP_422_UNPROCESSABLE_ENTITY)  # fmt: skip
    try:
        ds = services.fetch_original(entry)
    except services.OriginalMismatch as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    audit(request.user, "provenance.export_png", object_type="Instance", object_id=sop_uid)
    response = HttpResponse(imaging.png_bytes(imaging.render_lung(ds)), content_type="image/png")
    response["Content-Disposition"] = f'attachment; filename="{sop_uid}-lung.png"'
    return response


# --- shares API ---------------------------------------------------------------------------------------------

@extend_schema(methods=["GET"], operation_id="shares_studies_insurers_list",
               responses={200: InsurerAccessSerializer(many=True), **errors(404)})
@extend_schema(methods=["POST"], operation_id="shares_studies_insurers_create", request=ShareInsurerSerializer,
               responses={201: InsurerAccessSerializer, **INVALID, **errors(404)})
@api_view(["GET", "POST"])
@permission_classes([CanShareStudies])
@parser_classes([JSONParser, FormParser])
def share_with_insurer(request, study_uid):
    """The insurers who may see this study (and use it in their claims); POST grants one more."""
    study = get_object_or_404(readable_studies(request.user), study_uid=study_uid)
    if request.method == "GET":
        return Response(InsurerAccessSerializer(insurers_with_access(study), many=True).data)
    form = ShareInsurerSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    insurer = User.objects.filter(username=form.validated_data["insurer"]).first()
    if insurer is None:
        return Response({"detail": "no such user"}, status=400)
    try:
        access = services.study_share_with_insurer(actor=request.user, study=study, insurer=insurer)
    except ValidationError as exc:
        return _error(exc)
    return Response(InsurerAccessSerializer(access).data, status=status.HTTP_201_CREATED)


@extend_schema(operation_id="shares_studies_insurers_destroy",
               responses={204: None, **errors(404, description="no such study, or that insurer has no access")})
@api_view(["DELETE"])
@permission_classes([CanShareStudies])
def unshare_with_insurer(request, study_uid, insurer):
    """Withdraw an insurer's access. Their claims keep the reference and finished reports; new image checks no
    longer compare with this study. The frame proxy refuses it from the next request."""
    study = get_object_or_404(readable_studies(request.user), study_uid=study_uid)
    user = get_object_or_404(User, username=insurer)
    try:
        services.study_unshare_with_insurer(actor=request.user, study=study, insurer=user)
    except StudyAccess.DoesNotExist as exc:
        raise Http404(str(exc)) from exc
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(operation_id="insurers_list", responses={200: inline_serializer("InsurerAccount", {
    "username": serializers.CharField(), "name": serializers.CharField(),
}, many=True)})
@api_view(["GET"])
@permission_classes([CanShareStudies])
def insurer_list(request):
    """Insurer accounts a study can be shared with."""
    return Response([{"username": u.username, "name": u.get_full_name()} for u in insurer_accounts()])


@extend_schema(methods=["GET"], operation_id="shares_encrypted_list", responses=EncryptedShareSerializer(many=True),
               parameters=[OpenApiParameter("study", str, description="only the shares of this study UID")])
@extend_schema(methods=["POST"], operation_id="shares_encrypted_create", request=EncryptedShareCreateSerializer,
               responses={201: EncryptedShareCreatedSerializer, **INVALID,
                          **errors(403, description="Only admins export claim bundles."), **errors(404), **PACS_ERRORS})
@api_view(["GET", "POST"])
@permission_classes([CanShareStudies])
@parser_classes([JSONParser, FormParser])
def encrypted_shares(request):
    if request.method == "GET":
        shares = visible_shares(request.user).select_related("study", "created_by", "revoked_by")
        if study_uid := request.query_params.get("study"):
            shares = shares.filter(study__study_uid=study_uid)
        audit(request.user, "share.list", object_type="EncryptedShare", object_id="*")
        return Response(EncryptedShareSerializer(shares, many=True).data)
    form = EncryptedShareCreateSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    study = claim = None
    if data.get("study_uid"):
        study = get_object_or_404(readable_studies(request.user), study_uid=data["study_uid"])
    else:
        if not has_role(request.user, Role.ADMIN):
            return Response({"detail": "only admins export claim bundles"}, status=403)
        claim = get_object_or_404(Claim, pk=data["claim_id"])
    try:
        outcome = services.encrypted_share_create(actor=request.user, study=study, claim=claim,
                                                  recipient=data.get("recipient", ""))
    except ValidationError as exc:
        return _error(exc)
    body = EncryptedShareSerializer(outcome.share).data
    body["key"] = outcome.key  # the only time the key leaves the server
    body["key_notice"] = "Store this key now: the portal keeps only its SHA-256 and cannot show it again."
    body["archive_url"] = f"/api/shares/encrypted/{outcome.share.id}/archive"
    return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(operation_id="shares_encrypted_archive_retrieve", responses={
    **binary("application/octet-stream", "The encrypted archive (.mitp), as an attachment."), **errors(404), **GONE,
})
@api_view(["GET"])
@renderer_classes(download_renderers("application/octet-stream"))
@permission_classes([CanShareStudies])
def encrypted_share_archive(request, share_id):
    share = get_object_or_404(visible_shares(request.user), pk=share_id)
    if share.revoked_at is not None:
        return _gone(share_access.ShareRevoked(share))
    try:
        archive = open(share.archive_path, "rb")  # noqa: SIM115 - FileResponse closes it
    except FileNotFoundError:
        return Response({"detail": "this share's archive is missing on the server"}, status=status.HTTP_404_NOT_FOUND)
    audit(request.user, "share.download", share)
    return FileResponse(archive, as_attachment=True, filename=f"{share.kind}-{share.id}.mitp",
                        content_type="application/octet-stream")


@extend_schema(
    operation_id="shares_import_create",
    request={"multipart/form-data": {"type": "object", "required": ["archive", "key"], "properties": {
        "archive": {"type": "string", "format": "binary", "description": "the encrypted archive (.mitp)"},
        "key": {"type": "string", "description": "the share's key"},
    }}},
    responses={
        200: inline_serializer("ShareImported", share_opened()),
        400: OpenApiResponse(SHARE_FAILURE, description=f"No archive or key ({{detail}} only), or {KEY_REFUSED}."),
        **GONE,
    },
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@parser_classes([MultiPartParser, FormParser])
def encrypted_share_import(request):
    """Verify an archive with its key: authenticated decryption, manifest hashes, ledger check of DICOM pixels."""
    upload = request.FILES.get("archive")
    key = request.data.get("key", "")
    if upload is None or not key:
        return Response({"detail": "send the archive file as 'archive' and the key as 'key'"}, status=400)
    blob = upload.read()
    try:
        share_access.refuse_if_revoked(blob)
        result = services.encrypted_share_open(actor=request.user, blob=blob, key_text=key)
    except share_access.ShareRevoked as exc:
        return _gone(exc)
    except crypto.DecryptionError as exc:
        return Response({"detail": str(exc), "ok": False}, status=status.HTTP_400_BAD_REQUEST)
    result.pop("_members")
    return Response(result)


def _gone(exc: Exception) -> Response:
    return Response({"detail": str(exc), "ok": False, "revoked": True}, status=status.HTTP_410_GONE)


@extend_schema(operation_id="shares_encrypted_revoke_create", request=None, responses={
    200: EncryptedShareSerializer,
    **errors(403, description="Only its creator or an admin may revoke a share."),
    **errors(404),
})
@api_view(["POST"])
@permission_classes([CanShareStudies])
def encrypted_share_revoke(request, share_id):
    share = get_object_or_404(visible_shares(request.user), pk=share_id)
    share = share_access.encrypted_share_revoke(actor=request.user, share=share)
    return Response(EncryptedShareSerializer(share).data)


def _key_holder_call(request, share_id, action):
    """Open a stored share by id with its key (handed over out of band): the key is the credential."""
    share = get_object_or_404(EncryptedShare, pk=share_id)
    form = ShareKeySerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        return share, action(actor=request.user, share=share, key_text=form.validated_data["key"])
    except share_access.ShareRevoked as exc:
        return share, _gone(exc)
    except crypto.DecryptionError as exc:
        return share, Response({"detail": str(exc), "ok": False}, status=status.HTTP_400_BAD_REQUEST)
    except FileNotFoundError:
        return share, Response({"detail": "the archive is missing on the server"}, status=status.HTTP_404_NOT_FOUND)


@extend_schema(operation_id="shares_encrypted_open_create", request=ShareKeySerializer, responses={
    200: inline_serializer("StoredShareOpened", share_opened(share=inline_serializer("StoredShareSummary", {
        "id": serializers.UUIDField(), "kind": serializers.ChoiceField(choices=EncryptedShare.Kind.choices),
        "created": serializers.DateTimeField(), "created_by": serializers.CharField(allow_null=True),
        "recipient": serializers.CharField(), "archive_size": serializers.IntegerField(),
    }))),
    **KEY_HOLDER_ERRORS,
})
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@parser_classes([JSONParser, FormParser])
def encrypted_share_open(request, share_id):
    """Verify a stored share with its key: what it contains and whether its DICOM pixels are in the ledger."""
    share, result = _key_holder_call(request, share_id, share_access.stored_share_open)
    if isinstance(result, Response):
        return result
    return Response({**result, "share": {"id": str(share.id), "kind": share.kind, "created": share.created,
                                         "created_by": share.created_by.username if share.created_by else None,
                                         "recipient": share.recipient, "archive_size": share.archive_size}})


@extend_schema(operation_id="shares_encrypted_files_create", request=ShareKeySerializer, responses={
    **binary("application/zip", "The decrypted files and manifest.json, as an attachment."), **KEY_HOLDER_ERRORS,
})
@api_view(["POST"])
@renderer_classes(download_renderers("application/zip"))
@permission_classes([IsAuthenticated])
@parser_classes([JSONParser, FormParser])
def encrypted_share_files(request, share_id):
    """The decrypted files of a stored share (a zip with manifest.json), for the holder of its key."""
    share, result = _key_holder_call(request, share_id, share_access.stored_share_files)
    if isinstance(result, Response):
        return result
    response = HttpResponse(result, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{share.kind}-{share.id}.zip"'
    return response


# --- HTML pages -----------------------------------------------------------------------------------------------

def _insurer_page(request) -> None:
    if not has_role(request.user, Role.INSURER, Role.ADMIN):
        raise PermissionDenied


@login_required
@require_http_methods(["GET", "POST"])
def claims_page(request):
    _insurer_page(request)
    error = ""
    if request.method == "POST":
        try:
            claim = services.claim_create(actor=request.user, reference=request.POST.get("reference", ""),
                                          description=request.POST.get("description", ""))
            study_uid = request.POST.get("study_uid", "").strip()
            if study_uid:
                services.claim_reference_study(actor=request.user, claim=claim, study_uid=study_uid)
            return redirect("claims:page-detail", claim_id=claim.id)
        except ValidationError as exc:
            error = "; ".join(exc.messages)
    claims = visible_claims(request.user).annotate(n_images=Count("images"), **{
        f"n_{s}": Count("images", filter=Q(images__status=s)) for s in ClaimImage.Status.values})
    audit(request.user, "claim.list", object_type="Claim", object_id="*", count=claims.count())
    # Worst first, as an insurer reads a claim's results.
    order = [ClaimImage.Status.TAMPERED, ClaimImage.Status.SUSPICIOUS, ClaimImage.Status.UNVERIFIED,
             ClaimImage.Status.PENDING, ClaimImage.Status.AUTHENTIC]
    rows = [(c, [(s, getattr(c, f"n_{s}")) for s in order if getattr(c, f"n_{s}")]) for c in claims]
    return render(request, "claims/list.html", {
        "rows": rows, "shared": studies_shared_with_insurer(request.user), "error": error,
    }, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def claim_page(request, claim_id):
    _insurer_page(request)
    claim = _claim_or_404(request.user, claim_id)
    error = ""
    if request.method == "POST":
        try:
            if request.POST.get("study_uid"):
                services.claim_reference_study(actor=request.user, claim=claim, study_uid=request.POST["study_uid"])
            for f in request.FILES.getlist("files"):
                services.claim_add_image(actor=request.user, claim=claim, name=f.name, data=f.read())
            return redirect("claims:page-detail", claim_id=claim.id)
        except ValidationError as exc:
            error = "; ".join(exc.messages)
    audit(request.user, "claim.view", claim)
    images = [{"image": i, "rows": image_rows(i), "figures": image_figures(i)} for i in claim.images.all()]
    return render(request, "claims/detail.html", {
        "claim": claim, "images": images, "error": error,
        "pending": any(i["image"].status == ClaimImage.Status.PENDING for i in images),
        "shared": studies_shared_with_insurer(claim.insurer).exclude(pk__in=claim.studies.all()),
    }, status=400 if error else 200)


@login_required
def claim_pdf(request, claim_id):
    if not has_role(request.user, Role.INSURER, Role.ADMIN):
        return HttpResponseForbidden("insurers only")
    claim = _claim_or_404(request.user, claim_id)
    audit(request.user, "claim.report_pdf", claim)
    response = HttpResponse(render_pdf(claim), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="claim-{claim.reference}-{claim.id}.pdf"'
    return response


@login_required
def claim_figure(request, claim_id, position: int, label: str):
    if not has_role(request.user, Role.INSURER, Role.ADMIN):
        return HttpResponseForbidden("insurers only")
    claim = _claim_or_404(request.user, claim_id)
    image = get_object_or_404(ClaimImage, claim=claim, position=position)
    if label not in FIGURE_LABELS:
        raise Http404
    path: Path = services.claim_image_path(image, label)
    if not path.exists():
        raise Http404
    audit(request.user, "claim.view_figure", claim, image=position, figure=label)
    return FileResponse(open(path, "rb"), content_type="image/png")  # noqa: SIM115

