"""Stored envelopes are personal data: sealed with the node's vault before they reach the disk.

Every envelope carries a record with personal information (a legal representative,
a complainant, a contact), so every stored envelope is encrypted (AES-256-GCM, or
SM4-GCM under the SM suite; see :mod:`gateway.vault`). The associated data names
the row — ``outbox:<message id>`` or ``inbox:<sender>:<message id>`` — so a blob
moved to another row does not decrypt. Receipts and the transfer log hold no
personal information and stay in the clear, which keeps ``log verify`` and
reconciliation possible without the key.

The key file is named in the configuration (``[storage] key_file``); without one
the node keeps it beside its database (``<database>.keys.json``, mode 0600) and
creates it on first start. Rotating it (:meth:`gateway.vault.Vault.rotate`) adds a
key for new data; old rows stay readable with the old key.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.vault import BLOB_VERSION, Vault

__all__ = ["AtRest", "default_key_file", "open_vault"]

_log = logging.getLogger("chuanyu.store")
_PLAIN_ENVELOPE = 0x0A  # a serialised Envelope starts with field 1 (header, length-delimited)


def default_key_file(database: Path) -> Path:
    return database.with_name(database.name + ".keys.json")


def open_vault(key_file: Path) -> Vault:
    """Load the vault, creating a key file with one fresh key if there is none yet."""
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        Vault.generate_key_file(key_file)
        _log.warning(
            "created the at-rest key file %s (keep it with the database backups)", key_file
        )
    return Vault.load(key_file)


class AtRest:
    """Seals and opens stored envelopes; ``vault=None`` reads and writes them in the clear."""

    def __init__(self, vault: Vault | None) -> None:
        self.vault = vault

    def _seal(self, data: bytes, aad: str) -> bytes:
        if self.vault is None:
            return data
        return self.vault.encrypt(data, associated_data=aad.encode())

    def _open(self, blob: bytes, aad: str) -> bytes:
        if blob[:1] == bytes([_PLAIN_ENVELOPE]) or not blob:
            return blob  # written before encryption at rest was configured
        if self.vault is None or blob[0] != BLOB_VERSION:
            return blob  # sealed, and no key here: callers get the ciphertext
        return self.vault.decrypt(blob, aad.encode())

    def seal_outbound(self, message_id: str, envelope: bytes) -> bytes:
        return self._seal(envelope, f"outbox:{message_id}")

    def open_outbound(self, message_id: str, blob: bytes) -> bytes:
        return self._open(blob, f"outbox:{message_id}")

    def seal_inbound(self, sender: str, message_id: str, envelope: bytes) -> bytes:
        return self._seal(envelope, f"inbox:{sender}:{message_id}")

    def open_inbound(self, sender: str, message_id: str, blob: bytes) -> bytes:
        return self._open(blob, f"inbox:{sender}:{message_id}")
