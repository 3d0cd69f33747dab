"""ScoringJob.scored_locations. A job scored before it whose series had nothing to score (no lung tissue: it
stored no location at all) gets 0 and loses the genuine verdict the detector never reached; its study's
verdict is recomputed from the other series (none left: no verdict, the scoring model kept)."""

from django.db import migrations, models

SEVERITY = {"FM": 2, "FB": 2, "TM": 1, "TB": 0}  # detection.services.VERDICT_SEVERITY


def backfill(apps, schema_editor):
    ScoringJob = apps.get_model("detection", "ScoringJob")
    Study = apps.get_model("studies", "Study")
    empty = ScoringJob.objects.filter(status="done", scored_locations__isnull=True, location_scores__isnull=True)
    study_ids = set(empty.values_list("series__study_id", flat=True))
    empty.update(scored_locations=0, verdict="", verdict_score=None)
    for study in Study.objects.filter(pk__in=study_ids):
        done = [job for series in study.series.all()
                if (job := series.scoring_jobs.filter(status="done").order_by("-finished").first())]
        with_verdict = [job for job in done if job.verdict]
        if with_verdict:
            best = max(with_verdict, key=lambda j: (SEVERITY.get(j.verdict, 0), j.verdict_score or 0.0))
            update = {"verdict": best.verdict, "verdict_score": best.verdict_score, "model_version":
                      best.model_version.name if best.model_version_id else ""}
        else:
            model = next((job.model_version.name for job in done if job.model_version_id), "")
            update = {"verdict": "", "verdict_score": None, "model_version": model}
        Study.objects.filter(pk=study.pk).update(**update)


class Migration(migrations.Migration):
    dependencies = [("detection", "0004_scoring_edge_threshold"), ("studies", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="scoringjob",
            name="scored_locations",
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
