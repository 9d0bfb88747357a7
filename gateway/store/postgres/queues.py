"""What PostgreSQL asks in its own words: claims with leases, and retention's paging.

``due_outbound`` hands rows to one replica at a time: it locks the due rows with
``FOR UPDATE SKIP LOCKED`` and stamps them with a lease (``claimed_by``,
``claimed_until``, on the database clock). Another replica skips a row while its
lease runs; a replica that crashed releases its rows when the lease expires.
Delivering, failing, dead-lettering or re-driving a row ends its claim (the
``_release`` every such statement carries). A replica is handed its own claimed
rows again, as SQLite would.
"""

from __future__ import annotations

import datetime as dt

from gateway.errors import StoreUnavailable
from gateway.store.base import OutboundRow, StoredPayload
from gateway.store.postgres.connection import DRIVER_ERRORS, unavailable
from gateway.store.postgres.core import PostgresCore
from gateway.store.rows import OUTBOX_FIELDS, outbound_row, stored_payload
from gateway.store.writes import PENDING

__all__ = ["PostgresQueues"]

_O_COLUMNS = ", ".join(f"o.{name}" for name in OUTBOX_FIELDS)

# Feedback never overtakes earlier feedback on the same record: a message waits while an
# older one with the same correlation id is still pending (whoever holds its claim).
_CLAIM = f"""
WITH due AS (
    SELECT o.message_id FROM outbox AS o
    WHERE o.receiver = $1 AND o.state = $2 AND o.next_attempt_at <= $3
      AND (o.claimed_until IS NULL OR o.claimed_until <= clock_timestamp() OR o.claimed_by = $5)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS earlier
          WHERE earlier.correlation_id = o.correlation_id AND o.correlation_id <> ''
            AND earlier.state = o.state AND earlier.ord < o.ord)
    ORDER BY o.next_attempt_at, o.ord
    LIMIT $4
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox AS o
SET claimed_by = $5, claimed_until = clock_timestamp() + make_interval(secs => $6)
FROM due WHERE o.message_id = due.message_id
RETURNING {_O_COLUMNS}, o.ord
"""

# A row another replica holds is due, for us, when its lease ends.
_NEXT_DUE = (
    "SELECT MIN(CASE WHEN claimed_by IS DISTINCT FROM $3 AND claimed_until > clock_timestamp() "
    "THEN GREATEST(next_attempt_at, claimed_until) ELSE next_attempt_at END) "
    "FROM outbox WHERE receiver = $1 AND state = $2"
)
# Paged in bytewise order, as SQLite compares text.
_UNPURGED = (
    "SELECT direction, sender, message_id, stored_at, envelope FROM ("
    "SELECT 'inbound' AS direction, sender, message_id, received_at AS stored_at, "
    "envelope FROM inbox WHERE purged_at IS NULL AND received_at < $1 "
    "UNION ALL SELECT 'outbound', $2::text, message_id, created_at, envelope "
    "FROM outbox WHERE purged_at IS NULL AND created_at < $1) AS stored "
    'WHERE (direction COLLATE "C", sender COLLATE "C", message_id COLLATE "C") '
    "> ($3::text, $4::text, $5::text) "
    'ORDER BY direction COLLATE "C", sender COLLATE "C", message_id COLLATE "C" '
    "LIMIT $6"
)


class PostgresQueues(PostgresCore):
    async def due_outbound(self, receiver: str, now: dt.datetime, limit: int) -> list[OutboundRow]:
        """Claim up to ``limit`` due rows for this replica (a lease of ``lease_seconds``)."""
        if self._pool is None:
            raise StoreUnavailable(f"the node store (schema {self.schema}) is closed")
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    _CLAIM, receiver, PENDING, now, limit, self.replica_id, self.lease_seconds
                )
        except DRIVER_ERRORS as exc:
            self._note(exc)
            raise unavailable(exc, "node database cannot claim due messages") from exc
        # Availability comes back with a committed write batch (probe), not with a claim.
        rows = sorted(rows, key=lambda r: (r["next_attempt_at"], r["ord"]))
        return [outbound_row(r, self.at_rest) for r in rows]

    async def next_due_at(self, receiver: str) -> dt.datetime | None:
        rows = await self._rows(_NEXT_DUE, receiver, PENDING, self.replica_id)
        value: dt.datetime | None = rows[0][0]
        return value

    async def unpurged_payloads(
        self, stored_before: dt.datetime, after: tuple[str, str, str], limit: int
    ) -> list[StoredPayload]:
        """Stored envelopes older than the cutoff and not purged, in a stable order after
        ``after`` = (direction, sender, message id)."""
        rows = await self._rows(_UNPURGED, stored_before, self.bureau, *after, limit)
        return [stored_payload(r, self.at_rest) for r in rows]
