"""The scheduled retention job: personal information leaves stored payloads on time.

Each run walks the stored envelopes older than the shortest retention period of
any agreement, asks :func:`gateway.retention.plan_purge` which are past their own
agreement's period, and rewrites those payloads anonymised (the header stays, so
the message id, parties and agreement remain; the signature no longer matches,
and the row is marked purged). Each purge is a ``purged`` transfer-log event that
names the paths, never the values. The log holds no content, so its chain is
untouched by purging.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from gateway.agreements import AgreementBook
from gateway.clock import utc_now
from gateway.codec import decode_payload, encode_payload, record_type_from_proto
from gateway.envelope import parse_envelope, parse_header
from gateway.errors import GatewayError
from gateway.retention import StoredItem, plan_purge
from gateway.store.base import Store, StoredPayload
from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["RetentionJob"]

_log = logging.getLogger("chuanyu.retention")


def _shortest_retention_days(book: AgreementBook) -> int | None:
    days = [
        terms.retention_days
        for agreement in book.agreements.values()
        for direction in agreement.directions.values()
        for terms in direction.records.values()
    ]
    return min(days) if days else None


@dataclass(slots=True)
class RetentionJob:
    store: Store
    agreements: AgreementBook
    interval_seconds: float
    batch: int = 500

    async def run(self) -> None:
        while True:
            try:
                purged = await self.run_once()
                if purged:
                    _log.info("retention: purged personal information from %d payload(s)", purged)
            except GatewayError as exc:
                _log.error("retention run failed, tried again later: %s", exc.message)
            await asyncio.sleep(self.interval_seconds)

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Purge every payload past its retention; returns how many were rewritten."""
        now = now or utc_now()
        shortest = _shortest_retention_days(self.agreements)
        if shortest is None:
            return 0
        cutoff = now - dt.timedelta(days=shortest)
        after = ("", "", "")
        purged = 0
        while rows := await self.store.unpurged_payloads(cutoff, after, self.batch):
            after = (rows[-1].direction, rows[-1].sender, rows[-1].message_id)
            purged += await self._purge(rows, now)
        return purged

    async def _purge(self, rows: list[StoredPayload], now: dt.datetime) -> int:
        items: list[StoredItem] = []
        by_key: dict[str, tuple[StoredPayload, bytes, str]] = {}
        for row in rows:
            key = f"{row.direction}/{row.sender}/{row.message_id}"
            try:
                envelope = parse_envelope(row.envelope)
                header = parse_header(envelope.header)
                record = decode_payload(envelope.payload)
            except GatewayError as exc:
                _log.error("retention: cannot read stored %s: %s", key, exc.message)
                continue
            by_key[key] = (row, row.envelope, header.receiver)
            items.append(
                StoredItem(
                    key=key,
                    sender=header.sender,
                    receiver=header.receiver,
                    agreement_id=header.agreement_id,
                    record_type=record_type_from_proto(header.record_type),
                    stored_at=row.stored_at,
                    record=record,
                )
            )
        plan = plan_purge(items, self.agreements, now)
        for unresolved in plan.unresolved:
            _log.warning(
                "retention: %s under agreement %s left alone: %s",
                unresolved.key,
                unresolved.agreement_id,
                unresolved.reason,
            )
        for action in plan.actions:
            row, envelope_bytes, receiver = by_key[action.key]
            envelope = parse_envelope(envelope_bytes)
            header = parse_header(envelope.header)
            envelope.payload = encode_payload(action.anonymised)
            inbound = row.direction == "inbound"
            event = LogEvent(
                EventKind.PURGED,
                Direction.INBOUND if inbound else Direction.OUTBOUND,
                peer=row.sender if inbound else receiver,
                message_id=row.message_id,
                record_type=record_type_from_proto(header.record_type).value,
                detail={
                    "agreement": action.agreement_id,
                    "retention_days": action.retention_days,
                    "paths": ",".join(action.purged_paths),
                    "signed_payload_sha256": header.payload_sha256.hex(),
                },
            )
            await self.store.purge_payload(row, envelope.SerializeToString(), [event])
        return len(plan.actions)
