"""CT-GAN CSV round trip and DICOM SR export."""

import csv
import io

import pydicom
import pytest

from annotations.models import Label


def _rows(text):
    rows = csv.DictReader(io.StringIO(text))
    return [(r["type"], r["uuid"], int(r["slice"]), int(r["x"]), int(r["y"])) for r in rows]


@pytest.mark.django_db
def test_ctgan_csv_import_export_round_trip(user_factory, api_client, series_factory, shared_data):
    expert = user_factory("expert")
    series = series_factory(n_slices=400)
    original = (shared_data / "ctgan-labels" / "labels_exp2.csv").read_text()
    one_scan = "type,uuid,slice,x,y\n" + "".join(
        line + "\n" for line in original.splitlines()[1:] if line.split(",")[1] == "6031"
    )
    c = api_client(expert)
    r = c.post("/api/labels/import", {"csv": one_scan, "series_uid": series.series_uid}, format="json")
    assert r.status_code == 201, r.content
    expected = sorted((t, series.series_uid, z, x, y) for t, _, z, x, y in _rows(one_scan))
    assert r.json()["imported"] == len(expected) == 4

    exported = c.get(f"/api/studies/{series.study.study_uid}/labels.csv", HTTP_ACCEPT="text/csv")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    missing = c.get("/api/studies/1.2.3.999/labels.csv", HTTP_ACCEPT="text/csv")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json" and missing.json()
    unscored = c.get(f"/api/series/{series.series_uid}/heatmap/0.png", HTTP_ACCEPT="image/png")
    assert unscored.status_code == 404 and unscored.json()
    text = exported.content.decode()
    assert text.splitlines()[0] == "type,uuid,slice,x,y"
    assert sorted(_rows(text)) == expected

    # Re-importing our own export maps rows back by series UID and reproduces the same table.
    Label.objects.all().delete()
    assert c.post("/api/labels/import", {"csv": text}, format="json").status_code == 201
    assert sorted(_rows(c.get(f"/api/studies/{series.study.study_uid}/labels.csv").content.decode())) == expected


@pytest.mark.django_db
def test_import_refuses_unknown_scans_and_bad_headers(user_factory, api_client):
    c = api_client(user_factory("expert"))
    unknown_scan = "type,uuid,slice,x,y\nFM,9999,1,2,3\n"
    assert c.post("/api/labels/import", {"csv": unknown_scan}, format="json").status_code == 400
    assert c.post("/api/labels/import", {"csv": "a,b\n1,2\n"}, format="json").status_code == 400
    assert Label.objects.count() == 0


@pytest.mark.django_db
def test_import_names_the_line_that_points_outside_the_series_and_imports_nothing(user_factory, api_client,
                                                                                  series_factory):  # fmt: skip
    series = series_factory(n_slices=20)
    table = f"type,uuid,slice,x,y\nFM,{series.series_uid},3,100,100\nTM,{series.series_uid},57,100,100\n"
    r = api_client(user_factory("expert")).post("/api/labels/import", {"csv": table}, format="json")
    assert r.status_code == 400 and "line 3: " in str(r.json()) and "slice 57 is not in this series" in str(r.json())
    assert Label.objects.count() == 0


@pytest.mark.django_db
def test_import_says_what_is_wrong_with_a_body_that_is_no_table(user_factory, api_client, shared_data):
    """Each of these was a 500 before."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    c = api_client(user_factory("expert"))
    as_list = c.post("/api/labels/import", [None, None], format="json")
    assert as_list.status_code == 400 and "Expected a dictionary" in str(as_list.json())
    dicom = next((shared_data / "cptac-lscc-C3N-00247-chest-ct").rglob("*.dcm")).read_bytes()
    binary = c.post("/api/labels/import", {"file": SimpleUploadedFile("labels.csv", dicom)}, format="multipart")
    assert binary.status_code == 400 and "not a UTF-8 text file" in binary.json()["file"][0]
    neither = c.post("/api/labels/import", {"series_uid": "1.2.3"}, format="json")
    assert neither.status_code == 400 and "as a file ('file') or as text ('csv')" in str(neither.json())
    # Found by the schema fuzz test: a lone carriage return inside a field, and a field over csv's size limit.
    carriage_return = c.post("/api/labels/import", {"csv": "type,uuid,slice,x,y\r\nFM,a\rb,1,2,3\n"}, format="json")
    assert carriage_return.status_code == 400, carriage_return.content
    huge_field = c.post("/api/labels/import", {"csv": "type,uuid,slice,x,y\nFM," + "a" * 200_000 + ",1,2,3\n"},
                        format="json")  # fmt: skip
    assert huge_field.status_code == 400 and "not a readable CSV table" in str(huge_field.json())
    assert Label.objects.count() == 0


@pytest.mark.django_db
def test_sr_export_has_one_measurement_group_per_label_with_its_point(user_factory, api_client, series_factory):
    a1 = user_factory("annotator")
    series = series_factory(shared_with=[a1])
    c = api_client(a1)
    for z, x, y, cls, box in [(2, 100, 200, "FM", None), (5, 300, 310, "FB", [290, 300, 310, 320])]:
        c.post("/api/labels", {"series_uid": series.series_uid, "slice_index": z, "x": x, "y": y, "box": box,
                               "label_class": cls, "comment": ""}, format="json")  # fmt: skip
    r = c.get(f"/api/studies/{series.study.study_uid}/labels.sr.dcm", HTTP_ACCEPT="application/dicom")
    assert r.status_code == 200 and r["Content-Type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(r.content))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.StudyInstanceUID == series.study.study_uid

    scoords = []

    def walk(items):
        for item in items:
            if item.get("ValueType") == "SCOORD":
                ref = item.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                scoords.append((item.GraphicType, [float(v) for v in item.GraphicData], ref))
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(ds.ContentSequence)
    sops = dict(series.instances.values_list("slice_index", "sop_instance_uid"))
    assert ("POINT", [100.0, 200.0], sops[2]) in scoords
    poly = next(s for s in scoords if s[0] == "POLYLINE")
    assert poly[1][:4] == [290.0, 300.0, 310.0, 300.0] and poly[2] == sops[5]


@pytest.mark.django_db
def test_sr_export_carries_each_measured_distance_with_its_length(user_factory, api_client, series_factory):
    from portal.studies.models import Instance

    clinician = user_factory("clinician")
    series = series_factory(uploaded_by=clinician, n_slices=3)
    Instance.objects.filter(series=series).update(pixel_spacing=[0.5, 0.8])
    sop = series.instances.get(slice_index=1).sop_instance_uid
    c = api_client(clinician)
    assert c.get(f"/api/studies/{series.study.study_uid}/labels.sr.dcm").status_code == 404  # nothing to export
    c.post(f"/api/series/{series.series_uid}/measurements", {"sop_instance_uid": sop,
                                                             "points": [[10, 20], [40, 60]]}, format="json")
    ds = pydicom.dcmread(io.BytesIO(c.get(f"/api/studies/{series.study.study_uid}/labels.sr.dcm").content))

    found = []

    def walk(items):
        for item in items:
            if item.get("ValueType") == "SCOORD":
                ref = item.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                found.append(("SCOORD", item.GraphicType, [float(v) for v in item.GraphicData], ref))
            if item.get("ValueType") == "NUM":
                value = item.MeasuredValueSequence[0]
                found.append(("NUM", item.ConceptNameCodeSequence[0].CodeMeaning, float(value.NumericValue),
                              value.MeasurementUnitsCodeSequence[0].CodeValue))  # fmt: skip
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(ds.ContentSequence)
    assert ("SCOORD", "POLYLINE", [10.0, 20.0, 40.0, 60.0], sop) in found
    [(_, name, value, unit)] = [f for f in found if f[0] == "NUM"]
    assert (name, unit) == ("Length", "mm") and value == pytest.approx(((30 * 0.8) ** 2 + (40 * 0.5) ** 2) ** 0.5)
