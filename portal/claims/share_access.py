"""Encrypted shares after creation: revoking them, and opening a stored share with its key.

Kept apart from services.py (creation and the archive format live there). The key is the credential: whoever
was handed a share's id and key out of band may open it through the portal until its creator revokes it.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Role
from portal.accounts.services import audit, has_role
from portal.claims import crypto, services
from portal.claims.models import EncryptedShare


class ShareRevoked(Exception):
    """The share was revoked: the portal no longer serves or opens it."""

    def __init__(self, share: EncryptedShare):
        when = f" on {share.revoked_at:%Y-%m-%d %H:%M} UTC" if share.revoked_at else ""
        super().__init__(f"this share was revoked by its creator{when}")


@transaction.atomic
def encrypted_share_revoke(*, actor: User, share: EncryptedShare) -> EncryptedShare:
    """Revoke a share: delete the server's copy of the archive and refuse to open it from now on."""
    share = EncryptedShare.objects.select_for_update().get(pk=share.pk)
    if share.created_by_id != actor.pk and not has_role(actor, Role.ADMIN):
        raise PermissionDenied("only the creator of a share (or an admin) may revoke it")
    if share.revoked_at is not None:
        return share
    share.revoked_at, share.revoked_by = timezone.now(), actor
    share.save(update_fields=["revoked_at", "revoked_by"])
    Path(share.archive_path).unlink(missing_ok=True)
    audit(actor, "share.revoke", share, kind=share.kind, subject=share.header.get("subject", ""),
          recipient=share.recipient)
    return share


def refuse_if_revoked(blob: bytes) -> None:
    """For archives brought back to the portal (import): refuse one whose share was revoked."""
    header, _, _, _ = crypto.read_header(blob)
    share = EncryptedShare.objects.filter(pk=header.get("share_id")).first() if header.get("share_id") else None
    if share is not None and share.revoked_at is not None:
        raise ShareRevoked(share)


def _stored_blob(actor: User | None, share: EncryptedShare, key_text: str) -> tuple[bytes, bytes]:
    if share.revoked_at is not None:
        audit(actor, "share.open_refused", share, reason="revoked")
        raise ShareRevoked(share)
    key = crypto.decode_key(key_text)
    if crypto.key_fingerprint(key) != share.key_sha256:
        audit(actor, "share.open_refused", share, reason="wrong key")
        raise crypto.DecryptionError("wrong key for this share")
    return Path(share.archive_path).read_bytes(), key


def stored_share_open(*, actor: User | None, share: EncryptedShare, key_text: str) -> dict:
    """Decrypt and verify the stored archive (GCM tag, manifest, ledger) without handing out any file."""
    blob, _ = _stored_blob(actor, share, key_text)
    result = services.encrypted_share_open(actor=actor, blob=blob, key_text=key_text)
    result.pop("_members", None)
    return result


def stored_share_files(*, actor: User | None, share: EncryptedShare, key_text: str) -> bytes:
    """The decrypted zip (DICOM files + manifest.json) of a stored share, for the key holder to download."""
    blob, key = _stored_blob(actor, share, key_text)
    _, plaintext = crypto.open_sealed(blob, key)
    audit(actor, "share.download_files", share, size=len(plaintext))
    return plaintext
