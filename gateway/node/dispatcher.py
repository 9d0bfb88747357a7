"""Draining one partner's outbox: due rows, the partner client, the lifecycle table, the store.

A single envelope goes as a unary ``Submit``, a backlog as a ``SubmitStream``
(:class:`~gateway.node.partner.PartnerClient` chooses). Each answer becomes an
outcome, :func:`gateway.transfer.decide` says what it means, and the decision is
committed as soon as it is known, so a round cut short (or a crash) never sends
again what the partner already acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.clock import from_timestamp, utc_now
from gateway.config import ExchangeSettings, PartnerConfig, RetrySettings
from gateway.envelope import parse_envelope, parse_header, reseal_envelope, verify_receipt
from gateway.errors import GatewayError
from gateway.node.hooks import DeliveryAttempt, HookChain
from gateway.node.partner import Answer, PartnerClient
from gateway.pki import SigningCertificateVerifier
from gateway.signing import Signer
from gateway.store.base import OutboundRow, OutboundState, Store
from gateway.transfer import (
    Decision,
    Delivered,
    Failed,
    Move,
    Outcome,
    Transfer,
    decide,
    outbound_event,
)
from gateway.translog import EventKind

__all__ = ["OutboxDispatcher", "transfer_of"]

_log = logging.getLogger("chuanyu.outbound")
_MIN = dt.datetime.min.replace(tzinfo=dt.UTC)


def transfer_of(row: OutboundRow) -> Transfer:
    """The lifecycle's view of a stored row."""
    return Transfer(
        message_id=row.message_id,
        peer=row.receiver,
        record_type=row.record_type,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        last_error=row.last_error,
    )


@dataclass(slots=True)
class _Delivery:
    """One row of a round, its envelope parsed once."""

    row: OutboundRow
    envelope: epb.Envelope
    header: epb.EnvelopeHeader


@dataclass(slots=True)
class OutboxDispatcher:
    """Delivers one partner's outbox through its :class:`PartnerClient`."""

    partner: PartnerConfig
    client: PartnerClient
    signer: Signer
    verifier: SigningCertificateVerifier
    store: Store
    exchange: ExchangeSettings
    retry: RetrySettings
    freshness_seconds: int
    hooks: HookChain = field(default_factory=HookChain)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _next_expiry_sweep: dt.datetime = _MIN

    def wake(self) -> None:
        self._wake.set()

    def route(self, address: str) -> None:
        """Point at another address (tests start nodes on port 0)."""
        self.client.route(address)
        self.wake()

    async def close(self) -> None:
        await self.client.close()

    async def run(self) -> None:
        while True:
            now = utc_now()
            try:
                blocked_until = self.client.blocked_until()
                if now < blocked_until:
                    # The partner is down: one timer for the whole queue, not a retry per record.
                    await self._sleep((blocked_until - now).total_seconds())
                    continue
                if now >= self._next_expiry_sweep:
                    await self._dead_letter_expired(now)
                # After an outage a single probe goes first; the backlog follows once it passes.
                failing = self.client.health().consecutive_failures > 0
                limit = 1 if failing else self.exchange.stream_batch
                rows = await self.store.due_outbound(self.partner.bureau, now, limit)
                if not rows:
                    await self._sleep_until_due(now)
                    continue
                await self.deliver(rows)
            except GatewayError as exc:
                # The store failed us; everything stays pending and is tried again.
                _log.error("dispatch to %s paused: %s", self.partner.bureau, exc.message)
                await asyncio.sleep(1.0)
            except Exception:
                # A bug, or an answer nobody foresaw: never let it end delivery to this
                # partner. The records stay pending; back off as for an unreachable peer.
                _log.exception("dispatch to %s failed unexpectedly", self.partner.bureau)
                self.client.note_failure("UNAVAILABLE: unexpected failure")

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.01, seconds))

    async def _sleep_until_due(self, now: dt.datetime) -> None:
        due = await self.store.next_due_at(self.partner.bureau)
        await self._sleep(5.0 if due is None else min(5.0, (due - now).total_seconds()))

    async def _dead_letter_expired(self, now: dt.datetime) -> None:
        """Dead-letter records whose age clock passed the limit, tried or not (the peer
        may be down and the circuit holding them back)."""
        limit = self.retry.dead_letter_after_seconds
        self._next_expiry_sweep = now + dt.timedelta(seconds=min(10.0, max(0.1, limit / 4)))
        cutoff = now - dt.timedelta(seconds=limit)
        for message_id in await self.store.dead_letter_expired(self.partner.bureau, cutoff):
            _log.warning(
                "dead-lettered %s to %s: older than the limit", message_id, self.partner.bureau
            )

    async def deliver(self, rows: Sequence[OutboundRow]) -> None:
        """One delivery round for ``rows`` (all due, all for this partner)."""
        deliveries = {row.message_id: await self._prepare(row) for row in rows}
        started = time.perf_counter()
        settling: list[asyncio.Task[None]] = []

        def on_answer(message_id: str, answer: Answer) -> None:
            settling.append(
                asyncio.create_task(self._settle(deliveries[message_id], answer, started))
            )

        await self.client.submit(
            [(message_id, d.envelope) for message_id, d in deliveries.items()], on_answer
        )
        await asyncio.gather(*settling)

    async def _prepare(self, row: OutboundRow) -> _Delivery:
        envelope = parse_envelope(row.envelope)
        header = parse_header(envelope.header)
        created = from_timestamp(header.created_at)
        now = utc_now()
        # Re-sign well before the peer's freshness window would refuse the envelope.
        if now - created < dt.timedelta(seconds=self.freshness_seconds / 2):
            return _Delivery(row, envelope, header)
        envelope = reseal_envelope(self.signer, envelope, now)
        await self.store.replace_envelope(
            row.message_id,
            envelope.SerializeToString(),
            [
                outbound_event(
                    transfer_of(row),
                    EventKind.RESEALED,
                    previous_created_at=created.isoformat(),
                )
            ],
        )
        return _Delivery(row, envelope, parse_header(envelope.header))

    def _outcome(self, delivery: _Delivery, answer: Answer, now: dt.datetime) -> Outcome:
        if not isinstance(answer, epb.Receipt):
            return answer
        row = delivery.row
        try:
            verified = verify_receipt(
                answer,
                issuer=row.receiver,
                message_id=row.message_id,
                payload_sha256=delivery.header.payload_sha256,
                verifier=self.verifier,
                now=now,
            )
        except GatewayError as exc:
            return Failed("UNKNOWN", exc.reason, exc.message)
        return Delivered(
            receipt=answer.SerializeToString(),
            received_at=verified.received_at,
            key_id=verified.body.key_id,
            header_sha256=verified.body.header_sha256,
        )

    async def _settle(self, delivery: _Delivery, answer: Answer, started: float) -> None:
        """Decide what ``answer`` means for its row, commit that, tell the hooks."""
        row = delivery.row
        now = utc_now()
        outcome = self._outcome(delivery, answer, now)
        decision = decide(transfer_of(row), outcome, now=now, retry=self.retry)
        await self._commit(delivery, outcome, decision, now)
        self.hooks.delivery_attempted(
            DeliveryAttempt(
                peer=row.receiver,
                record_type=row.record_type,
                outcome=decision.verdict,
                seconds=time.perf_counter() - started,
                attempts=row.attempts + 1,
                age_seconds=(utc_now() - row.created_at).total_seconds(),
            )
        )

    async def _commit(
        self, delivery: _Delivery, outcome: Outcome, decision: Decision, now: dt.datetime
    ) -> None:
        row = delivery.row
        if isinstance(outcome, Delivered):
            await self.store.mark_delivered(
                row.message_id,
                outcome.receipt,
                received_at=outcome.received_at,
                events=decision.events,
            )
            return
        final = None if decision.state is OutboundState.PENDING else decision.state
        _report(row, decision, now)
        await self.store.mark_failed_attempt(
            row.message_id,
            error=decision.error,
            next_attempt_at=decision.next_attempt_at,
            final_state=final,
            events=decision.events,
        )
        if decision.move is Move.RESEAL and final is None:
            # The peer found it too old: re-sign now, for the round that is due at once.
            await self.store.replace_envelope(
                row.message_id,
                reseal_envelope(self.signer, delivery.envelope, now).SerializeToString(),
                [
                    outbound_event(
                        transfer_of(row), EventKind.RESEALED, reason="peer found the envelope stale"
                    )
                ],
            )


def _report(row: OutboundRow, decision: Decision, now: dt.datetime) -> None:
    if decision.state is OutboundState.REJECTED:
        _log.warning("partner %s refused %s: %s", row.receiver, row.message_id, decision.error)
    elif decision.state is OutboundState.DEAD_LETTERED:
        _log.warning(
            "dead-lettered %s to %s after %d attempts: %s",
            row.message_id,
            row.receiver,
            row.attempts + 1,
            decision.error,
        )
    else:
        _log.info(
            "delivery of %s to %s failed (%s); retry in %.1f s",
            row.message_id,
            row.receiver,
            decision.error,
            (decision.next_attempt_at - now).total_seconds(),
        )
