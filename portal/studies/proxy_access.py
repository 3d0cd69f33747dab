"""Who the DICOMweb proxy serves, remembered briefly. A viewer fetches hundreds of frames a minute and each
check costs database queries (session or token, user, roles, the study), so a signed-in caller and each study
granted to them are remembered in the process's memory for DICOMWEB_PROXY_ACCESS_TTL seconds. Denials never
are, so a new share works on the next request. Anything that takes access away (a withdrawn study, a share or
assignment removed, a role or account changed, a token deleted, a sign-out) replaces one token in the default
cache, the access epoch, that every remembered entry is keyed by: the process that made the change refuses at
once, and every process sharing the cache (CACHE_URL, Redis) within ACCESS_EPOCH_RECHECK seconds, the time each
keeps its copy of the token so a frame costs no network round trip."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.signals import user_logged_out
from django.core.cache import cache, caches
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from portal.studies import selectors
from portal.studies.models import Study, StudyAccess

EPOCH_KEY = "dicomweb-access-epoch"
ACCESS_EPOCH_RECHECK = 1  # seconds
_token_auth = TokenAuthentication()


def access_epoch() -> str:
    if (epoch := caches["local"].get(EPOCH_KEY)) is None:
        if (epoch := cache.get(EPOCH_KEY)) is None:  # first use, or evicted: a new value forgets everything
            cache.add(EPOCH_KEY, uuid.uuid4().hex, None)
            epoch = cache.get(EPOCH_KEY)
        caches["local"].set(EPOCH_KEY, epoch, ACCESS_EPOCH_RECHECK)
    return epoch


def forget_granted_access(**_signal) -> None:
    """Everything remembered is asked again on its next request: now, and again when the change commits (a
    request in between still reads the database as it was, and would remember that under the new token)."""
    _new_epoch()
    if transaction.get_connection().in_atomic_block:  # else the change is committed already
        transaction.on_commit(_new_epoch)


def _new_epoch() -> None:
    # A random token, not a counter: a value lost from the cache cannot come back as one an old entry was keyed by.
    epoch = uuid.uuid4().hex
    cache.set(EPOCH_KEY, epoch, None)
    caches["local"].set(EPOCH_KEY, epoch, ACCESS_EPOCH_RECHECK)


def proxy_user(request) -> User | AnonymousUser:
    """Who is asking, by session cookie or API token; anonymous results are never remembered."""
    ttl = settings.DICOMWEB_PROXY_ACCESS_TTL
    credential = f"{request.COOKIES.get(settings.SESSION_COOKIE_NAME, '')}|{request.headers.get('Authorization', '')}"
    if not ttl or credential == "|":
        return _authenticate(request)
    key = f"dicomweb-user:{access_epoch()}:{hashlib.sha256(credential.encode()).hexdigest()}"
    if (user := caches["local"].get(key)) is not None:
        return user
    user = _authenticate(request)
    if user.is_authenticated:
        caches["local"].set(key, user, ttl)
    return user


def can_view_study(user: User, study_uid: str) -> bool:
    if not (ttl := settings.DICOMWEB_PROXY_ACCESS_TTL):
        return selectors.can_view_study(user, study_uid)
    key = f"dicomweb-access:{access_epoch()}:{user.pk}:{study_uid}"
    if caches["local"].get(key):
        return True
    allowed = selectors.can_view_study(user, study_uid)
    if allowed:
        caches["local"].set(key, True, ttl)
    return allowed


def _authenticate(request) -> User | AnonymousUser:
    if request.user.is_authenticated:
        return request.user
    try:
        found = _token_auth.authenticate(request)
    except AuthenticationFailed:
        return AnonymousUser()
    return found[0] if found else AnonymousUser()


def _study_saved(created: bool, update_fields=None, **_signal) -> None:
    if not created and (update_fields is None or "withdrawn_at" in update_fields):  # withdrawn, restored, edited
        forget_granted_access()


def _user_saved(created: bool, update_fields=None, **_signal) -> None:
    if not created and set(update_fields or ()) != {"last_login"}:  # deactivated, say; not each sign-in
        forget_granted_access()


def _roles_changed(action: str, **_signal) -> None:
    if action.startswith("post_"):
        forget_granted_access()


def connect_receivers() -> None:
    uid = "studies.proxy_access"
    post_save.connect(_study_saved, sender=Study, dispatch_uid=f"{uid}.study")
    post_delete.connect(forget_granted_access, sender=StudyAccess, dispatch_uid=f"{uid}.access")
    post_delete.connect(forget_granted_access, sender=Token, dispatch_uid=f"{uid}.token")
    post_save.connect(_user_saved, sender=User, dispatch_uid=f"{uid}.user")
    post_delete.connect(forget_granted_access, sender=User, dispatch_uid=f"{uid}.user_deleted")
    m2m_changed.connect(_roles_changed, sender=User.groups.through, dispatch_uid=f"{uid}.roles")
    user_logged_out.connect(forget_granted_access, dispatch_uid=f"{uid}.logout")
