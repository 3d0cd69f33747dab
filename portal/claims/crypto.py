"""Standard primitives only (the `cryptography` package): Ed25519 signing keys and AES-256-GCM archives.

Key directory layout (settings.PORTAL_SIGNING_KEY_DIR, default VAR_DIR/keys):
    <kid>.pub      PEM SubjectPublicKeyInfo, kept forever so old ledger entries still verify
    <kid>.key      PEM PKCS#8 private key, only for the active key (deleted on rotation)
    ACTIVE         the active key id
kid = first 16 hex digits of SHA-256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings


def key_dir() -> Path:
    return Path(getattr(settings, "PORTAL_SIGNING_KEY_DIR", None) or settings.VAR_DIR / "keys")


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _new_key(directory: Path) -> str:
    private = Ed25519PrivateKey.generate()
    kid = key_id(private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_exclusive(directory / f"{kid}.key", pem, 0o600)
    _write_exclusive(directory / f"{kid}.pub", public_pem(private.public_key()).encode(), 0o644)
    # Publish the new id atomically: readers see either the old or the new ACTIVE, never a partial file.
    tmp = directory / f".ACTIVE.{os.getpid()}"
    tmp.write_text(kid)
    os.replace(tmp, directory / "ACTIVE")
    return kid


def active_signing_key() -> tuple[str, Ed25519PrivateKey]:
    """The active key, generated on first use."""
    directory = key_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    active = directory / "ACTIVE"
    if not active.exists():
        with contextlib.suppress(FileExistsError):  # another process generated one at the same moment
            _new_key(directory)
    kid = active.read_text().strip()
    private = serialization.load_pem_private_key((directory / f"{kid}.key").read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return kid, private


def rotate_signing_key() -> tuple[str, str | None]:
    """Make a new active key; keep the old public key, destroy the old private key. Returns (new, old)."""
    directory = key_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    active = directory / "ACTIVE"
    old = active.read_text().strip() if active.exists() else None
    new = _new_key(directory)
    if old and (directory / f"{old}.key").exists():
        (directory / f"{old}.key").unlink()
    return new, old


def public_keys() -> dict[str, Ed25519PublicKey]:
    directory = key_dir()
    if not (directory / "ACTIVE").exists():
        active_signing_key()
    keys = {}
    for path in sorted(directory.glob("*.pub")):
        public = serialization.load_pem_public_key(path.read_bytes())
        if isinstance(public, Ed25519PublicKey) and key_id(public) == path.stem:
            keys[path.stem] = public
    return keys


def active_key_id() -> str:
    return active_signing_key()[0]


def sign(payload: bytes) -> tuple[str, str]:
    kid, private = active_signing_key()
    return kid, private.sign(payload).hex()


def verify(payload: bytes, signature_hex: str, kid: str, keys: dict[str, Ed25519PublicKey] | None = None) -> bool:
    keys = public_keys() if keys is None else keys
    public = keys.get(kid)
    if public is None:
        return False
    try:
        public.verify(bytes.fromhex(signature_hex), payload)
    except (InvalidSignature, ValueError):
        return False
    return True


def canonical_json(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# --- AES-256-GCM archives -------------------------------------------------------------------------------

MAGIC = b"MITP-AESGCM-1\n"
NONCE_BYTES = 12  # 96-bit random nonce, the size GCM is specified for


class DecryptionError(Exception):
    """Wrong key, or the archive was altered (header, nonce or ciphertext); GCM cannot tell which."""


@dataclass(frozen=True)
class Sealed:
    blob: bytes
    key_b64: str  # shown once to the sharer
    key_sha256: str


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def decode_key(text: str) -> bytes:
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise DecryptionError("the key is not valid base64url") from exc
    if len(key) != 32:
        raise DecryptionError("the key must be 32 bytes (AES-256)")
    return key


def seal(plaintext: bytes, header: dict, key: bytes | None = None) -> Sealed:
    """MAGIC | u32 header length | canonical header JSON | nonce | ciphertext+tag; AAD = everything before nonce."""
    key = key or AESGCM.generate_key(bit_length=256)
    header_bytes = canonical_json(header)
    aad = MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, aad)
    return Sealed(blob=aad + nonce + ciphertext, key_b64=encode_key(key), key_sha256=key_fingerprint(key))


def read_header(blob: bytes) -> tuple[dict, bytes, bytes, bytes]:
    """(header, aad, nonce, ciphertext). The header is unauthenticated until open_sealed succeeds."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise DecryptionError("not a portal encrypted archive")
    (length,) = struct.unpack(">I", blob[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if len(blob) < start + length + NONCE_BYTES + 16:
        raise DecryptionError("the archive is truncated")
    header_bytes = blob[start:start + length]
    try:
        header = json.loads(header_bytes)
    except ValueError as exc:
        raise DecryptionError("the archive header is corrupt") from exc
    aad = blob[:start + length]
    nonce = blob[start + length:start + length + NONCE_BYTES]
    return header, aad, nonce, blob[start + length + NONCE_BYTES:]


def open_sealed(blob: bytes, key: bytes) -> tuple[dict, bytes]:
    header, aad, nonce, ciphertext = read_header(blob)
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise DecryptionError(
            "integrity check failed: wrong key, or the archive (header or ciphertext) was modified"
        ) from exc
    return header, plaintext
