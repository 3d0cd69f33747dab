from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from annotations.models import CopyMoveReview, Label, LabelRevision, Measurement, QueueItem, RetrainRun
from detection.ml.constants import CLASSES
from detection.models import ModelVersion
from portal.studies.serializers import CopyMoveReviewSerializer, described_regions


@extend_schema_field(OpenApiTypes.BOOL)
class IsMine(serializers.Field):
    """Whether the requesting user is the object's owner (``owner``: the attribute holding the owner's id)."""

    def __init__(self, owner: str, **kwargs):
        super().__init__(source=owner, read_only=True, **kwargs)

    def to_representation(self, owner_id: int) -> bool:
        request = self.context.get("request")
        return bool(request and owner_id == request.user.pk)


class LabelSerializer(serializers.ModelSerializer):
    study_uid = serializers.CharField(source="study.study_uid", read_only=True)
    series_uid = serializers.CharField(source="series.series_uid", read_only=True)
    annotator = serializers.CharField(source="annotator.username", read_only=True)
    is_mine = IsMine("annotator_id")

    class Meta:
        model = Label
        fields = ["id", "study_uid", "series_uid", "sop_instance_uid", "slice_index", "x", "y", "box",
                  "label_class", "annotator", "created", "updated", "comment", "is_mine", "version",
                  "queue_item", "is_adjudication"]  # fmt: skip


class BoxField(serializers.ListField):
    child = serializers.FloatField()

    def __init__(self, **kw):
        super().__init__(min_length=4, max_length=4, allow_null=True, required=False, **kw)


class LabelCreateSerializer(serializers.Serializer):
    series_uid = serializers.CharField()
    sop_instance_uid = serializers.CharField(required=False, allow_blank=True, default="")
    slice_index = serializers.IntegerField(min_value=0)
    x = serializers.IntegerField(min_value=0)
    y = serializers.IntegerField(min_value=0)
    box = BoxField(default=None)
    label_class = serializers.ChoiceField(choices=CLASSES)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    queue_item = serializers.IntegerField(required=False, allow_null=True, default=None)


class LabelUpdateSerializer(serializers.Serializer):
    sop_instance_uid = serializers.CharField(required=False, allow_blank=True)
    slice_index = serializers.IntegerField(min_value=0, required=False)
    x = serializers.IntegerField(min_value=0, required=False)
    y = serializers.IntegerField(min_value=0, required=False)
    box = BoxField()
    label_class = serializers.ChoiceField(choices=CLASSES, required=False)
    comment = serializers.CharField(required=False, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RevisionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

    class Meta:
        model = LabelRevision
        fields = ["version", "action", "label_class", "slice_index", "x", "y", "box", "comment", "is_deleted",
                  "reason", "actor", "created"]  # fmt: skip


class QueueItemSerializer(serializers.ModelSerializer):
    study_uid = serializers.CharField(source="series.study.study_uid", read_only=True)
    series_uid = serializers.CharField(source="series.series_uid", read_only=True)
    leased_to = serializers.CharField(source="leased_to.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = QueueItem
        fields = ["id", "study_uid", "series_uid", "sop_instance_uid", "slice_index", "x", "y", "lease_expires",
                  "strategy", "priority", "probs", "required_labels", "status", "consensus_class", "leased_to"]


class RetrainProgressSerializer(serializers.Serializer):
    every_n_labels = serializers.IntegerField(help_text="retrain after this many new labels; 0: manual only")
    labels_since_last = serializers.IntegerField(help_text="new labels since the last retraining run")


class QueueSummarySerializer(serializers.Serializer):
    available = serializers.IntegerField(help_text="open items 'next' can give you now")
    held = QueueItemSerializer(allow_null=True, help_text="the item you hold a live lease on, if any")
    held_by_others = serializers.IntegerField(help_text="open items another annotator holds a live lease on")
    awaiting_other_annotators = serializers.IntegerField(
        help_text="items you labelled that still need another annotator's independent label")
    adjudication = serializers.IntegerField(help_text="items whose labels disagree, waiting for an expert")
    done = serializers.IntegerField()
    my_labels = serializers.IntegerField(help_text="your current (not deleted) labels")
    retraining = RetrainProgressSerializer()
    my_agreement = inline_serializer("MyAgreement", {
        "decided": serializers.IntegerField(help_text="your labels on items read by two or more, now decided"),
        "agreed_with_final": serializers.IntegerField(help_text="of those, how many match the final answer"),
    })  # fmt: skip


class AdjudicationItemSerializer(QueueItemSerializer):
    labels = serializers.SerializerMethodField()

    class Meta(QueueItemSerializer.Meta):
        fields = [*QueueItemSerializer.Meta.fields, "labels"]

    def get_labels(self, obj: QueueItem) -> list[dict]:
        return [{"id": lab.pk, "annotator": lab.annotator.username, "label_class": lab.label_class,
                 "comment": lab.comment, "is_adjudication": lab.is_adjudication}
                for lab in obj.labels.all() if not lab.is_deleted]  # fmt: skip


class AgreementQuerySerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="only labels given on or after this day")


class _KappaField(serializers.FloatField):
    def __init__(self, **kwargs):
        super().__init__(allow_null=True, help_text="Cohen's kappa; null where undefined (one class throughout)",
                         **kwargs)  # fmt: skip


class _RateField(serializers.FloatField):
    def __init__(self, **kwargs):
        super().__init__(allow_null=True, help_text="fraction 0..1; null with nothing to compare", **kwargs)


class _AgreementOverallSerializer(serializers.Serializer):
    items_with_two_or_more_labels = serializers.IntegerField()
    label_pairs = serializers.IntegerField(help_text="pairs of labels by different annotators on the same item")
    agreement = _RateField()
    kappa = _KappaField()


class _AgreementPairSerializer(serializers.Serializer):
    annotators = serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2)
    items = serializers.IntegerField()
    agreement = _RateField()
    kappa = _KappaField()


class _AnnotatorAgreementSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    labels = serializers.IntegerField(help_text="independent labels on review-queue items")
    classes = serializers.DictField(child=serializers.IntegerField(), help_text="labels per class")
    decided = serializers.IntegerField(help_text="labels on items read by two or more that have a final answer")
    agreed_with_final = serializers.IntegerField()
    overruled = serializers.IntegerField(help_text="labels an expert's adjudication decided against")
    agreement_with_final = _RateField()


class _ModelAgreementSerializer(serializers.Serializer):
    decided = serializers.IntegerField(help_text="decided items with the model's class probabilities")
    agreed_with_final = serializers.IntegerField()
    agreement_with_final = _RateField()


class AgreementSerializer(serializers.Serializer):
    classes = serializers.ListField(child=serializers.ChoiceField(choices=CLASSES))
    overall = _AgreementOverallSerializer(help_text="every pair of labels on the same item; kappa pools both orders")
    pairs = _AgreementPairSerializer(many=True)
    annotators = _AnnotatorAgreementSerializer(many=True)
    confusion = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()),
                                      help_text="[i][j]: one annotator chose classes[i] where another chose classes[j]")
    model = _ModelAgreementSerializer(help_text="the model's most probable class vs the final answer")


class AdjudicateSerializer(serializers.Serializer):
    label_class = serializers.ChoiceField(choices=CLASSES)
    reason = serializers.CharField()
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class RelabelSerializer(serializers.Serializer):
    label_class = serializers.ChoiceField(choices=CLASSES)
    reason = serializers.CharField(max_length=1000)


class QueueRebuildSerializer(serializers.Serializer):
    series_uid = serializers.CharField()
    strategy = serializers.CharField(required=False, allow_blank=True, default="")
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=500, allow_null=True, default=None)
    required_labels = serializers.IntegerField(required=False, min_value=1, max_value=5, allow_null=True,
                                               default=None)


class CtganImportSerializer(serializers.Serializer):
    """A CT-GAN label table as an uploaded file or as text; exactly one of the two."""

    file = serializers.FileField(required=False)
    csv = serializers.CharField(required=False, trim_whitespace=False)
    series_uid = serializers.CharField(required=False)

    def validate(self, attrs: dict) -> dict:
        if ("file" in attrs) == ("csv" in attrs):
            raise serializers.ValidationError("send the CT-GAN table as a file ('file') or as text ('csv')")
        if "file" in attrs:
            try:
                attrs["csv"] = attrs.pop("file").read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise serializers.ValidationError({"file": f"not a UTF-8 text file ({exc.reason} at byte "
                                                           f"{exc.start})"}) from exc  # fmt: skip
        return attrs


class ModelVersionSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.name", default=None, read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "arch", "status", "trained", "parent", "metrics", "config", "notes", "created",
                  "promoted_at"]


class RetrainRunSerializer(serializers.ModelSerializer):
    base_version = serializers.CharField(source="base_version.name", default=None, read_only=True, allow_null=True)
    candidate_version = serializers.CharField(source="candidate_version.name", default=None, read_only=True,
                                              allow_null=True)  # fmt: skip

    class Meta:
        model = RetrainRun
        fields = ["id", "status", "trigger", "n_labels", "base_version", "candidate_version", "metrics", "error",
                  "created", "finished"]


class MeasurementSerializer(serializers.ModelSerializer):
    series_uid = serializers.CharField(source="series.series_uid", read_only=True)
    author = serializers.CharField(source="author.username", read_only=True)
    is_mine = IsMine("author_id")

    class Meta:
        model = Measurement
        fields = ["id", "series_uid", "sop_instance_uid", "slice_index", "points", "length_mm", "author", "is_mine",
                  "created", "updated"]  # fmt: skip


class PointsField(serializers.ListField):
    """[[x0, y0], [x1, y1]] in native pixels (x = column, y = row), fractional."""

    child = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)

    def __init__(self, **kw):
        super().__init__(min_length=2, max_length=2, **kw)


class MeasurementCreateSerializer(serializers.Serializer):
    sop_instance_uid = serializers.CharField()
    points = PointsField()


class MeasurementMoveSerializer(serializers.Serializer):
    points = PointsField()


class CopyMoveReviewCreateSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=CopyMoveReview.Decision.choices,
                                       help_text="confirmed: a copy indeed; dismissed: no copy (say why)")
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="why; required to dismiss (kept with the review and in the audit log)")


class CopyMoveFindingSerializer(serializers.Serializer):
    """An image the copy-move check found a copy in, with the latest expert review."""

    study_uid = serializers.CharField(source="study.study_uid")
    series_uid = serializers.CharField(source="check.series.series_uid")
    modality = serializers.CharField(source="check.series.modality")
    sop_instance_uid = serializers.CharField(source="image.sop_instance_uid")
    slice_index = serializers.IntegerField(source="image.slice_index")
    regions = serializers.SerializerMethodField(help_text="as in the series' copy_move.found")
    checked = serializers.DateTimeField(source="check.finished", help_text="when the check finished")
    review = serializers.SerializerMethodField(help_text="the latest expert review; null while none")

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_regions(self, finding) -> list[dict]:
        return described_regions(finding.image["regions"])

    @extend_schema_field(CopyMoveReviewSerializer(allow_null=True))
    def get_review(self, finding) -> dict | None:
        return CopyMoveReviewSerializer(finding.review).data if finding.review else None
