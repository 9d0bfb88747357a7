"""Reading a node's store without the node running: the log, and envelopes with receipts.

For ``log tail``/``log verify``, ``envelope export`` and the demo. The engines
supply a synchronous fetch and the log iteration; the lookups are decided here
once. The at-rest key is loaded only when an envelope is asked for, so reading the
log needs no key (receipts and the log are in the clear).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.errors import ConfigInvalid, NotFound
from gateway.store import statements as sql
from gateway.store.at_rest import AtRest
from gateway.store.base import OutboundRow
from gateway.store.reads import ExportedEnvelope
from gateway.store.rows import OUTBOX_COLUMNS, Row, open_stored, outbound_row
from gateway.vault import Vault

__all__ = ["OfflineLookups", "outbound_rows_sql"]


def outbound_rows_sql(order: str, count: int) -> str:
    """Outbox rows with their receipts in ``order``; the ``count`` ids named, or all."""
    columns = ", ".join(f"o.{c.strip()}" for c in OUTBOX_COLUMNS.split(","))
    where = f"WHERE o.message_id IN ({','.join('?' * count)}) " if count else ""
    return (
        f"SELECT {columns}, r.receipt FROM outbox AS o LEFT JOIN receipts AS r "
        f"ON r.issuer = o.receiver AND r.message_id = o.message_id {where}ORDER BY {order}"
    )


class OfflineLookups:
    """The envelope lookups of an offline reader; the engine supplies :meth:`_fetch`."""

    location: str
    _order = "o.rowid"  # the outbox's insertion order, in the engine's spelling

    def __init__(self, key_file: Path | None, vault: Vault | None = None) -> None:
        self.key_file = key_file
        self._vault = vault

    def _fetch(self, statement: str, params: Sequence[Any]) -> list[Row]:
        raise NotImplementedError

    def _at_rest(self) -> AtRest:
        if self._vault is None:
            if self.key_file is None:
                raise ConfigInvalid(
                    "stored envelopes are encrypted: name the node's at-rest key file"
                )
            if not self.key_file.is_file():
                raise ConfigInvalid(
                    f"no at-rest key file {self.key_file}: stored envelopes are encrypted"
                )
            self._vault = Vault.load(self.key_file)
        return AtRest(self._vault)

    def envelope(self, message_id: str) -> ExportedEnvelope:
        """``NotFound`` if neither box holds ``message_id``."""
        for direction, statement in (
            ("outbound", sql.ENVELOPE_OUTBOUND),
            ("inbound", sql.ENVELOPE_INBOUND),
        ):
            rows = self._fetch(statement, (message_id,))
            if rows:
                blob, receipt, peer = rows[0]
                envelope = open_stored(self._at_rest(), direction, peer, message_id, blob)
                return ExportedEnvelope(direction, envelope, bytes(receipt or b""))
        raise NotFound(f"{self.location} holds no envelope {message_id}")

    def outbound_rows(self, message_ids: Sequence[str] = ()) -> list[OutboundRow]:
        """Outbox rows (all, or those named) with their receipts, envelopes decrypted."""
        return self._outbound_rows(self._at_rest(), message_ids)

    def _outbound_rows(self, at_rest: AtRest, message_ids: Sequence[str]) -> list[OutboundRow]:
        rows = self._fetch(outbound_rows_sql(self._order, len(message_ids)), message_ids)
        return [outbound_row(r, at_rest, bytes(r[12] or b"")) for r in rows]
