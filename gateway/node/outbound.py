"""Records leaving this bureau: routed, sealed and committed to the outbox.

:class:`OutboundService` seals a record from the local system into a signed
envelope and commits it to the outbox before it returns; it also puts dead
letters back in the queue (a transition of :mod:`gateway.transfer`). One
:class:`~gateway.node.dispatcher.OutboxDispatcher` per partner drains the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.agreements import AgreementBook, AgreementRefused
from gateway.clock import utc_now
from gateway.codec import encode_payload
from gateway.config import PartnerConfig, RetrySettings
from gateway.envelope import new_message_id, parse_envelope, parse_header, seal_envelope
from gateway.errors import GatewayError, IllegalTransition, UnknownCorrelation, UnknownPeer
from gateway.node.dispatcher import transfer_of
from gateway.node.hooks import HookChain, LocalSendHandled
from gateway.records import Feedback, OriginalType, Record, RecordType, record_key
from gateway.signing import Signer, sha256
from gateway.store.base import OutboundRow, OutboundState, Store
from gateway.transfer import Redrive, decide
from gateway.translog import Direction, EventKind, LogEvent

__all__ = [
    "BatchResult",
    "OutboundService",
    "Refusal",
    "Route",
    "SendOutcome",
    "Submission",
]

_log = logging.getLogger("chuanyu.outbound")
# Records queued concurrently when the store cannot take a batch in one transaction.


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
    duplicate: bool  # its idempotency key was queued before: nothing new was queued


@dataclass(frozen=True, slots=True)
class Submission:
    """One record a local system hands over, with how to route it and its key."""

    record: Record
    idempotency_key: str = ""
    receiver: str = ""
    agreement_id: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the record at ``position`` of a batch cannot be sent."""

    position: int
    record: Record
    error: GatewayError

    def __str__(self) -> str:
        what = f"{self.record.record_type.value} {record_key(self.record)}"
        return f"record {self.position + 1} ({what}): {self.error.message} [{self.error.reason}]"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A batch queued whole (``outcomes``, in order) or refused whole (``refusals``)."""

    outcomes: tuple[SendOutcome, ...] = ()
    refusals: tuple[Refusal, ...] = ()

    @property
    def queued(self) -> int:
        return sum(not o.duplicate for o in self.outcomes)

    @property
    def already_queued(self) -> int:
        return sum(o.duplicate for o in self.outcomes)


@dataclass(slots=True)
class OutboundService:
    """Seal records from the local system and commit them to the outbox."""

    bureau: str
    partners: Sequence[PartnerConfig]
    signer: Signer
    store: Store
    wake: Callable[[str], None]
    agreements: AgreementBook
    retry: RetrySettings
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
        would."""
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
        now = utc_now()
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

    async def check(self, items: Sequence[Submission]) -> tuple[list[Route], list[Refusal]]:
        """Route every item without queueing or logging anything: the routes, or every
        refusal (a batch with one refused record is refused whole)."""
        routes: list[Route] = []
        refusals: list[Refusal] = []
        for position, item in enumerate(items):
            try:
                routes.append(await self.resolve(item.record, item.receiver, item.agreement_id))
            except GatewayError as exc:
                refusals.append(Refusal(position, item.record, exc))
        return routes, refusals

    async def submit_batch(self, items: Sequence[Submission]) -> BatchResult:
        """Check the whole batch, then queue it in one transaction, or nothing of it."""
        routes, refusals = await self.check(items)
        if refusals:
            for refusal in refusals:
                await self._refused(refusal.record, refusal.error, receiver="")
            return BatchResult(refusals=tuple(refusals))
        return BatchResult(outcomes=tuple(await self.queue(items, routes)))

    async def queue(
        self, items: Sequence[Submission], routes: Sequence[Route]
    ) -> list[SendOutcome]:
        """Seal and queue checked items (``routes`` from :meth:`check`) together."""
        sealed = [
            self._seal(route, item.idempotency_key)
            for item, route in zip(items, routes, strict=True)
        ]
        results = await self.store.enqueue_outbound_batch(sealed)
        for receiver in {row.receiver for row, created in results if created}:
            self.wake(receiver)
        for row, created in results:
            self.hooks.local_send_handled(
                LocalSendHandled(row.record_type, "queued" if created else "duplicate")
            )
        return [SendOutcome(row, duplicate=not created) for row, created in results]

    async def send(
        self,
        record: Record,
        *,
        receiver: str = "",
        agreement_id: str = "",
        idempotency_key: str = "",
    ) -> SendOutcome:
        """Route, seal and commit one record to the outbox."""
        try:
            route = await self.resolve(record, receiver, agreement_id)
        except GatewayError as exc:
            await self._refused(record, exc, receiver=receiver)
            raise
        (outcome,) = await self.queue(
            [Submission(record, idempotency_key, receiver, agreement_id)], [route]
        )
        return outcome

    async def _refused(self, record: Record, exc: GatewayError, *, receiver: str) -> None:
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

    def _seal(self, route: Route, idempotency_key: str) -> tuple[OutboundRow, list[LogEvent]]:
        partner, correlation_id = route.partner, route.correlation_id
        record, agreement = route.record, route.agreement_id
        now = utc_now()
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
        return row, [event]

    async def redrive(self, message_id: str, *, operator: str) -> bool:
        """Put a dead-lettered message back in its partner's queue, due at once, with its
        age clock restarted (at most once delivered: the partner de-duplicates on the
        unchanged message id). False if it is not a dead letter."""
        row = await self.store.get_outbound(message_id)
        if row is None:
            return False
        try:
            decision = decide(transfer_of(row), Redrive(operator), now=utc_now(), retry=self.retry)
        except IllegalTransition:
            return False
        if not await self.store.redrive(message_id, decision.events):
            return False
        _log.info("re-driven %s to %s by %s", message_id, row.receiver, operator)
        self.wake(row.receiver)
        return True
