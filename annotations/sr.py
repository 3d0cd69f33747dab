"""DICOM SR export of a study's labels and measured distances: Comprehensive 3D SR, TID 1500 measurement report,
one planar ROI measurement group per label with the label's point (or box) as an image-region SCOORD on its
instance, and one per distance measured in the viewer: its two end points as a polyline, its length in mm."""

from __future__ import annotations

import numpy as np
import pydicom
from highdicom import UID
from highdicom.sr import (
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
from annotations.models import Label
from annotations.models import Measurement as MeasuredDistance
from annotations.selectors import export_labels
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


def export_sr(study: Study) -> pydicom.Dataset:
    labels = [lab for lab in export_labels(study) if lab.sop_instance_uid]
    distances = list(study_measurements(study))
    sops = {lab.sop_instance_uid for lab in labels} | {d.sop_instance_uid for d in distances}
    instances = {
        i.sop_instance_uid: i for i in Instance.objects.filter(sop_instance_uid__in=sops).select_related("series")
    }
    labels = [lab for lab in labels if lab.sop_instance_uid in instances]
    distances = [d for d in distances if d.sop_instance_uid in instances]
    if not labels and not distances:
        raise ValueError("no labels or measurements with a referenced instance in this study")
    observers = sorted({lab.annotator.get_username() for lab in labels} | {d.author.get_username() for d in distances})
    report = MeasurementReport(
        observation_context=ObservationContext(
            observer_person_context=ObserverContext(
                observer_type=codes.DCM.Person,
                observer_identifying_attributes=PersonObserverIdentifyingAttributes(name=", ".join(observers)),
            )
        ),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[_group(lab, instances[lab.sop_instance_uid]) for lab in labels]
        + [_distance_group(d, instances[d.sop_instance_uid]) for d in distances],
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
