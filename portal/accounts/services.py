"""Roles are Django groups named after Role values; superusers count as admins."""

import hashlib
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.cache import cache

from portal.accounts.models import AuditEvent, Role

ROLE_PRECEDENCE = [Role.ADMIN, Role.EXPERT, Role.ANNOTATOR, Role.CLINICIAN, Role.INSURER]


def user_roles(user: User) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    cached = getattr(user, "_portal_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(Role.values)
        if user.is_superuser:
            cached.add(Role.ADMIN)
        if Role.EXPERT in cached:
            cached.add(Role.ANNOTATOR)  # experts can do everything annotators can
        user._portal_roles = cached
    return cached


def has_role(user: User, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def primary_role(user: User) -> str | None:
    roles = user_roles(user)
    return next((r.value for r in ROLE_PRECEDENCE if r in roles), None)


def user_create(*, username: str, password: str, role: str, email: str = "") -> User:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    user = User.objects.create_user(username=username, password=password, email=email)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    if role == Role.ADMIN:  # the Django admin (people, their roles, the audit log) is theirs too
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    return user


def audit(actor: User | None, action: str, obj: Any = None, *, object_type: str = "", object_id: str = "",
          **details: Any) -> AuditEvent:
    if obj is not None:
        object_type = object_type or obj.__class__.__name__
        object_id = object_id or str(getattr(obj, "pk", obj))
    actor = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=actor, action=action, object_type=object_type, object_id=object_id, details=details
    )


RESET_EMAILS_PER_HOUR = 3


def reset_email_allowed(email: str) -> bool:
    """At most RESET_EMAILS_PER_HOUR reset links an hour to one address, so the public form cannot flood
    someone's inbox; counted in the cache under a hash of the address (no address is stored)."""
    key = "password-reset:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()
    cache.add(key, 0, 3600)
    try:
        sent = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, sent := 1, 3600)
    return sent <= RESET_EMAILS_PER_HOUR


def password_changed(user: User, *, via: str = "change") -> int:
    """After a password change (``via`` "change", or "reset" by an emailed link): the user's API tokens are
    revoked (a script signs in again; Django's session hash already signs out their other browser sessions),
    failed sign-ins counted against them are cleared (a reset is how a locked-out person gets back in), and
    the change is audited. Returns tokens revoked."""
    from axes.utils import reset as reset_failed_logins
    from rest_framework.authtoken.models import Token

    revoked, _ = Token.objects.filter(user=user).delete()
    if via == "reset":
        reset_failed_logins(username=user.get_username())
    audit(user, "account.password_change", user, tokens_revoked=revoked, via=via)
    return revoked
