"""Records leaving this bureau: into the outbox, then out to the partner node.

:class:`OutboundService` seals a record from the local system into a signed
envelope and commits it to the outbox before it returns. One
:class:`OutboxDispatcher` per partner drains the outbox: a single envelope
goes as a unary ``Submit``, a backlog as a ``SubmitStream`` with a bounded
window. Unreachable peers are retried with capped exponential backoff and
jitter; envelopes the peer refuses for good leave the queue as *rejected*.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from chuanyu.exchange.v1 import envelope_pb2 as epb
from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from chuanyu.exchange.v1 import exchange_service_pb2_grpc as xgrpc
from gateway.agreements import AgreementBook, AgreementRefused
from gateway.codec import encode_payload
from gateway.config import ExchangeSettings, PartnerConfig, RetrySettings
from gateway.envelope import (
    new_message_id,
    parse_envelope,
    parse_header,
    reseal_envelope,
    seal_envelope,
    verify_receipt,
)
from gateway.errors import GatewayError, PeerUnavailable, UnknownCorrelation, UnknownPeer
from gateway.node.hooks import DeliveryAttempt, HookChain, LocalSendHandled, PeerHealth
from gateway.pki import SigningCertificateVerifier
from gateway.records import Feedback, OriginalType, Record, RecordType, record_key
from gateway.signing import Signer, sha256
from gateway.store.base import OutboundRow, OutboundState, Store
from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["OutboundService", "OutboxDispatcher", "Route", "SendOutcome", "backoff_delay"]

_log = logging.getLogger("chuanyu.outbound")

# A peer answering with one of these will answer the same way next time.
_FINAL_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
_STALE_REASONS = frozenset({"ENVELOPE_STALE"})
# The peer never answered: nothing is known about the envelope, only about the link.
_TRANSPORT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)
_random = secrets.SystemRandom()


def backoff_delay(attempts: int, retry: RetrySettings, *, rand: float | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: capped exponential with equal jitter."""
    ceiling = min(retry.cap_seconds, retry.base_seconds * 2.0 ** min(attempts, 32))
    r: float = _random.random() if rand is None else rand
    return ceiling / 2 + r * ceiling / 2


@dataclass(frozen=True, slots=True)
class Route:
    """Where a record goes, under which agreement, and what it answers (feedback only)."""

    partner: PartnerConfig
    agreement_id: str
    record: Record  # as the agreement lets it cross (fields to drop are dropped)
    correlation_id: str = ""


@dataclass(frozen=True, slots=True)
class SendOutcome:
    row: OutboundRow
    duplicate: bool


@dataclass(slots=True)
class OutboundService:
    """Seal records from the local system and commit them to the outbox."""

    bureau: str
    partners: Sequence[PartnerConfig]
    signer: Signer
    store: Store
    wake: Callable[[str], None]
    agreements: AgreementBook
    hooks: HookChain = field(default_factory=HookChain)

    def _partner(self, receiver: str) -> PartnerConfig:
        if not receiver:
            if len(self.partners) == 1:
                return self.partners[0]
            names = ", ".join(p.bureau for p in self.partners) or "(none)"
            raise UnknownPeer(f"name the receiving bureau; this node's partners are {names}")
        for partner in self.partners:
            if partner.bureau == receiver:
                return partner
        names = ", ".join(p.bureau for p in self.partners) or "(none)"
        raise UnknownPeer(f"bureau {receiver} is not a partner of this node (partners: {names})")

    async def resolve(self, record: Record, receiver: str = "", agreement_id: str = "") -> Route:
        """Route ``record`` without sending or logging anything; raises what :meth:`send`
        would. A caller that checks a whole file first hands the routes to :meth:`send`."""
        correlation_id, answered_agreement = "", ""
        answers: OriginalType | None = None
        if isinstance(record, Feedback):
            original = await self.store.find_inbound_by_key(
                record.original_type.value, record.original_number
            )
            if original is None:
                raise UnknownCorrelation(
                    f"feedback answers {record.original_type.value} {record.original_number}, "
                    "which this node never received"
                )
            if receiver and receiver != original.sender:
                raise UnknownCorrelation(
                    f"{record.original_number} came from bureau {original.sender}; its feedback "
                    f"cannot go to {receiver}"
                )
            receiver, correlation_id = original.sender, original.message_id
            answered_agreement = parse_header(parse_envelope(original.envelope).header).agreement_id
            answers = record.original_type
        partner = self._partner(receiver)
        now = dt.datetime.now(dt.UTC)
        record_type = RecordType(record.record_type)
        agreement_id = agreement_id or partner.agreement
        if not agreement_id:
            try:
                agreement_id = self.agreements.default_agreement(
                    self.bureau, partner.bureau, record_type, now, answers=answers
                ).id
            except AgreementRefused:
                # Feedback may travel under the agreement its record came under.
                if not answered_agreement:
                    raise
                agreement_id = answered_agreement
        allowed = self.agreements.for_outbound(
            agreement_id, self.bureau, partner.bureau, record, now=now, suite=self.signer.suite.name
        )
        return Route(partner, agreement_id, allowed, correlation_id)

    async def send(
        self,
        record: Record,
        *,
        receiver: str = "",
        agreement_id: str = "",
        idempotency_key: str = "",
        route: Route | None = None,
    ) -> SendOutcome:
        """Seal and commit to the outbox; ``route`` from :meth:`resolve` if already known."""
        try:
            route = route or await self.resolve(record, receiver, agreement_id)
        except GatewayError as exc:
            self.hooks.local_send_handled(LocalSendHandled(record.record_type.value, exc.reason))
            if isinstance(exc, AgreementRefused):
                # The refusal is part of the record of what crossed (and what did not).
                await self.store.append_log(
                    [
                        LogEvent(
                            EventKind.REJECTED_FROM_LOCAL,
                            Direction.OUTBOUND,
                            peer=receiver,
                            record_type=record.record_type.value,
                            detail={
                                "reason": exc.reason,
                                "agreement": exc.agreement_id,
                                "fields": ",".join(exc.fields),
                                "error": exc.message[:300],
                            },
                        )
                    ]
                )
            raise
        partner, correlation_id = route.partner, route.correlation_id
        record, agreement = route.record, route.agreement_id
        now = dt.datetime.now(dt.UTC)
        message_id = new_message_id()
        envelope = seal_envelope(
            self.signer,
            message_id=message_id,
            receiver=partner.bureau,
            record_type=RecordType(record.record_type),
            agreement_id=agreement,
            correlation_id=correlation_id,
            payload=encode_payload(record),
            created_at=now,
        )
        row = OutboundRow(
            message_id=message_id,
            receiver=partner.bureau,
            record_type=record.record_type.value,
            record_key=record_key(record),
            correlation_id=correlation_id,
            envelope=envelope.SerializeToString(),
            created_at=now,
            state=OutboundState.PENDING,
            attempts=0,
            next_attempt_at=now,
            idempotency_key=idempotency_key,
        )
        event = LogEvent(
            EventKind.SIGNED,
            Direction.OUTBOUND,
            peer=partner.bureau,
            message_id=message_id,
            record_type=row.record_type,
            detail={
                "agreement": agreement,
                "correlation_id": correlation_id,
                "key_id": self.signer.key_id,
                "payload_sha256": sha256(envelope.payload).hex(),
                "suite": self.signer.suite.name,
            },
        )
        stored, created = await self.store.enqueue_outbound(row, [event])
        if created:
            self.wake(partner.bureau)
        self.hooks.local_send_handled(
            LocalSendHandled(row.record_type, "queued" if created else "duplicate")
        )
        return SendOutcome(stored, duplicate=not created)


def error_details(error: grpc.aio.AioRpcError) -> tuple[str, float | None]:
    """The ``ErrorInfo`` reason and ``RetryInfo`` delay a gateway put into its status."""
    return _status_details(error.trailing_metadata())


def _status_details(metadata: Any) -> tuple[str, float | None]:
    reason, retry_after = "", None
    for key, value in metadata or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            break
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            retry = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                reason = str(info.reason)
            elif detail.Unpack(retry):
                retry_after = retry.retry_delay.ToMilliseconds() / 1000
    return reason, retry_after


@dataclass(slots=True)
class _Result:
    receipt: epb.Receipt | None = None
    code: grpc.StatusCode | None = None
    reason: str = ""
    message: str = ""
    retry_after: float | None = None  # the partner's google.rpc.RetryInfo, if it sent one


@dataclass(slots=True)
class OutboxDispatcher:
    """Delivers one partner's outbox, retrying with capped exponential backoff."""

    partner: PartnerConfig
    signer: Signer
    verifier: SigningCertificateVerifier
    store: Store
    credentials: grpc.ChannelCredentials
    exchange: ExchangeSettings
    retry: RetrySettings
    freshness_seconds: int
    channel_options: Sequence[tuple[str, int | str]] = ()
    address: str = ""
    hooks: HookChain = field(default_factory=HookChain)
    health: PeerHealth = field(default_factory=lambda: PeerHealth(peer="", address=""))
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _blocked_until: dt.datetime = field(
        default_factory=lambda: dt.datetime.min.replace(tzinfo=dt.UTC)
    )
    _next_expiry_sweep: dt.datetime = field(
        default_factory=lambda: dt.datetime.min.replace(tzinfo=dt.UTC)
    )
    _channel: grpc.aio.Channel | None = None
    _stub: xgrpc.ExchangeServiceAsyncStub | None = None

    def __post_init__(self) -> None:
        self.address = self.address or self.partner.address
        self.health = PeerHealth(peer=self.partner.bureau, address=self.address)

    def wake(self) -> None:
        self._wake.set()

    def route(self, address: str) -> None:
        """Point at another address (tests start nodes on port 0)."""
        self.address = address
        self.health = PeerHealth(peer=self.partner.bureau, address=address)
        self._blocked_until = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._drop_channel()
        self.wake()

    def _drop_channel(self) -> None:
        if self._channel is not None:
            channel = self._channel
            self._channel = self._stub = None
            # Closing is async; do it in the background so route() stays synchronous.
            asyncio.get_running_loop().create_task(channel.close())

    def _ensure_stub(self) -> xgrpc.ExchangeServiceAsyncStub:
        if self._stub is None:
            self._channel = grpc.aio.secure_channel(
                self.address, self.credentials, options=list(self.channel_options)
            )
            self._stub = xgrpc.ExchangeServiceStub(self._channel)
        return self._stub

    async def call_reconcile(self, request: xpb.ReconcileRequest) -> xpb.ReconcileResponse:
        """Ask the partner for its signed account of a period."""
        try:
            response: xpb.ReconcileResponse = await self._ensure_stub().Reconcile(
                request, timeout=self.exchange.call_timeout_seconds * 3
            )
        except grpc.aio.AioRpcError as exc:
            raise PeerUnavailable(
                f"bureau {self.partner.bureau} did not answer the reconciliation: "
                f"{exc.code().name}: {exc.details()}"
            ) from exc
        return response

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def run(self) -> None:
        while True:
            now = dt.datetime.now(dt.UTC)
            try:
                if now < self._blocked_until:
                    # The partner is down: one timer for the whole queue, not a retry per record.
                    await self._sleep((self._blocked_until - now).total_seconds())
                    continue
                if now >= self._next_expiry_sweep:
                    await self._dead_letter_expired(now)
                # After an outage a single probe goes first; the backlog follows once it passes.
                limit = 1 if self.health.reachable is False else self.exchange.stream_batch
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
                self._note_health(
                    [_Result(code=grpc.StatusCode.UNAVAILABLE, message="unexpected failure")]
                )

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.01, seconds))

    async def _sleep_until_due(self, now: dt.datetime) -> None:
        due = await self.store.next_due_at(self.partner.bureau)
        await self._sleep(5.0 if due is None else min(5.0, (due - now).total_seconds()))

    async def _dead_letter_expired(self, now: dt.datetime) -> None:
        """Dead-letter records older than the limit, tried or not (the peer may be down)."""
        self._next_expiry_sweep = now + dt.timedelta(seconds=10)
        cutoff = now - dt.timedelta(seconds=self.retry.dead_letter_after_seconds)
        expired = await self.store.dead_letter_expired(self.partner.bureau, cutoff)
        for message_id in expired:
            _log.warning(
                "dead-lettered %s to %s: older than the limit", message_id, self.partner.bureau
            )

    async def deliver(self, rows: Sequence[OutboundRow]) -> None:
        """One delivery round for ``rows`` (all due, all for this partner).

        Each result is committed as soon as it arrives, so a round cut short (or a crash)
        never sends again what the partner already acknowledged.
        """
        envelopes = {row.message_id: await self._fresh_envelope(row) for row in rows}
        by_id = {row.message_id: row for row in rows}
        started = time.perf_counter()
        settled: dict[str, asyncio.Task[str]] = {}
        results: list[_Result] = []

        def on_result(message_id: str, result: _Result) -> None:
            row = by_id.get(message_id)
            if row is None or message_id in settled:
                return  # an answer for something we did not send in this round
            results.append(result)
            settled[message_id] = asyncio.create_task(
                self._settle(row, envelopes[message_id], result, started)
            )

        if len(rows) == 1:
            await self._submit_unary(envelopes[rows[0].message_id], on_result)
        else:
            await self._submit_stream(rows, envelopes, on_result)
        self._note_health(results)
        missing = _Result(code=grpc.StatusCode.UNKNOWN, message="no answer for this envelope")
        for row in rows:
            on_result(row.message_id, missing)
        await asyncio.gather(*settled.values())

    def _note_health(self, results: Sequence[_Result]) -> None:
        now = dt.datetime.now(dt.UTC)
        answered = [r for r in results if r.receipt is not None or r.code not in _TRANSPORT_CODES]
        current = self.health
        if answered or not results:
            if current.reachable is False:
                _log.info("partner %s reachable again", self.partner.bureau)
            self.health = replace(
                current, reachable=True, last_success_at=now, consecutive_failures=0, last_error=""
            )
            self._blocked_until = now
            return
        failures = current.consecutive_failures + 1
        error = next((f"{r.code.name if r.code else ''}: {r.message}" for r in results), "")
        self.health = replace(
            current,
            reachable=False,
            last_failure_at=now,
            last_error=error[:300],
            consecutive_failures=failures,
        )
        self._blocked_until = now + dt.timedelta(seconds=backoff_delay(failures - 1, self.retry))
        _log.info(
            "partner %s unreachable (%d in a row): %s; next probe at %s",
            self.partner.bureau,
            failures,
            error,
            self._blocked_until.isoformat(timespec="seconds"),
        )

    async def _fresh_envelope(self, row: OutboundRow) -> epb.Envelope:
        envelope = parse_envelope(row.envelope)
        header = parse_header(envelope.header)
        created = header.created_at.ToDatetime(tzinfo=dt.UTC)
        now = dt.datetime.now(dt.UTC)
        # Re-sign well before the peer's freshness window would refuse the envelope.
        if now - created < dt.timedelta(seconds=self.freshness_seconds / 2):
            return envelope
        envelope = reseal_envelope(self.signer, envelope, now)
        await self.store.replace_envelope(
            row.message_id,
            envelope.SerializeToString(),
            [
                LogEvent(
                    EventKind.RESEALED,
                    Direction.OUTBOUND,
                    peer=row.receiver,
                    message_id=row.message_id,
                    record_type=row.record_type,
                    detail={"previous_created_at": created.isoformat()},
                )
            ],
        )
        return envelope

    async def _submit_unary(
        self, envelope: epb.Envelope, on_result: Callable[[str, _Result], None]
    ) -> None:
        message_id = parse_header(envelope.header).message_id
        try:
            response = await self._ensure_stub().Submit(
                xpb.SubmitRequest(envelope=envelope), timeout=self.exchange.call_timeout_seconds
            )
        except grpc.aio.AioRpcError as exc:
            on_result(message_id, _failure(exc))
        else:
            on_result(message_id, _Result(receipt=response.receipt))

    async def _submit_stream(
        self,
        rows: Sequence[OutboundRow],
        envelopes: dict[str, epb.Envelope],
        on_result: Callable[[str, _Result], None],
    ) -> None:
        window = asyncio.Semaphore(self.exchange.stream_window)
        call = self._ensure_stub().SubmitStream(
            timeout=self.exchange.call_timeout_seconds * max(1, len(rows) // 64 + 1)
        )

        async def write_all() -> None:
            for row in rows:
                await window.acquire()
                await call.write(xpb.SubmitStreamRequest(envelope=envelopes[row.message_id]))
            await call.done_writing()

        writer = asyncio.create_task(write_all())
        failure: _Result | None = None
        try:
            async for response in call:
                window.release()
                if response.HasField("receipt"):
                    on_result(response.message_id, _Result(receipt=response.receipt))
                else:
                    rejection = response.rejection
                    on_result(
                        response.message_id,
                        _Result(
                            code=_code(rejection.code),
                            reason=rejection.reason,
                            message=rejection.message,
                        ),
                    )
        except grpc.aio.AioRpcError as exc:
            failure = _failure(exc)
        finally:
            if not writer.done():
                writer.cancel()
            # The writer fails too when the call ends early; the call's status says why.
            with contextlib.suppress(
                asyncio.CancelledError, asyncio.InvalidStateError, grpc.aio.AioRpcError
            ):
                await writer
        if failure is None and await call.code() != grpc.StatusCode.OK:
            failure = _Result(code=await call.code(), message=await call.details() or "")
            reason, retry_after = _status_details(await call.trailing_metadata())
            failure.reason, failure.retry_after = reason, retry_after
        if failure is not None:
            for row in rows:
                on_result(row.message_id, failure)  # only those still unanswered

    async def _settle(
        self, row: OutboundRow, envelope: epb.Envelope, result: _Result, started: float
    ) -> str:
        """Record what happened to ``row`` and report it to the hooks."""
        outcome = await self._record_outcome(row, envelope, result)
        now = dt.datetime.now(dt.UTC)
        self.hooks.delivery_attempted(
            DeliveryAttempt(
                peer=row.receiver,
                record_type=row.record_type,
                outcome=outcome,
                seconds=time.perf_counter() - started,
                attempts=row.attempts + 1,
                age_seconds=(now - row.created_at).total_seconds(),
            )
        )
        return outcome

    async def _record_outcome(
        self, row: OutboundRow, envelope: epb.Envelope, result: _Result
    ) -> str:
        now = dt.datetime.now(dt.UTC)

        def event(kind: EventKind, **detail: str | int) -> LogEvent:
            return LogEvent(
                kind,
                Direction.OUTBOUND,
                peer=row.receiver,
                message_id=row.message_id,
                record_type=row.record_type,
                detail=detail,
            )

        receipt = result.receipt
        if receipt is not None:
            try:
                verified = verify_receipt(
                    receipt,
                    issuer=row.receiver,
                    message_id=row.message_id,
                    payload_sha256=parse_header(envelope.header).payload_sha256,
                    verifier=self.verifier,
                    now=now,
                )
            except GatewayError as exc:
                result = _Result(
                    code=grpc.StatusCode.UNKNOWN, reason=exc.reason, message=exc.message
                )
            else:
                await self.store.mark_delivered(
                    row.message_id,
                    receipt.SerializeToString(),
                    received_at=verified.received_at,
                    events=[
                        event(
                            EventKind.SENT,
                            receipt_key_id=verified.body.key_id,
                            received_at=verified.received_at.isoformat(),
                            header_sha256=verified.body.header_sha256.hex(),
                        )
                    ],
                )
                return "delivered"
        error = f"{result.code.name if result.code else 'UNKNOWN'}: {result.message}"
        if result.reason and f"[{result.reason}]" not in error:
            error += f" [{result.reason}]"
        if result.reason in _STALE_REASONS:
            # The peer found it too old: re-sign at once on the next round.
            await self.store.mark_failed_attempt(
                row.message_id,
                error=error,
                next_attempt_at=now,
                final_state=None,
                events=[event(EventKind.RETRY_SCHEDULED, error=error[:500], delay_seconds=0)],
            )
            await self.store.replace_envelope(
                row.message_id,
                reseal_envelope(self.signer, envelope, now).SerializeToString(),
                [event(EventKind.RESEALED, reason="peer found the envelope stale")],
            )
            return "retry"
        if result.code in _FINAL_CODES:
            _log.warning("partner %s refused %s: %s", row.receiver, row.message_id, error)
            await self.store.mark_failed_attempt(
                row.message_id,
                error=error,
                next_attempt_at=now,
                final_state=OutboundState.REJECTED,
                events=[event(EventKind.REJECTED_BY_PEER, error=error[:500])],
            )
            return "rejected"
        age = (now - row.created_at).total_seconds()
        if (
            age >= self.retry.dead_letter_after_seconds
            or row.attempts + 1 >= self.retry.max_attempts
        ):
            _log.warning(
                "dead-lettered %s to %s after %d attempts over %.0f s: %s",
                row.message_id,
                row.receiver,
                row.attempts + 1,
                age,
                error,
            )
            await self.store.mark_failed_attempt(
                row.message_id,
                error=error,
                next_attempt_at=now,
                final_state=OutboundState.DEAD_LETTERED,
                events=[
                    event(
                        EventKind.DEAD_LETTERED,
                        error=error[:500],
                        attempts=row.attempts + 1,
                        age_seconds=round(age),
                    )
                ],
            )
            return "dead_lettered"
        if result.code in _TRANSPORT_CODES:
            # The link failed, not this record: retry when the partner is probed again.
            delay = max(0.0, (self._blocked_until - now).total_seconds())
        elif result.retry_after is not None:
            # The partner said when (over its limits): come back then, with some jitter.
            delay = result.retry_after * (1 + _random.random() / 2)
        else:
            delay = backoff_delay(row.attempts, self.retry)
        _log.info(
            "delivery of %s to %s failed (%s); retry in %.1f s",
            row.message_id,
            row.receiver,
            error,
            delay,
        )
        await self.store.mark_failed_attempt(
            row.message_id,
            error=error,
            next_attempt_at=now + dt.timedelta(seconds=delay),
            final_state=None,
            events=[
                event(
                    EventKind.RETRY_SCHEDULED,
                    error=error[:500],
                    attempt=row.attempts + 1,
                    delay_ms=round(delay * 1000),
                )
            ],
        )
        return "retry"


def _failure(exc: grpc.aio.AioRpcError) -> _Result:
    reason, retry_after = error_details(exc)
    return _Result(
        code=exc.code(), reason=reason, message=exc.details() or "", retry_after=retry_after
    )


def _code(value: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN
