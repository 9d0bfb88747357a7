"""Accepting envelopes from partner nodes: check, commit to the inbox, then sign a receipt.

The order is the promise: an envelope is durable in the inbox before its
receipt is signed, and a repeated (sender, message id) gets the original
receipt back without a second inbox entry. A repeat is the same payload under the
same sender, receiver, record type, agreement and correlation: the header digest may
differ, because a sender re-seals an old envelope with a fresh created-at.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.agreements import AgreementBook, AgreementRefused
from gateway.clock import utc_now
from gateway.codec import record_type_from_proto
from gateway.envelope import (
    Freshness,
    OpenedEnvelope,
    issue_receipt,
    open_envelope,
    parse_envelope,
    parse_header,
)
from gateway.errors import (
    EnvelopeMalformed,
    GatewayError,
    MessageIdReused,
    PeerError,
    PeerNotPartner,
    UnknownCorrelation,
)
from gateway.node.hooks import HookChain, InboundHandled
from gateway.node.limits import RejectionLog
from gateway.pki import SigningCertificateVerifier
from gateway.records import Feedback, record_key
from gateway.signing import Signer
from gateway.store.base import InboundRow, OutboundRow, Store
from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["InboundFacts", "InboundService", "StoredCopy", "judge_acceptance"]

_log = logging.getLogger("chuanyu.inbound")


# Header fields a re-sealed envelope keeps: only created-at, key id and suite may change.
_FIXED_HEADER_FIELDS = ("sender", "receiver", "record_type", "agreement_id", "correlation_id")


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """The inbox entry already held under an envelope's (sender, message id)."""

    header: epb.EnvelopeHeader
    header_sha256: bytes
    payload_sha256: bytes

    @classmethod
    def of(cls, row: InboundRow) -> StoredCopy:
        return cls(
            header=parse_header(parse_envelope(row.envelope).header),
            header_sha256=row.header_sha256,
            payload_sha256=row.payload_sha256,
        )


@dataclass(frozen=True, slots=True)
class InboundFacts:
    """What the store says about an opened envelope."""

    seen: bool  # (sender, message id) is already in the inbox
    answered: OutboundRow | None  # feedback only: the record of ours it names
    stored: StoredCopy | None = None  # the inbox entry behind ``seen``


def _check_repeat(opened: OpenedEnvelope, stored: StoredCopy) -> None:
    """Refuse a known message id that carries other content than the one accepted."""
    if opened.header_sha256 == stored.header_sha256:
        return
    changed = [
        name
        for name in _FIXED_HEADER_FIELDS
        if getattr(opened.header, name) != getattr(stored.header, name)
    ]
    if opened.payload_sha256 != stored.payload_sha256:
        changed.insert(0, "payload")
    if changed:
        raise MessageIdReused(
            f"message id {opened.header.message_id} from bureau {opened.header.sender} was "
            f"accepted with header sha256 {stored.header_sha256.hex()} and payload sha256 "
            f"{stored.payload_sha256.hex()}; this envelope has header sha256 "
            f"{opened.header_sha256.hex()} and payload sha256 {opened.payload_sha256.hex()} "
            f"({', '.join(changed)} differ): a new message needs a new message id"
        )


def judge_acceptance(
    opened: OpenedEnvelope,
    facts: InboundFacts,
    agreements: AgreementBook,
    *,
    receiver: str,
    now: dt.datetime,
) -> None:
    """Accept ``opened`` or raise the :class:`PeerError` that refuses it. Pure."""
    header = opened.header
    if facts.stored is not None:
        _check_repeat(opened, facts.stored)
    try:
        agreements.check_inbound(
            header.agreement_id,
            header.sender,
            receiver,
            opened.record_type,
            opened.record,
            now=now,
            suite=header.suite,
        )
    except AgreementRefused:
        # Accepted while the agreement was in force (the sender lost our receipt and
        # asks again): it gets the original receipt, as any repeat does.
        if not facts.seen:
            raise
    record = opened.record
    if isinstance(record, Feedback) and (
        facts.answered is None or facts.answered.message_id != header.correlation_id
    ):
        raise UnknownCorrelation(
            f"feedback answers {record.original_type.value} {record.original_number} "
            f"(correlation id {header.correlation_id or '(empty)'}), which this node "
            f"never sent to bureau {header.sender}"
        )


@dataclass(slots=True)
class InboundService:
    """Everything a node does with an envelope a partner submits."""

    bureau: str
    partners: frozenset[str]
    signer: Signer
    verifier: SigningCertificateVerifier
    store: Store
    freshness: Freshness
    agreements: AgreementBook
    # Refusals are counted per (peer, reason) and interval, so a flood of bad envelopes
    # from a partner cannot grow the transfer log at the sender's rate.
    rejections: RejectionLog
    hooks: HookChain = field(default_factory=HookChain)
    _receipt_writes: set[asyncio.Task[None]] = field(default_factory=set)

    async def accept(self, envelope: epb.Envelope, *, tls_peer: str | None) -> epb.Receipt:
        """Return the signed receipt, or raise the :class:`PeerError` that refused it."""
        started = time.perf_counter()
        record_type, outcome = "", "error"
        try:
            receipt, record_type, outcome = await self._accept(envelope, tls_peer)
        except GatewayError as exc:
            outcome = exc.reason
            raise
        finally:
            self.hooks.inbound_handled(
                InboundHandled(
                    peer=tls_peer or "",
                    record_type=record_type,
                    outcome=outcome,
                    seconds=time.perf_counter() - started,
                )
            )
        return receipt

    async def _accept(
        self, envelope: epb.Envelope, tls_peer: str | None
    ) -> tuple[epb.Receipt, str, str]:
        now = utc_now()
        try:
            if tls_peer is None or tls_peer not in self.partners:
                raise PeerNotPartner(
                    f"TLS peer {tls_peer or '(no bureau in certificate)'} is not a partner of "
                    f"bureau {self.bureau}"
                )
            opened = open_envelope(
                envelope,
                receiver=self.bureau,
                tls_peer=tls_peer,
                verifier=self.verifier,
                now=now,
                freshness=self.freshness,
            )
            facts = await self._facts(opened)
            judge_acceptance(opened, facts, self.agreements, receiver=self.bureau, now=now)
        except PeerError as exc:
            await self._log_rejection(envelope, tls_peer, exc)
            raise
        receipt, created = await self._commit_and_sign(envelope, opened, now)
        return receipt, opened.record_type.value, "accepted" if created else "duplicate"

    async def _facts(self, opened: OpenedEnvelope) -> InboundFacts:
        """What the store knows that the decision needs, fetched before it is made."""
        header, record = opened.header, opened.record
        held = await self.store.get_inbound(header.sender, header.message_id)
        answered: OutboundRow | None = None
        if isinstance(record, Feedback):
            answered = await self.store.find_outbound_by_key(
                record.original_type.value, record.original_number, header.sender
            )
        return InboundFacts(
            seen=held is not None,
            answered=answered,
            stored=None if held is None else StoredCopy.of(held),
        )

    async def _commit_and_sign(
        self, envelope: epb.Envelope, opened: OpenedEnvelope, now: dt.datetime
    ) -> tuple[epb.Receipt, bool]:
        header = opened.header

        def event(kind: EventKind, **detail: str) -> LogEvent:
            return LogEvent(
                kind,
                Direction.INBOUND,
                peer=header.sender,
                message_id=header.message_id,
                record_type=opened.record_type.value,
                detail=detail,
            )

        row = InboundRow(
            sender=header.sender,
            message_id=header.message_id,
            record_type=opened.record_type.value,
            record_key=record_key(opened.record),
            correlation_id=header.correlation_id,
            envelope=envelope.SerializeToString(),
            header_sha256=opened.header_sha256,
            payload_sha256=opened.payload_sha256,
            received_at=now,
        )
        received = event(
            EventKind.RECEIVED,
            header_sha256=opened.header_sha256.hex(),
            payload_sha256=opened.payload_sha256.hex(),
            agreement=header.agreement_id,
            key_id=header.key_id,
            correlation_id=header.correlation_id,
        )
        duplicate = event(EventKind.DUPLICATE)
        acceptance = await self.store.accept_inbound(row, [received], [duplicate])
        if acceptance.row.receipt:
            receipt = epb.Receipt()
            receipt.ParseFromString(acceptance.row.receipt)
            return receipt, acceptance.created
        # Durable in the inbox: now, and only now, sign. Ed25519 is deterministic and the
        # receipt is made of the stored row, so storing it can run behind the answer: a
        # duplicate arriving before (or after a crash that lost) the store gets the same bytes.
        stored = acceptance.row
        receipt = issue_receipt(
            self.signer,
            message_id=stored.message_id,
            sender=stored.sender,
            header_sha256=stored.header_sha256,
            payload_sha256=stored.payload_sha256,
            received_at=stored.received_at,
        )
        task = asyncio.create_task(
            self.store.store_issued_receipt(
                stored.sender,
                stored.message_id,
                receipt.SerializeToString(),
                [event(EventKind.RECEIPT_ISSUED)],
            )
        )
        self._receipt_writes.add(task)
        task.add_done_callback(self._receipt_stored)
        return receipt, acceptance.created

    def _receipt_stored(self, task: asyncio.Task[None]) -> None:
        self._receipt_writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Not fatal: the receipt is re-issued, identical, on the sender's next try.
            _log.error("could not store an issued receipt: %s", task.exception())

    async def drain(self) -> None:
        """Wait for receipts still being stored (at shutdown, before the store closes)."""
        if self._receipt_writes:
            await asyncio.gather(*self._receipt_writes, return_exceptions=True)

    async def _log_rejection(
        self, envelope: epb.Envelope, tls_peer: str | None, exc: PeerError
    ) -> None:
        message_id, record_type = "", ""
        try:
            header = parse_header(envelope.header)
            message_id = header.message_id[:64]
            record_type = record_type_from_proto(header.record_type).value
        except EnvelopeMalformed:
            pass  # the rejection itself says the header did not parse
        await self.rejections.refused(
            tls_peer or "", exc, message_id=message_id, record_type=record_type
        )
