"""What SQLite asks in its own words: the due queue, and retention's paging of stored envelopes."""

from __future__ import annotations

import datetime as dt

from gateway.clock import iso_utc
from gateway.store.base import OutboundRow, StoredPayload
from gateway.store.rows import OUTBOX_COLUMNS, outbound_row, stored_payload, to_datetime
from gateway.store.sqlite.core import SqliteCore
from gateway.store.writes import PENDING

__all__ = ["SqliteQueues"]

# Feedback never overtakes earlier feedback on the same record: a message waits while an
# older one with the same correlation id is still pending.
_DUE = (
    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE receiver = ? AND state = ? "
    "AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox AS earlier "
    "WHERE earlier.correlation_id = outbox.correlation_id "
    "AND outbox.correlation_id != '' AND earlier.state = outbox.state "
    "AND earlier.rowid < outbox.rowid) "
    "ORDER BY next_attempt_at, rowid LIMIT ?"
)
_NEXT_DUE = "SELECT MIN(next_attempt_at) FROM outbox WHERE receiver = ? AND state = ?"
_UNPURGED = (
    "SELECT direction, sender, message_id, stored_at, envelope FROM ("
    "SELECT 'inbound' AS direction, sender, message_id, received_at AS stored_at, "
    "envelope FROM inbox WHERE purged_at IS NULL AND received_at < :cutoff "
    "UNION ALL SELECT 'outbound', :me, message_id, created_at, envelope FROM outbox "
    "WHERE purged_at IS NULL AND created_at < :cutoff) "
    "WHERE (direction, sender, message_id) > (:d, :s, :m) "
    "ORDER BY direction, sender, message_id LIMIT :limit"
)


class SqliteQueues(SqliteCore):
    async def due_outbound(self, receiver: str, now: dt.datetime, limit: int) -> list[OutboundRow]:
        rows = await self._rows(_DUE, receiver, PENDING, now.timestamp(), limit)
        return [outbound_row(r, self.at_rest) for r in rows]

    async def next_due_at(self, receiver: str) -> dt.datetime | None:
        value = (await self._rows(_NEXT_DUE, receiver, PENDING))[0][0]
        return None if value is None else to_datetime(value)

    async def unpurged_payloads(
        self, stored_before: dt.datetime, after: tuple[str, str, str], limit: int
    ) -> list[StoredPayload]:
        """Stored envelopes older than the cutoff and not purged, in a stable order after
        ``after`` = (direction, sender, message id)."""
        names = {"cutoff": iso_utc(stored_before), "me": self.bureau, "limit": limit}
        names |= dict(zip(("d", "s", "m"), after, strict=True))
        rows = await self._rows_named(_UNPURGED, names)
        return [stored_payload(r, self.at_rest) for r in rows]
