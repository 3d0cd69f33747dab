"""Migration accounts 0002 on a database as 0001 left it: people with the admin role become superusers (so the
Django admin is theirs); nobody else does."""

import pytest

from tests.detection.test_migrations import latest_schema_afterwards, migrate_to  # noqa: F401 - fixture

BEFORE = [("accounts", "0001_initial")]
AFTER = [("accounts", "0002_admins_are_superusers")]


@pytest.mark.django_db(transaction=True)
def test_admins_become_superusers(latest_schema_afterwards):  # noqa: F811 - the imported fixture
    old = migrate_to(BEFORE)
    User, Group = old.get_model("auth", "User"), old.get_model("auth", "Group")
    admin = User.objects.create(username="old-admin", is_staff=True)
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    expert = User.objects.create(username="expert")
    expert.groups.add(Group.objects.get_or_create(name="expert")[0])

    users = migrate_to(AFTER).get_model("auth", "User").objects
    assert users.get(pk=admin.pk).is_superuser and users.get(pk=admin.pk).is_staff
    assert not users.get(pk=expert.pk).is_superuser and not users.get(pk=expert.pk).is_staff
