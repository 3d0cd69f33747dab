from django.db import migrations, models


def count_found_copies(apps, schema_editor):
    """Studies whose radiographs were checked before the column existed get their count now."""
    Study = apps.get_model("studies", "Study")
    CopyMoveCheck = apps.get_model("detection", "CopyMoveCheck")
    latest = {}  # series -> its newest finished check
    for check in CopyMoveCheck.objects.filter(status="done").select_related("series").order_by("-created", "-id"):
        latest.setdefault(check.series_id, check)
    counts: dict[int, int] = {}
    for check in latest.values():
        counts[check.series.study_id] = counts.get(check.series.study_id, 0) + len(check.found)
    for study_id, images in counts.items():
        Study.objects.filter(pk=study_id).update(copy_move_images=images)


class Migration(migrations.Migration):

    dependencies = [
        ('studies', '0003_upload_batch_studies'),
        ('detection', '0008_copy_move_check'),
    ]

    operations = [
        migrations.AddField(
            model_name='study',
            name='copy_move_images',
            field=models.IntegerField(blank=True, db_index=True, null=True),
        ),
        migrations.RunPython(count_found_copies, migrations.RunPython.noop),
    ]
