"""The claim report as a deterministic PDF (reportlab, invariant mode): same claim results -> same bytes.

Everything printed comes from stored records: timestamps from the claim and ledger entries (never "now"),
images in upload order, dict keys sorted.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from portal.claims.models import Claim, ClaimImage
from portal.claims.services import claim_image_path, copy_move_reason

STATUS_COLOURS = {"authentic": colors.darkgreen, "tampered": colors.red, "suspicious": colors.orange,
                  "unverified": colors.grey, "pending": colors.grey}


def _p(text: str, style) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def image_rows(image: ClaimImage) -> list[tuple[str, str]]:
    """Label/value pairs shown for one image, shared by the HTML page and the PDF."""
    r = image.result or {}
    prov = r.get("provenance", {})
    det = r.get("detector", {})
    rows = [("File", f"{image.original_name} ({image.kind})"), ("File SHA-256", image.file_sha256),
            ("Pixel SHA-256", r.get("input", {}).get("pixel_sha256", "")),
            ("Final status", image.status), ("Provenance", image.provenance)]
    entry = prov.get("ledger") or (prov.get("nearest") or {}).get("ledger")
    if entry:
        rows += [("Ledger entry", f"#{entry['seq']} recorded {entry['recorded_at']}"),
                 ("Original", f"{entry['sop_instance_uid']} (study {entry['study_uid']})"),
                 ("Signature", f"Ed25519, key {entry['key_id']}: "
                               f"{'valid' if entry['signature_valid'] else 'INVALID'}"),
                 ("Entry hash", entry["entry_hash"])]
    diff = prov.get("diff")
    if diff:
        boxes = "; ".join(f"x={b['x']} y={b['y']} {b['w']}x{b['h']} ({b['pixels']} px)" for b in diff["boxes"][:8])
        rows += [("Changed pixels", f"{diff['changed_pixels']} in {diff['regions']} region(s)"),
                 ("Regions", boxes)]
    if det.get("available"):
        probs = ", ".join(f"{k} {det['probs'][k]:.3f}" for k in ("TB", "TM", "FB", "FM") if k in det["probs"])
        rows += [("Detector", f"{det['model']}{'' if det['trained'] else ' (UNTRAINED)'}"),
                 ("Detector input", det["path"]),
                 ("Verdict", "none: no lung tissue to score in this image" if det.get("scored_locations") == 0
                  else f"{det['verdict']} (score {det['verdict_score']:.3f}, tamper {det['tamper']:.6f})"),
                 ("Class probabilities at the most suspicious location", probs)]
        if "calibrated" in det:  # reports written before single-image thresholds have no such row
            rows.insert(-1, ("Single-image threshold", f"{det['threshold']} (tamper at or above it flags the image)"
                             if det["calibrated"] else "none calibrated for this model: the verdict does not count"))
    else:
        rows.append(("Detector", f"not available: {det.get('error', '')}"))
    if "copy_move" in r:  # results recorded before the check have no such row
        found, error = r["copy_move"]["found"], r["copy_move"].get("error")
        text = "; ".join(map(copy_move_reason, found)) or "no region of the image is a copy of another"
        rows.append(("Copy-move check", f"not run: {error}" if error else text))
    rows.append(("Reasons", " | ".join(r.get("reasons", []))))
    return rows


def image_figures(image: ClaimImage) -> list[tuple[str, str]]:
    """(caption, label) of the stored PNGs for one image, in display order."""
    r = image.result or {}
    labels = [("Claim image", r.get("images", {}).get("input"))]
    diff = (r.get("provenance") or {}).get("diff")
    if diff:
        labels += [("Signed original", diff["images"]["original"]), ("Differences (boxes)", diff["images"]["overlay"]),
                   ("Diff map", diff["images"]["diff"])]
    if (r.get("copy_move") or {}).get("overlay"):
        labels.append(("Copy-move: both places of each cloned region boxed", r["copy_move"]["overlay"]))
    detector = r.get("detector") or {}
    if detector.get("heatmap"):  # reports written before the colours said something about the threshold
        caption = "Detector heatmap: amber below, red at the flag threshold" if detector.get("heatmap_colours") \
            else "Detector heatmap"
        labels.append((caption, detector["heatmap"]))
    return [(c, label) for c, label in labels if label]


def render_pdf(claim: Claim) -> bytes:
    buf = io.BytesIO()
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=14 * mm, bottomMargin=14 * mm,
        title=f"Claim {claim.reference}", author="Medical image tamper detection portal",
        subject=str(claim.id), creator="portal.claims", invariant=1,
    )
    created = claim.created.strftime("%Y-%m-%d %H:%M:%S UTC")
    story = [
        _p(f"Claim check report: {claim.reference}", styles["Title"]),
        _p(f"Claim {claim.id} | insurer {claim.insurer.username} | created {created}", small),
        _p("Referenced studies: " + (", ".join(sorted(s.study_uid for s in claim.studies.all())) or "none"), small),
        Spacer(1, 4 * mm),
    ]
    images = list(claim.images.order_by("position"))
    summary = [["#", "File", "Provenance", "Detector", "Status"]]
    for image in images:
        det = (image.result or {}).get("detector", {})
        summary.append([str(image.position), image.original_name[:40], image.provenance,
                        f"{det.get('verdict', '-')} {det.get('tamper', 0):.3f}" if det.get("available") else "n/a",
                        image.status.upper()])
    table = Table(summary, colWidths=[8 * mm, 70 * mm, 30 * mm, 30 * mm, 30 * mm])
    table.setStyle(TableStyle([("FONTSIZE", (0, 0), (-1, -1), 8), ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)]))
    story += [table, Spacer(1, 6 * mm)]
    for image in images:
        story.append(_p(f"Image {image.position}: {image.original_name}", styles["Heading2"]))
        colour = STATUS_COLOURS.get(image.status, colors.black)
        story.append(Paragraph(f'<font color="{colour.hexval()}"><b>{escape(image.status.upper())}</b></font>',
                               styles["Heading3"]))
        rows = [[_p(k, small), _p(v, small)] for k, v in image_rows(image)]
        t = Table(rows, colWidths=[32 * mm, 148 * mm])
        t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("GRID", (0, 0), (-1, -1), 0.2, colors.grey)]))
        story += [t, Spacer(1, 3 * mm)]
        cells, captions = [], []
        for caption, label in image_figures(image):
            path = claim_image_path(image, label)
            if path.exists():
                cells.append(Image(str(path), width=42 * mm, height=42 * mm))
                captions.append(_p(caption, small))
        if cells:
            grid = Table([cells, captions], colWidths=[45 * mm] * len(cells))
            story += [grid, Spacer(1, 6 * mm)]
    story.append(_p("Provenance: SHA-256 over decoded pixels (shape, dtype, bytes) recorded at ingest in a "
                    "hash-chained ledger signed with the portal's Ed25519 key; public keys at "
                    "/api/provenance/keys. Passive detection scores come from the model named above.", small))
    doc.build(story)
    return buf.getvalue()
