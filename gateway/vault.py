"""Personal information encrypted at rest: authenticated encryption under rotating keys.

A key file (JSON, mode 0600, named in the node configuration) holds one or more keys,
oldest first; the **last** key encrypts new data and every key stays to decrypt what it
encrypted. :meth:`Vault.rotate` appends a key without touching stored data, so rotation is
instant and old blobs still decrypt; a later pass can move them with :meth:`Vault.reencrypt`.

Key file::

    {"format": "chuanyu-vault-keys/1",
     "keys": [{"id": "20261129-3f9a0c1d", "algorithm": "aes-256-gcm",
               "created_at": "2026-11-29T13:00:00+00:00", "key": "<base64>"}]}

Algorithms: ``aes-256-gcm`` (32-byte keys) and, where the installed OpenSSL provides it,
``sm4-gcm`` (16-byte keys; GB/T 32907 SM4 in GCM mode as in RFC 8998) for deployments under
the SM suite (GB/T 39786). :data:`SM4_GCM_AVAILABLE` says which.

Blob layout (all integers single bytes)::

    version (1) | algorithm (1 = aes-256-gcm, 2 = sm4-gcm) | key id length n | key id (n, ASCII)
    | nonce (12, random) | ciphertext | tag (16)

The GCM associated data is the blob header (version … key id) followed by the caller's
``associated_data``: the header cannot be altered to point at another key, and a blob
copied to another row (another associated data) fails to decrypt. Random 96-bit nonces
are safe for about 2**32 encryptions per key (NIST SP 800-38D): rotate well before that.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.clock import utc_now
from gateway.errors import ConfigInvalid, GatewayFault
from gateway.files import PRIVATE_MODE, fsync_directory, write_atomically

__all__ = [
    "ALGORITHMS",
    "KEY_FILE_FORMAT",
    "SM4_GCM_AVAILABLE",
    "Vault",
    "VaultError",
    "VaultKey",
]

KEY_FILE_FORMAT = "chuanyu-vault-keys/1"
BLOB_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
_ALGORITHM_CODES = {"aes-256-gcm": 1, "sm4-gcm": 2}
_KEY_BYTES = {"aes-256-gcm": 32, "sm4-gcm": 16}
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _sm4_gcm_available() -> bool:
    try:
        encryptor = Cipher(algorithms.SM4(bytes(16)), modes.GCM(bytes(NONCE_BYTES))).encryptor()
        encryptor.update(b"probe")
        encryptor.finalize()
    except UnsupportedAlgorithm:
        return False
    return True


SM4_GCM_AVAILABLE = _sm4_gcm_available()
ALGORITHMS = tuple(a for a in _ALGORITHM_CODES if a != "sm4-gcm" or SM4_GCM_AVAILABLE)


class VaultError(GatewayFault):
    """A blob cannot be decrypted (or a key cannot be used); ``reason`` says why.

    Our fault, not a peer's: stored data was damaged, a key is missing, or the caller
    passed the wrong associated data.
    """

    reason = "VAULT_ERROR"


@dataclass(frozen=True, slots=True)
class VaultKey:
    id: str
    algorithm: str
    secret: bytes = field(repr=False)
    created_at: str = ""

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.id):
            raise ValueError("key id must be 1-64 letters, digits, '.', '_' or '-'")
        if self.algorithm not in _ALGORITHM_CODES:
            raise ValueError(f"unknown algorithm {self.algorithm!r}")
        if len(self.secret) != _KEY_BYTES[self.algorithm]:
            raise ValueError(
                f"{self.algorithm} needs a {_KEY_BYTES[self.algorithm]}-byte key, "
                f"got {len(self.secret)}"
            )


def _seal(key: VaultKey, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    if key.algorithm == "aes-256-gcm":
        return AESGCM(key.secret).encrypt(nonce, plaintext, aad)
    encryptor = Cipher(algorithms.SM4(key.secret), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag


def _open(key: VaultKey, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    if key.algorithm == "aes-256-gcm":
        return AESGCM(key.secret).decrypt(nonce, sealed, aad)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key.secret), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


@dataclass(frozen=True, slots=True)
class _Header:
    algorithm: str
    key_id: str
    length: int  # bytes of header, i.e. where the nonce starts


def _parse_header(blob: bytes) -> _Header:
    if len(blob) < 3:
        raise VaultError(f"blob is truncated ({len(blob)} bytes)", reason="VAULT_BLOB_TRUNCATED")
    if blob[0] != BLOB_VERSION:
        raise VaultError(
            f"blob version {blob[0]} is not supported (expected {BLOB_VERSION})",
            reason="VAULT_BLOB_VERSION",
        )
    algorithm = next((a for a, c in _ALGORITHM_CODES.items() if c == blob[1]), None)
    if algorithm is None:
        raise VaultError(f"blob names unknown algorithm code {blob[1]}", reason="VAULT_BLOB_FORMAT")
    length = 3 + blob[2]
    if len(blob) < length + NONCE_BYTES + TAG_BYTES:
        raise VaultError(
            f"blob is truncated ({len(blob)} bytes, at least {length + NONCE_BYTES + TAG_BYTES} "
            "expected)",
            reason="VAULT_BLOB_TRUNCATED",
        )
    try:
        key_id = blob[3:length].decode("ascii")
    except UnicodeDecodeError:
        raise VaultError("blob key id is not ASCII", reason="VAULT_BLOB_FORMAT") from None
    return _Header(algorithm, key_id, length)


class Vault:
    """Encrypts and decrypts with the keys of one key file (the last key is active)."""

    def __init__(self, keys: Sequence[VaultKey]) -> None:
        if not keys:
            raise ValueError("a vault needs at least one key")
        by_id: dict[str, VaultKey] = {}
        for key in keys:
            if key.id in by_id:
                raise ValueError(f"key id {key.id!r} appears twice")
            by_id[key.id] = key
        self._keys = by_id
        self._active = keys[-1]

    def __repr__(self) -> str:
        return f"Vault(keys={list(self._keys)}, active={self._active.id!r})"

    @property
    def active_key_id(self) -> str:
        return self._active.id

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """A self-describing blob under the active key, bound to ``associated_data``.

        Use something that names where the blob is stored (table, row id, field) as
        associated data, so a blob moved elsewhere no longer decrypts.
        """
        key = self._active
        key_id = key.id.encode("ascii")
        header = bytes((BLOB_VERSION, _ALGORITHM_CODES[key.algorithm], len(key_id))) + key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        return header + nonce + _seal(key, nonce, plaintext, header + associated_data)

    def decrypt(self, blob: bytes, associated_data: bytes) -> bytes:
        """The plaintext, or :class:`VaultError` if the blob is damaged, foreign or misbound."""
        header = _parse_header(blob)
        key = self._keys.get(header.key_id)
        if key is None:
            raise VaultError(
                f"blob was encrypted with key {header.key_id!r}, which is not in the key file "
                f"(keys: {', '.join(self._keys)})",
                reason="VAULT_UNKNOWN_KEY",
            )
        if key.algorithm != header.algorithm:
            raise VaultError(
                f"blob says {header.algorithm} but key {key.id!r} is {key.algorithm}",
                reason="VAULT_BLOB_FORMAT",
            )
        nonce = blob[header.length : header.length + NONCE_BYTES]
        sealed = blob[header.length + NONCE_BYTES :]
        try:
            return _open(key, nonce, sealed, blob[: header.length] + associated_data)
        except InvalidTag:
            # GCM cannot tell these apart, and neither can we.
            raise VaultError(
                f"blob under key {key.id!r} fails authentication: it was altered or truncated, "
                "or the associated data is not the one it was encrypted with",
                reason="VAULT_AUTHENTICATION_FAILED",
            ) from None

    def key_id_of(self, blob: bytes) -> str:
        return _parse_header(blob).key_id

    def needs_reencryption(self, blob: bytes) -> bool:
        """True when the blob is under an older key than the active one."""
        return self.key_id_of(blob) != self._active.id

    def reencrypt(self, blob: bytes, *, associated_data: bytes) -> bytes:
        """The same plaintext under the active key (for a pass after :meth:`rotate`)."""
        return self.encrypt(self.decrypt(blob, associated_data), associated_data=associated_data)

    # -----------------------------------------------------------------------
    # Key files: the only I/O in this module

    @classmethod
    def load(cls, path: Path) -> Vault:
        """Read and check a key file; :class:`ConfigInvalid` names the file, key and rule."""
        return cls(_read_key_file(path))

    @staticmethod
    def generate_key_file(path: Path, *, algorithm: str = "aes-256-gcm") -> str:
        """Create a key file (mode 0600) with one fresh key; returns its id.

        Refuses to overwrite: replacing a key file loses every blob encrypted under it.
        """
        key = _new_key(algorithm, taken=())
        if path.exists():
            raise ConfigInvalid(f"{path}: key file already exists; use rotate to add a key")
        # Written whole aside, then linked into place: a crash never leaves an empty key
        # file behind, and link (unlike rename) still refuses to replace an existing one.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        try:
            _write_fd(fd, _key_file_bytes([key]))
            os.link(temporary, path)
        except FileExistsError:
            raise ConfigInvalid(
                f"{path}: key file already exists; use rotate to add a key"
            ) from None
        finally:
            temporary.unlink(missing_ok=True)
        fsync_directory(path.parent)
        return key.id

    @staticmethod
    def rotate(path: Path, *, algorithm: str | None = None) -> str:
        """Append a new active key (by default of the current algorithm); returns its id.

        Old keys stay, so every existing blob still decrypts. The file is replaced
        atomically; run one rotation at a time.
        """
        keys = _read_key_file(path)
        key = _new_key(algorithm or keys[-1].algorithm, taken={k.id for k in keys})
        write_atomically(path, _key_file_bytes([*keys, key]), mode=PRIVATE_MODE)
        return key.id


def _new_key(algorithm: str, *, taken: set[str] | tuple[str, ...]) -> VaultKey:
    if algorithm not in ALGORITHMS:
        hint = " (this OpenSSL has no SM4-GCM)" if algorithm == "sm4-gcm" else ""
        raise ConfigInvalid(
            f"unknown key algorithm {algorithm!r}{hint}; available: {', '.join(ALGORITHMS)}"
        )
    now = utc_now()
    while True:
        key_id = f"{now:%Y%m%d}-{secrets.token_hex(4)}"
        if key_id not in taken:
            break
    return VaultKey(
        key_id,
        algorithm,
        secrets.token_bytes(_KEY_BYTES[algorithm]),
        now.isoformat(timespec="seconds"),
    )


def _key_file_bytes(keys: Sequence[VaultKey]) -> bytes:
    document = {
        "format": KEY_FILE_FORMAT,
        "keys": [
            {
                "id": k.id,
                "algorithm": k.algorithm,
                "created_at": k.created_at,
                "key": base64.b64encode(k.secret).decode("ascii"),
            }
            for k in keys
        ],
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _write_fd(fd: int, data: bytes) -> None:
    # umask may only remove bits; set 0600 explicitly in case the file pre-existed.
    os.fchmod(fd, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _read_key_file(path: Path) -> list[VaultKey]:
    def invalid(key: str, rule: str, message: str) -> ConfigInvalid:
        return ConfigInvalid(f"{path}: {key}: {message} [{rule}]")

    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise invalid("(file)", "file.unreadable", str(exc.strerror or exc)) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise invalid(
            "(file)",
            "file.mode",
            f"mode {stat.S_IMODE(mode):04o} lets others read the keys; chmod 600",
        )
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid("(file)", "json.syntax", str(exc)) from None
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise invalid("format", "format.unknown", f"must be {KEY_FILE_FORMAT!r}")
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise invalid("keys", "keys.empty", "must be a non-empty list of keys")
    keys: list[VaultKey] = []
    for index, raw in enumerate(raw_keys):
        at = f"keys[{index}]"
        if not isinstance(raw, dict):
            raise invalid(at, "type.object", "must be an object")
        algorithm = raw.get("algorithm")
        if algorithm not in ALGORITHMS:
            raise invalid(
                f"{at}.algorithm",
                "algorithm.unknown",
                f"{algorithm!r} is not available here ({', '.join(ALGORITHMS)})",
            )
        try:
            secret = base64.b64decode(str(raw.get("key", "")), validate=True)
        except binascii.Error:
            raise invalid(f"{at}.key", "key.base64", "is not valid base64") from None
        try:
            key = VaultKey(
                str(raw.get("id", "")), algorithm, secret, str(raw.get("created_at", ""))
            )
        except ValueError as exc:
            raise invalid(at, "key.invalid", str(exc)) from None
        if any(k.id == key.id for k in keys):
            raise invalid(f"{at}.id", "id.duplicate", f"key id {key.id!r} appears twice")
        keys.append(key)
    return keys
