"""DICOM SR export of a study's labels, measured distances and copy-move findings: Comprehensive 3D SR, TID 1500
measurement report, one planar ROI measurement group per label with the label's point (or box) as an
image-region SCOORD on its instance, one per distance measured in the viewer (its two end points as a
polyline, its length in mm), and two per region the copy-move check found copied inside a radiograph (a box
at each place, the check named as the algorithm, the expert's latest review as a qualitative evaluation)."""

from __future__ import annotations

import numpy as np
import pydicom
from highdicom import UID
from highdicom.sr import (
    AlgorithmIdentification,
    CodedConcept,
    Comprehensive3DSR,
    GraphicTypeValues,
    ImageRegion,
    Measurement,
    MeasurementReport,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    PlanarROIMeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    SourceImageForRegion,
    TrackingIdentifier,
)
from pydicom.sr.codedict import codes

from annotations.measurements import study_measurements
from annotations.models import CopyMoveReview, Label
from annotations.models import Measurement as MeasuredDistance
from annotations.selectors import export_labels
from detection.ml.radiograph import PROJECTION_MODALITIES
from detection.models import CopyMoveCheck
from detection.radiographs import latest_done_checks
from portal.studies.models import Instance, Study

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
# Private (99PORTAL) codes for the CT-GAN vocabulary: no standard code says "tumour injected by a GAN".
TAMPER_CLASS = CodedConcept("TAMPER", "99PORTAL", "Tamper class")
CLASS_CODES = {
    "TB": CodedConcept("TB", "99PORTAL", "True benign (genuine, no nodule)"),
    "TM": CodedConcept("TM", "99PORTAL", "True malignant (genuine nodule)"),
    "FB": CodedConcept("FB", "99PORTAL", "False benign (nodule removed)"),
    "FM": CodedConcept("FM", "99PORTAL", "False malignant (nodule injected)"),
}

COPY_MOVE = CodedConcept("COPYMOVE", "99PORTAL", "Region copied within the image")
COPY_MOVE_CHECK = AlgorithmIdentification(name="tamper-portal copy-move check", version="blocks+keypoints")
EXPERT_REVIEW = CodedConcept("CMREVIEW", "99PORTAL", "Expert review of the copy-move finding")
REVIEW_CODES = {
    CopyMoveReview.Decision.CONFIRMED: CodedConcept("CONFIRMED", "99PORTAL", "Confirmed as a copy by an expert"),
    CopyMoveReview.Decision.DISMISSED: CodedConcept("DISMISSED", "99PORTAL", "Dismissed by an expert (no copy)"),
    None: CodedConcept("UNREVIEWED", "99PORTAL", "Not reviewed by an expert"),
}
PROCEDURES = {"CT": codes.LN.CTUnspecifiedBodyRegion, "MR": codes.LN.MRIUnspecifiedBodyRegion,
              **dict.fromkeys(PROJECTION_MODALITIES, codes.LN.XRUnspecifiedBodyRegion)}


def _evidence(study: Study, instances: list[Instance]) -> list[pydicom.Dataset]:
    """Header-only stand-ins for the referenced images (the SR copies patient/study identity from them)."""
    out = []
    for inst in instances:
        ds = pydicom.Dataset()
        ds.PatientID = study.patient.patient_id
        ds.PatientName = study.patient.patient_name
        ds.PatientSex = study.patient.sex
        ds.PatientBirthDate = study.patient.birth_date
        ds.StudyInstanceUID = study.study_uid
        ds.StudyDate = study.study_date.strftime("%Y%m%d") if study.study_date else ""
        ds.StudyTime = ""
        ds.StudyID = ""
        ds.AccessionNumber = study.accession_number
        ds.ReferringPhysicianName = ""
        ds.SeriesInstanceUID = inst.series.series_uid
        ds.Modality = inst.series.modality or "CT"
        ds.SOPClassUID = inst.sop_class_uid or CT_IMAGE_STORAGE
        ds.SOPInstanceUID = inst.sop_instance_uid
        out.append(ds)
    return out


def _region(kind: GraphicTypeValues, data: np.ndarray, inst: Instance) -> ImageRegion:
    """An image-region SCOORD in native pixels on the instance."""
    source = SourceImageForRegion(
        referenced_sop_class_uid=inst.sop_class_uid or CT_IMAGE_STORAGE,
        referenced_sop_instance_uid=inst.sop_instance_uid,
    )
    return ImageRegion(graphic_type=kind, graphic_data=data, source_image=source)


def _group(label: Label, inst: Instance) -> PlanarROIMeasurementsAndQualitativeEvaluations:
    if label.box:
        x0, y0, x1, y1 = (float(v) for v in label.box)
        kind, data = GraphicTypeValues.POLYLINE, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
    else:
        kind, data = GraphicTypeValues.POINT, np.array([[float(label.x), float(label.y)]])
    return PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=UID(), identifier=f"label-{label.pk}-v{label.version}"),
        referenced_region=_region(kind, data, inst),
        finding_type=CLASS_CODES[label.label_class],
        qualitative_evaluations=[QualitativeEvaluation(TAMPER_CLASS, CLASS_CODES[label.label_class])],
    )


def _distance_group(distance: MeasuredDistance, inst: Instance) -> PlanarROIMeasurementsAndQualitativeEvaluations:
    length = [] if distance.length_mm is None else [
        Measurement(name=codes.SCT.Length, value=distance.length_mm, unit=codes.UCUM.Millimeter)]
    return PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=UID(), identifier=f"measurement-{distance.pk}"),
        referenced_region=_region(GraphicTypeValues.POLYLINE, np.array(distance.points, dtype=float), inst),
        measurements=length,
    )  # fmt: skip


def _copy_move_groups(check: CopyMoveCheck, image: dict, review: CopyMoveReview | None,
                      inst: Instance) -> list[PlanarROIMeasurementsAndQualitativeEvaluations]:
    """Both places of each region copied inside one image, as boxes."""
    groups, evaluation = [], QualitativeEvaluation(EXPERT_REVIEW, REVIEW_CODES[review.decision if review else None])
    for number, region in enumerate(image["regions"], 1):
        for place in ("first", "second"):
            x, y, w, h = (float(v) for v in region[place])
            box = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]])
            groups.append(PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=TrackingIdentifier(
                    uid=UID(), identifier=f"copy-move-{check.pk}-image-{image['slice_index'] + 1}-{number}-{place}"),
                referenced_region=_region(GraphicTypeValues.POLYLINE, box, inst),
                finding_type=COPY_MOVE,
                algorithm_id=COPY_MOVE_CHECK,
                qualitative_evaluations=[evaluation],
            ))  # fmt: skip
    return groups


def export_sr(study: Study) -> pydicom.Dataset:
    labels = [lab for lab in export_labels(study) if lab.sop_instance_uid]
    distances = list(study_measurements(study))
    found = CopyMoveReview.of_found(latest_done_checks(study))
    sops = ({lab.sop_instance_uid for lab in labels} | {d.sop_instance_uid for d in distances}
            | {image["sop_instance_uid"] for _, image, _ in found})
    instances = {
        i.sop_instance_uid: i for i in Instance.objects.filter(sop_instance_uid__in=sops).select_related("series")
    }
    labels = [lab for lab in labels if lab.sop_instance_uid in instances]
    distances = [d for d in distances if d.sop_instance_uid in instances]
    found = [(check, image, review) for check, image, review in found if image["sop_instance_uid"] in instances]
    if not labels and not distances and not found:
        raise ValueError("no labels, measurements or copy-move findings with a referenced instance in this study")
    observers = sorted({lab.annotator.get_username() for lab in labels} | {d.author.get_username() for d in distances}
                       | {review.reviewer.get_username() for _, _, review in found if review})
    procedures = {PROCEDURES.get((inst.series.modality or "CT").upper()) for inst in instances.values()} - {None}
    report = MeasurementReport(
        observation_context=ObservationContext(
            observer_person_context=ObserverContext(
                observer_type=codes.DCM.Person,
                observer_identifying_attributes=PersonObserverIdentifyingAttributes(
                    name=", ".join(observers) or "tamper-portal"),
            )
        ),
        procedure_reported=sorted(procedures, key=str) or codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[_group(lab, instances[lab.sop_instance_uid]) for lab in labels]
        + [_distance_group(d, instances[d.sop_instance_uid]) for d in distances]
        + [group for check, image, review in found
           for group in _copy_move_groups(check, image, review, instances[image["sop_instance_uid"]])],
    )
    return Comprehensive3DSR(
        evidence=_evidence(study, list(instances.values())),
        content=report,
        series_instance_uid=UID(),
        series_number=9001,
        sop_instance_uid=UID(),
        instance_number=1,
        manufacturer="tamper-portal",
        is_complete=True,
    )
