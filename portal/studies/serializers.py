from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations.models import CopyMoveReview
from detection.ml.copy_move_keypoints import transform_changes
from detection.models import CopyMoveCheck, ScoringJob
from detection.radiographs import latest_check
from detection.services import modality_not_scored, not_scored_reason
from portal.accounts.models import AuditEvent
from portal.accounts.services import primary_role
from portal.api_schema import file_errors
from portal.studies.models import Instance, Series, Study, UploadBatch
from portal.studies.withdrawal import can_withdraw


class AccessEventSerializer(serializers.ModelSerializer):
    time = serializers.DateTimeField(source="created")
    user = serializers.CharField(source="actor.username", default=None, allow_null=True)
    role = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["time", "user", "role", "action", "details"]

    def get_role(self, event: AuditEvent) -> str | None:
        if event.actor is None:
            return None
        # One role lookup per person, not per row: a log repeats the same few people.
        roles = self.context.setdefault("role_by_user", {})
        if event.actor_id not in roles:
            roles[event.actor_id] = primary_role(event.actor)
        return roles[event.actor_id]


class ModelVersionBriefSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.CharField()
    trained = serializers.BooleanField()


class JobSerializer(serializers.ModelSerializer):
    series_uid = serializers.CharField(source="series.series_uid")
    study_uid = serializers.CharField(source="series.study.study_uid")
    model_version = ModelVersionBriefSerializer(allow_null=True)

    class Meta:
        model = ScoringJob
        fields = ["id", "series_uid", "study_uid", "status", "error", "attempts", "model_version", "verdict",
                  "verdict_score", "flag_threshold", "flagged_locations", "scored_locations", "bulk", "created",
                  "started", "finished", "duration_s"]


class WithdrawalSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="withdrawn_at")
    by = serializers.CharField(source="withdrawn_by.username", default=None, allow_null=True)
    reason = serializers.CharField(source="withdrawn_reason")


class StudySerializer(serializers.ModelSerializer):
    patient_id = serializers.CharField(source="patient.patient_id")
    patient_name = serializers.CharField(source="patient.patient_name")
    modalities = serializers.SerializerMethodField()
    num_series = serializers.IntegerField(read_only=True)
    num_instances = serializers.IntegerField(read_only=True)
    verdict = serializers.SerializerMethodField()
    nothing_to_score = serializers.SerializerMethodField(
        help_text="scored, but no series had tissue the detector scores (in and around the lungs): no verdict")
    copy_move_dismissed = serializers.IntegerField(read_only=True, help_text=(
        "images the copy-move check found a copy in that an expert dismissed (left out of copy_move_images)"))
    copy_move_confirmed = serializers.IntegerField(read_only=True, help_text=(
        "of copy_move_images, those an expert confirmed as a copy"))
    copy_move_images = serializers.IntegerField(read_only=True, allow_null=True, help_text=(
        "images of its radiograph series in which the copy-move check found a region copied onto another place "
        "and no expert dismissed it (tampering suspected when > 0); null while no check has finished (no "
        "radiograph, or still waiting)"))
    withdrawn = serializers.SerializerMethodField(
        help_text="when, by whom and why the study was withdrawn (only admins see withdrawn studies); null if not")

    class Meta:
        model = Study
        fields = ["study_uid", "patient_id", "patient_name", "study_date", "modalities", "description",
                  "num_series", "num_instances", "verdict", "verdict_score", "model_version", "nothing_to_score",
                  "copy_move_images", "copy_move_dismissed", "copy_move_confirmed", "created", "withdrawn"]

    def get_modalities(self, study: Study) -> list[str]:
        return sorted({s.modality for s in study.series.all() if s.modality})

    def get_verdict(self, study: Study) -> str | None:
        return study.verdict or None

    def get_nothing_to_score(self, study: Study) -> bool:
        return not study.verdict and bool(study.model_version)  # services.update_study_verdict

    @extend_schema_field(WithdrawalSerializer(allow_null=True))
    def get_withdrawn(self, study: Study) -> dict | None:
        return WithdrawalSerializer(study).data if study.withdrawn_at else None


class CopyMoveReviewSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="reviewer.username")

    class Meta:
        model = CopyMoveReview
        fields = ["id", "decision", "reason", "by", "created"]


class CopyMoveCheckSerializer(serializers.ModelSerializer):
    found = serializers.SerializerMethodField(help_text=(
        "each image with a copied region: slice_index, sop_instance_uid, regions [{first, second: x, y, width, "
        "height in pixels, the same content at both; shift; blocks (or keypoints) matched; for a copy that was "
        "also turned or resized, rotation in degrees and scale (second / first); changed: that in words, '' when "
        "it was only moved}], review (an expert's latest: "
        "decision confirmed or dismissed, reason, by, created; null while none)"))

    class Meta:
        model = CopyMoveCheck
        fields = ["status", "error", "created", "finished", "images_checked", "found", "duration_s"]

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_found(self, check: CopyMoveCheck) -> list[dict]:
        if not check.found:
            return []
        return [{**image, "regions": described_regions(image["regions"]),
                 "review": CopyMoveReviewSerializer(review).data if review else None}
                for _, image, review in CopyMoveReview.of_found([check])]


def described_regions(regions: list[dict]) -> list[dict]:
    """Each region found with `changed`: how the copy was turned or resized on the way, in words ('' if not),
    so that every reader says it alike."""
    return [{**region, "changed": transform_changes(region)} for region in regions]


class SeriesBriefSerializer(serializers.ModelSerializer):
    num_instances = serializers.SerializerMethodField()
    job = serializers.SerializerMethodField()
    not_scored_reason = serializers.SerializerMethodField(
        help_text="why the detector does not score this series (e.g. not CT); empty when it does")
    missing_slices = serializers.SerializerMethodField(
        help_text="about how many slices the gaps in the slice positions leave out (0: none)")
    copy_move = serializers.SerializerMethodField(
        help_text="projection radiographs (X-ray, mammography): the latest check for regions copied inside an "
                  "image; null for other series")
    labels_apply = serializers.SerializerMethodField(
        help_text="TB/TM/FB/FM labels may be placed on it: they train the CT detector, so only on the modality "
                  "it reads")

    class Meta:
        model = Series
        fields = ["series_uid", "modality", "description", "series_number", "num_instances", "job",
                  "not_scored_reason", "missing_slices", "copy_move", "labels_apply"]

    def get_labels_apply(self, series: Series) -> bool:
        return not modality_not_scored(series.modality)

    @extend_schema_field(CopyMoveCheckSerializer(allow_null=True))
    def get_copy_move(self, series: Series) -> dict | None:
        check = latest_check(series)
        return CopyMoveCheckSerializer(check).data if check else None

    def get_missing_slices(self, series: Series) -> int:
        return sum(gap.missing for gap in series.slice_gaps()[1])

    def get_not_scored_reason(self, series: Series) -> str:
        return not_scored_reason(series)

    def get_num_instances(self, series: Series) -> int:
        return series.instances.count()

    def get_job(self, series: Series) -> dict | None:
        job = series.scoring_jobs.select_related("model_version", "series__study").first()
        return JobSerializer(job).data if job else None


class StudyDetailSerializer(StudySerializer):
    series = SeriesBriefSerializer(many=True)
    can_withdraw = serializers.SerializerMethodField(help_text="the caller may withdraw it (its uploader, admins)")

    class Meta(StudySerializer.Meta):
        fields = StudySerializer.Meta.fields + ["series", "can_withdraw"]

    def get_can_withdraw(self, study: Study) -> bool:
        request = self.context.get("request")
        return bool(request and not study.withdrawn_at and can_withdraw(request.user, study))


class InstanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = ["sop_instance_uid", "instance_number", "slice_index", "z", "rows", "columns", "pixel_spacing"]


class SliceGapSerializer(serializers.Serializer):
    after_index = serializers.IntegerField(help_text="the gap lies between this slice_index and the next")
    z_from = serializers.FloatField()
    z_to = serializers.FloatField()
    missing = serializers.IntegerField(help_text="about how many slices at the usual step would fill it")


class SliceSpacingSerializer(serializers.Serializer):
    usual_step_mm = serializers.FloatField(allow_null=True, help_text="median distance between neighbouring slices")
    gaps = SliceGapSerializer(many=True, help_text="steps over 1.5 times the usual one: slices missing there")


class SeriesDetailSerializer(SeriesBriefSerializer):
    study_uid = serializers.CharField(source="study.study_uid")
    instances = InstanceSerializer(many=True)
    slice_spacing = serializers.SerializerMethodField()

    class Meta(SeriesBriefSerializer.Meta):
        fields = SeriesBriefSerializer.Meta.fields + ["study_uid", "instances", "slice_spacing"]

    @extend_schema_field(SliceSpacingSerializer)
    def get_slice_spacing(self, series: Series) -> dict:
        step, gaps = series.slice_gaps()
        return {"usual_step_mm": step, "gaps": [gap.as_dict() for gap in gaps]}


class UploadStudySerializer(StudySerializer):
    class Meta(StudySerializer.Meta):
        fields = ["study_uid", "patient_id", "patient_name", "description", "verdict", "verdict_score",
                  "nothing_to_score", "copy_move_images", "copy_move_dismissed", "copy_move_confirmed", "withdrawn"]


class UploadBatchSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.CharField(source="uploaded_by.username", default=None, allow_null=True)
    errors = file_errors()  # the files it refused, and why
    studies = serializers.SerializerMethodField(
        help_text="the studies it added images to that the caller can open (a withdrawn one only for admins)")

    class Meta:
        model = UploadBatch
        fields = ["id", "created", "uploaded_by", "status", "files_received", "instances_staged", "instances_stored",
                  "errors", "attempts", "last_error", "studies"]

    @extend_schema_field(UploadStudySerializer(many=True))
    def get_studies(self, batch: UploadBatch) -> list[dict]:
        by_uid = self.context["studies"]  # the page's studies, read in one query by the view
        return UploadStudySerializer([by_uid[uid] for uid in batch.study_uids if uid in by_uid], many=True).data
