"""Jobs scored before 0002 get their model's calibrated flag threshold and flagged-location count back (from
the stored top locations, when fewer than that many reached it), and every study's verdict is recomputed
with the severity rule (a tamper verdict outranks a genuine one; it used to be the highest class score)."""

from django.db import migrations

SEVERITY = {"FM": 2, "FB": 2, "TM": 1, "TB": 0}
STORED_LOCATIONS = 2000  # detection.services.MAX_LOCATIONS_PER_JOB when these jobs were scored


def backfill(apps, schema_editor):
    ScoringJob = apps.get_model("detection", "ScoringJob")
    Study = apps.get_model("studies", "Study")
    for job in ScoringJob.objects.filter(status="done", flag_threshold__isnull=True).select_related("model_version"):
        calibration = (job.model_version.config or {}).get("calibration") if job.model_version else None
        if not calibration or "tamper_threshold" not in calibration:
            continue
        job.flag_threshold = float(calibration["tamper_threshold"])
        flagged = job.location_scores.filter(tamper__gte=job.flag_threshold).count()
        job.flagged_locations = flagged if flagged < STORED_LOCATIONS else None  # unknown beyond what was kept
        job.save(update_fields=["flag_threshold", "flagged_locations"])
    for study in Study.objects.all():
        latest = []
        for series in study.series.all():
            job = series.scoring_jobs.filter(status="done").order_by("-finished").first()
            if job is not None and job.verdict:
                latest.append(job)
        if latest:
            best = max(latest, key=lambda j: (SEVERITY.get(j.verdict, 0), j.verdict_score or 0.0))
            Study.objects.filter(pk=study.pk).update(
                verdict=best.verdict, verdict_score=best.verdict_score,
                model_version=best.model_version.name if best.model_version_id else "")


class Migration(migrations.Migration):
    dependencies = [("detection", "0002_scoring_flag_threshold"), ("studies", "0001_initial")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
