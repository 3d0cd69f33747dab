"""People given the admin role before it meant a Django superuser get the Django admin too (user_create now
makes admins superusers; a staff user without permissions saw nothing in /admin/)."""

from django.db import migrations


def admins_are_superusers(apps, schema_editor):
    User = apps.get_model("auth", "User")
    User.objects.filter(groups__name="admin").update(is_staff=True, is_superuser=True)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(admins_are_superusers, migrations.RunPython.noop)]
