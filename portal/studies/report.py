"""A study's tamper report as a PDF (reportlab): per series the detector's verdict, its most suspicious
locations with the slice in the lung window under the heatmap, and the labels annotators placed.

Deterministic like the claim report (invariant mode, nothing printed from "now"): the same stored scores,
labels and images give the same bytes. Slices come from the PACS (WADO-RS), as the viewer's do.
"""

from __future__ import annotations

import io
from collections import Counter
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from annotations.models import CopyMoveReview
from detection.ml.constants import CLASSES
from detection.ml.copy_move_keypoints import transform_words
from detection.ml.radiograph import display_grey
from detection.models import CopyMoveCheck, LocationScore, ScoringJob
from detection.radiographs import latest_check
from detection.services import heatmap_slice, latest_done_job, not_scored_reason
from portal.claims import imaging
from portal.claims.integrity import PROBLEM_KINDS
from portal.studies import dicomweb
from portal.studies.models import Series, Study

TOP_LOCATIONS = 8
FIGURES = 3  # slices shown, the most suspicious first
VERDICT_WORDS = {"TB": "no tampering found (true benign)", "TM": "no tampering found (true malignant)",
                 "FB": "tampering suspected: a real tumour removed (FB)",
                 "FM": "tampering suspected: a fake tumour injected (FM)"}
GRID = TableStyle([("FONTSIZE", (0, 0), (-1, -1), 8), ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                   ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey), ("VALIGN", (0, 0), (-1, -1), "TOP")])


def verdict_text(job: ScoringJob | None) -> str:
    if job is None:
        return "not scored yet"
    if job.scored_locations == 0:
        return "no verdict: no lung tissue to score"
    return VERDICT_WORDS.get(job.verdict, job.verdict or "none")


def copy_move_text(check: CopyMoveCheck) -> str:
    """A radiograph series' copy-move check in words (detection.radiographs)."""
    if check.status == CopyMoveCheck.Status.FAILED:
        return f"failed: {check.error}"
    if check.status != CopyMoveCheck.Status.DONE:
        return f"{check.status}, not finished"
    if not check.found:
        return f"no region is copied inside its {check.images_checked} image(s)"
    return "the same content at two places of an image, one copied onto the other: " + "; ".join(
        f"image {image['slice_index'] + 1}, {w}x{h} px at x {x0} y {y0} and at x {x1} y {y1}{transform_words(r)}"
        for image in check.found for r in image["regions"]
        for (x0, y0, w, h), (x1, y1, _, _) in [(r["first"], r["second"])])


def copy_move_review_text(check: CopyMoveCheck) -> str:
    """The experts' latest word on each image the check found a copy in ('' when none was reviewed)."""
    return "; ".join(
        f"image {image['slice_index'] + 1}: {review.decision} by {review.reviewer.username} on "
        f"{review.created:%Y-%m-%d}{f' ({review.reason})' if review.reason else ''}"
        for _, image, review in CopyMoveReview.of_found([check]) if review)


def series_rows(series: Series, job: ScoringJob | None, check: CopyMoveCheck | None) -> list[tuple[str, str]]:
    """Label/value pairs for one series (``check``: its latest copy-move check, radiographs only)."""
    rows = [("Series", f"{series.modality} {series.description or ''} ({series.instances.count()} images)"),
            ("Series UID", series.series_uid), ("Verdict", not_scored_reason(series) or verdict_text(job))]
    if check is not None:
        rows.append(("Copy-move check", copy_move_text(check)))
        if check.found and (reviewed := copy_move_review_text(check)):
            rows.append(("Expert review", reviewed))
    step, gaps = series.slice_gaps()
    if gaps:
        where = "; ".join(f"after slice {g.after_index + 1} (z {g.z_from:.1f} to {g.z_to:.1f} mm, ~{g.missing})"
                          for g in gaps[:5]) + ("; ..." if len(gaps) > 5 else "")  # fmt: skip
        rows.append(("Missing slices", f"about {sum(g.missing for g in gaps)} in {len(gaps)} gap(s) of the usual "
                                       f"{step:g} mm step: {where}. Scores next to a gap are unreliable."))
    if job is not None:
        model = job.model_version.name if job.model_version else "unknown"
        rows += [("Model", f"{model}, scored {job.finished:%Y-%m-%d %H:%M UTC}"),
                 ("Flag threshold", "not recorded" if job.flag_threshold is None
                  else f"{job.flag_threshold:.4f} (P(FB)+P(FM) at a location)"),
                 ("Findings", f"{job.flagged_locations if job.flagged_locations is not None else '?'} location(s) "
                              "at or above the threshold")]
    return rows


def top_locations(job: ScoringJob) -> list[LocationScore]:
    return list(job.location_scores.order_by("-tamper", "slice_index", "y", "x")[:TOP_LOCATIONS])


def slice_figure(series: Series, job: ScoringJob, location: LocationScore, n_slices: int) -> bytes:
    """PNG: the location's slice in the lung window, the heatmap over it (amber below the slice's flag
    threshold, red at it) and a ring at the location."""
    sop = job.slice_scores.get(slice_index=location.slice_index).sop_instance_uid
    ds = dicomweb.retrieve_instance(series.study.study_uid, series.series_uid, sop)
    grey = imaging.render_lung(ds)
    rgb = imaging.heatmap_overlay(grey, heatmap_slice(job, location.slice_index),
                                  job.threshold_at(location.slice_index, n_slices))
    image = PILImage.fromarray(np.asarray(rgb))
    r = max(6, grey.shape[0] // 40)
    ImageDraw.Draw(image).ellipse([location.x - r, location.y - r, location.x + r, location.y + r],
                                  outline=(0, 200, 255), width=2)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


COPY_MOVE_COLOUR = (255, 64, 129)  # the viewer's copy-move boxes


def copy_move_figure(series: Series, image: dict) -> tuple[bytes, float]:
    """PNG of a radiograph as displayed, both places of each region the copy-move check found boxed and joined
    (detection.radiographs; boxes in the image's own pixels), and its height / width."""
    ds = dicomweb.retrieve_instance(series.study.study_uid, series.series_uid, image["sop_instance_uid"])
    grey, factor = display_grey(ds)
    figure = PILImage.fromarray(grey).convert("RGB")
    draw, line = ImageDraw.Draw(figure), max(2, max(grey.shape) // 300)
    for region in image["regions"]:
        (ax, ay, aw, ah), (bx, by, bw, bh) = ([v / factor for v in region[k]] for k in ("first", "second"))
        for x, y, w, h in ((ax, ay, aw, ah), (bx, by, bw, bh)):
            draw.rectangle([x, y, x + w, y + h], outline=COPY_MOVE_COLOUR, width=line)
        draw.line([ax + aw / 2, ay + ah / 2, bx + bw / 2, by + bh / 2], fill=COPY_MOVE_COLOUR, width=line // 2)
    figure.thumbnail((1024, 1024))  # enough for print, and keeps the PDF small
    buf = io.BytesIO()
    figure.save(buf, format="PNG", compress_level=6)
    return buf.getvalue(), figure.height / figure.width


def label_counts(study: Study) -> dict[str, Counter]:
    from annotations.models import Label

    counts: dict[str, Counter] = {}
    for series_uid, label_class in Label.objects.filter(study=study, is_deleted=False).values_list(
            "series__series_uid", "label_class"):
        counts.setdefault(series_uid, Counter())[label_class] += 1
    return counts


def measurement_texts(study: Study, shown: int = 12) -> dict[str, str]:
    """Per series UID, the distances measured in the viewer (annotations.measurements) in words."""
    from annotations.measurements import study_measurements

    texts: dict[str, list[str]] = {}
    for m in study_measurements(study):
        (x0, y0), (x1, y1) = m.points
        size = "no pixel spacing" if m.length_mm is None else f"{m.length_mm:.1f} mm"
        texts.setdefault(m.series.series_uid, []).append(
            f"slice {m.slice_index + 1}: {size} ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}) by {m.author.username}")
    return {uid: "; ".join(lines[:shown]) + (f"; and {len(lines) - shown} more" if len(lines) > shown else "")
            for uid, lines in texts.items()}


def integrity_lines(report: dict) -> list[str]:
    """The integrity check (portal.claims.integrity) in words: a summary, then up to 10 problems."""
    if report["ok"]:
        return [f"Integrity: all {report['checked']} images in the PACS match what the portal signed at upload "
                "(checked when this report was made)."]
    problems = [(kind, item) for kind in PROBLEM_KINDS for item in report[kind]]
    lines = [f"Integrity: {len(report['changed'])} changed in the PACS, {len(report['missing'])} missing, "
             f"{len(report['unverifiable'])} unverifiable, of {report['checked']} images (checked when this report "
             "was made)."]
    for kind, item in problems[:10]:
        where = "image" if item["slice_index"] is None else f"slice {item['slice_index'] + 1}"
        lines.append(f"- {kind}: {where}: {item['reason']}")
    if len(problems) > 10:
        lines.append(f"- and {len(problems) - 10} more (study page, Integrity)")
    return lines


def copies_lines(copies: list[dict]) -> list[str]:
    """Other studies with the same images (portal.claims.copies) in words, up to 5."""
    if not copies:
        return ["Same images elsewhere: no other study the requester may read holds any of these images."]
    lines = []
    for copy in copies[:5]:
        differ = ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}"
                           for series in copy["differing"] for a, b in series["slices"])  # fmt: skip
        lines.append(f"Same images elsewhere: {copy['shared_images']} of {copy['images']} images are pixel for pixel "
                     f"those of study {copy['study_uid']} (patient {copy['patient_id']}, {copy['study_date'] or '-'})"
                     + (f"; they differ at slice(s) {differ}." if differ else "."))
    return lines


def copy_difference(study: Study, copies: list[dict]) -> tuple[bytes, str, float] | None:
    """PNG, caption and height/width: the slice where this study differs most from its closest copy, beside the
    copy's image at the same place and their difference (red denser here, blue less dense). None without one."""
    from portal.claims.copies import most_changed_slice

    copy = next((c for c in copies if c["differing"]), None)
    other = copy and Study.objects.filter(study_uid=copy["study_uid"]).first()
    series = copy and study.series.filter(series_uid=copy["differing"][0]["series_uid"]).first()
    found = most_changed_slice(series, other) if other and series else None
    if found is None:
        return None
    mine, theirs = (imaging.render_lung(found[key]) for key in ("mine", "theirs"))
    overlay = imaging.difference_overlay(mine, found["delta"])
    gap = np.full((overlay.shape[0], 8, 3), 255, dtype=np.uint8)
    strip = np.concatenate([np.repeat(mine[..., None], 3, axis=2), gap, np.repeat(theirs[..., None], 3, axis=2),
                            gap, overlay], axis=1)  # fmt: skip
    buf = io.BytesIO()
    PILImage.fromarray(strip).save(buf, format="PNG", compress_level=6)
    caption = (f"Slice {found['slice_index'] + 1} of this study (left), the same place in study {copy['study_uid']} "
               f"(middle) and their difference (right): {found['changed']} pixels differ by "
               f"{imaging.DIFFERENCE_HU:g} HU or more, red where this study is denser, blue where it is less dense.")
    return buf.getvalue(), caption, strip.shape[0] / strip.shape[1]


def render_pdf(study: Study, integrity: dict | None = None, copies: list[dict] | None = None) -> bytes:
    """`integrity`: portal.claims.integrity.study_integrity's result, `copies`: portal.claims.copies.study_copies'
    result, each shown under the header when given."""
    buf = io.BytesIO()
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)

    def p(text: str, style=small) -> Paragraph:
        return Paragraph(escape(str(text)), style)

    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=14 * mm, bottomMargin=14 * mm,
        title=f"Tamper report {study.study_uid}", author="Medical image tamper detection portal",
        subject=study.study_uid, creator="portal.studies", invariant=1,
    )
    patient = study.patient
    story = [p("Tamper detection report", styles["Title"]),
             p(f"Patient {patient.patient_name or '-'} ({patient.patient_id}) | study date "
               f"{study.study_date or '-'} | {study.description or ''}"),
             p(f"Study UID {study.study_uid}"),
             *(p(line) for line in (integrity_lines(integrity) if integrity else [])),
             *(p(line) for line in (copies_lines(copies) if copies is not None else []))]
    if copies and (difference := copy_difference(study, copies)):
        png, caption, aspect = difference
        story += [Image(io.BytesIO(png), width=180 * mm, height=180 * mm * aspect), p(caption)]
    story.append(Spacer(1, 4 * mm))
    labels, measured = label_counts(study), measurement_texts(study)
    for series in study.series.order_by("series_number", "series_uid"):
        job = latest_done_job(series)
        story.append(p(f"{series.modality} series {series.series_number or ''}: {series.description or ''}",
                       styles["Heading2"]))
        check = latest_check(series)
        rows = series_rows(series, job, check)
        counted = labels.get(series.series_uid)
        rows.append(("Labels", ", ".join(f"{c} {counted[c]}" for c in CLASSES if counted and counted[c])
                     or "none yet"))
        if series.series_uid in measured:
            rows.append(("Measurements", measured[series.series_uid]))
        table = Table([[p(k), p(v)] for k, v in rows], colWidths=[32 * mm, 150 * mm])
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("GRID", (0, 0), (-1, -1), 0.2, colors.grey)]))
        story += [table, Spacer(1, 3 * mm)]
        if check is not None and check.status == CopyMoveCheck.Status.DONE and check.found:
            cells, captions = [], []
            for image in check.found[:FIGURES]:
                png, aspect = copy_move_figure(series, image)
                cells.append(Image(io.BytesIO(png), width=56 * mm, height=56 * mm * aspect))
                captions.append(p(f"image {image['slice_index'] + 1}: the same content in both boxes"))
            story += [Table([cells, captions], colWidths=[60 * mm] * len(cells)), Spacer(1, 6 * mm)]
        if job is None or job.scored_locations == 0:
            continue
        n_slices = job.slice_scores.count()
        located = top_locations(job)
        if not located:
            continue
        head = ["Slice", "x, y", "P(FB)+P(FM)", "Most likely", "Finding"]
        body = [[str(loc.slice_index + 1), f"{loc.x}, {loc.y}", f"{loc.tamper:.4f}",
                 max(CLASSES, key=lambda c: loc.probs()[c]),
                 "yes" if (t := job.threshold_at(loc.slice_index, n_slices)) is not None and loc.tamper >= t
                 else "no"] for loc in located]
        table = Table([head, *body], colWidths=[18 * mm, 28 * mm, 28 * mm, 24 * mm, 20 * mm])
        table.setStyle(GRID)
        story += [p(f"Most suspicious locations (of {job.scored_locations or 'all'} scored)", styles["Heading3"]),
                  table, Spacer(1, 3 * mm)]
        shown, cells, captions = set(), [], []
        for loc in located:
            if loc.slice_index in shown or len(shown) == FIGURES:
                continue
            shown.add(loc.slice_index)
            png = slice_figure(series, job, loc, n_slices)
            cells.append(Image(io.BytesIO(png), width=56 * mm, height=56 * mm))
            captions.append(p(f"slice {loc.slice_index + 1}, ring at ({loc.x}, {loc.y}): {loc.tamper:.3f}"))
        story += [Table([cells, captions], colWidths=[60 * mm] * len(cells)), Spacer(1, 6 * mm)]
    story.append(p("Heatmaps: tamper probability P(FB)+P(FM) per location, amber below the model's calibrated flag "
                   "threshold and red at or above it (a finding). Slices are rendered in the lung window "
                   "(-600/1500 HU). The verdict is the model's, not a diagnosis."))
    doc.build(story)
    return buf.getvalue()
