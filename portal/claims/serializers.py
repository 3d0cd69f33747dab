from rest_framework import serializers

from portal.claims.models import Claim, ClaimImage, EncryptedShare


class ClaimImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = ClaimImage
        fields = ["position", "kind", "original_name", "file_sha256", "created", "provenance", "status", "result"]


class ClaimSerializer(serializers.ModelSerializer):
    insurer = serializers.CharField(source="insurer.username", read_only=True)
    studies = serializers.SlugRelatedField(slug_field="study_uid", many=True, read_only=True)
    images = ClaimImageSerializer(many=True, read_only=True)
    report_url = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Claim
        fields = ["id", "reference", "description", "insurer", "created", "studies", "images", "report_url",
                  "pdf_url"]

    def get_report_url(self, obj) -> str:
        return f"/claims/{obj.id}/"

    def get_pdf_url(self, obj) -> str:
        return f"/claims/{obj.id}/report.pdf"


class ClaimCreateSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class StudyRefSerializer(serializers.Serializer):
    study_uid = serializers.CharField(max_length=64)


class ShareInsurerSerializer(serializers.Serializer):
    insurer = serializers.CharField(max_length=150)


class InsurerAccessSerializer(serializers.Serializer):
    """An insurer's access to a study (a StudyAccess of kind share)."""

    study_uid = serializers.CharField(source="study.study_uid")
    insurer = serializers.CharField(source="user.username")
    name = serializers.CharField(source="user.get_full_name")
    granted_by = serializers.CharField(source="granted_by.username", allow_null=True, default=None)
    created = serializers.DateTimeField()


class EncryptedShareCreateSerializer(serializers.Serializer):
    study_uid = serializers.CharField(max_length=64, required=False)
    claim_id = serializers.UUIDField(required=False)
    recipient = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        # A share is one study's archive or one claim's bundle; guessing which was meant would share the wrong one.
        if bool(attrs.get("study_uid")) == bool(attrs.get("claim_id")):
            raise serializers.ValidationError("give exactly one of study_uid or claim_id")
        return attrs


class EncryptedShareSerializer(serializers.ModelSerializer):
    # None for a claim share, a deleted user or study, an unrevoked share (allow_null: for the schema only).
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)
    study_uid = serializers.CharField(source="study.study_uid", read_only=True, default=None, allow_null=True)
    revoked_by = serializers.CharField(source="revoked_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = EncryptedShare
        fields = ["id", "kind", "study_uid", "created", "created_by", "recipient", "header", "archive_size",
                  "key_sha256", "revoked_at", "revoked_by"]


class ShareKeySerializer(serializers.Serializer):
    key = serializers.CharField(max_length=128, trim_whitespace=True)


class EncryptedShareCreatedSerializer(EncryptedShareSerializer):
    """The response to creating a share (documents encrypted_shares POST): the share plus its key, shown once."""

    key = serializers.CharField(read_only=True)
    key_notice = serializers.CharField(read_only=True)
    archive_url = serializers.CharField(read_only=True)

    class Meta(EncryptedShareSerializer.Meta):
        fields = [*EncryptedShareSerializer.Meta.fields, "key", "key_notice", "archive_url"]
