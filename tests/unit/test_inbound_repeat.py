"""A message id already in the inbox: an exact or re-sealed repeat is accepted (the
original receipt follows), the same id with other content is refused by name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from exchange_support import SUINING, TONGLIANG, signer_for

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.agreements import AgreementBook, load_agreements
from gateway.codec import encode_payload
from gateway.envelope import (
    Freshness,
    OpenedEnvelope,
    open_envelope,
    reseal_envelope,
    seal_envelope,
)
from gateway.errors import MessageIdReused
from gateway.node.inbound import InboundFacts, StoredCopy, judge_acceptance
from gateway.pki import PkiLayout, SigningCertificateVerifier, init_pki, load_certificate
from gateway.records import Record, RecordType, parse_record, record_key
from gateway.signing import Signer
from gateway.store.base import InboundRow

RecordData = Callable[..., dict[str, Any]]
SHIPPED = Path(__file__).resolve().parents[2] / "agreements"
MESSAGE_ID = "6f1c1a52-3b0e-4c57-9d4e-0b6a3f3c2a10"
AGREEMENT = "SUI-TONG-CP-2024"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_pki(tmp_path_factory.mktemp("pki"), [TONGLIANG, SUINING])


@pytest.fixture(scope="module")
def book() -> AgreementBook:
    return load_agreements(SHIPPED)


@pytest.fixture(scope="module")
def signer(pki: PkiLayout) -> Signer:
    return signer_for(pki, SUINING)


def _complaint(record_data: RecordData, **changes: Any) -> Record:
    data = record_data("consumer_complaint")
    # The complaint agreement lets no complainant id number cross.
    del data["complainant"]["id_number"]
    data.update(changes)
    return parse_record(data)


def _seal(
    signer: Signer, record: Record, created_at: dt.datetime, *, correlation_id: str = ""
) -> epb.Envelope:
    return seal_envelope(
        signer,
        message_id=MESSAGE_ID,
        receiver=TONGLIANG,
        record_type=RecordType(record.record_type),
        agreement_id=AGREEMENT,
        correlation_id=correlation_id,
        payload=encode_payload(record),
        created_at=created_at,
    )


def _open(pki: PkiLayout, envelope: epb.Envelope, now: dt.datetime) -> OpenedEnvelope:
    return open_envelope(
        envelope,
        receiver=TONGLIANG,
        tls_peer=SUINING,
        verifier=SigningCertificateVerifier([load_certificate(pki.ca_cert)]),
        now=now,
        freshness=Freshness(),
    )


def _held(envelope: epb.Envelope, opened: OpenedEnvelope) -> InboundFacts:
    row = InboundRow(
        sender=SUINING,
        message_id=MESSAGE_ID,
        record_type=opened.record_type.value,
        record_key=record_key(opened.record),
        correlation_id=opened.header.correlation_id,
        envelope=envelope.SerializeToString(),
        header_sha256=opened.header_sha256,
        payload_sha256=opened.payload_sha256,
        received_at=opened.created_at,
    )
    return InboundFacts(seen=True, answered=None, stored=StoredCopy.of(row))


def _accepted(
    pki: PkiLayout, signer: Signer, record: Record, now: dt.datetime
) -> tuple[OpenedEnvelope, InboundFacts]:
    """An envelope as opened, and the facts once it is in the inbox."""
    envelope = _seal(signer, record, now)
    opened = _open(pki, envelope, now)
    return opened, _held(envelope, opened)


def test_an_exact_repeat_is_accepted(
    pki: PkiLayout, book: AgreementBook, signer: Signer, record_data: RecordData
) -> None:
    now = dt.datetime.now(dt.UTC)
    opened, facts = _accepted(pki, signer, _complaint(record_data), now)
    judge_acceptance(opened, facts, book, receiver=TONGLIANG, now=now)


def test_a_resealed_repeat_is_accepted(
    pki: PkiLayout, book: AgreementBook, signer: Signer, record_data: RecordData
) -> None:
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    first = _seal(signer, _complaint(record_data), earlier)
    facts = _held(first, _open(pki, first, earlier))
    now = dt.datetime.now(dt.UTC)
    again = _open(pki, reseal_envelope(signer, first, now), now)
    assert facts.stored is not None
    assert again.header_sha256 != facts.stored.header_sha256
    judge_acceptance(again, facts, book, receiver=TONGLIANG, now=now)


def test_the_same_id_with_another_payload_is_refused_naming_both_digests(
    pki: PkiLayout, book: AgreementBook, signer: Signer, record_data: RecordData
) -> None:
    now = dt.datetime.now(dt.UTC)
    held, facts = _accepted(pki, signer, _complaint(record_data), now)
    other = _open(
        pki, _seal(signer, _complaint(record_data, subject="购买的冰箱无法制冷"), now), now
    )
    with pytest.raises(MessageIdReused) as caught:
        judge_acceptance(other, facts, book, receiver=TONGLIANG, now=now)
    message = caught.value.message
    assert caught.value.reason == "MESSAGE_ID_REUSED"
    for digest in (
        held.header_sha256,
        held.payload_sha256,
        other.header_sha256,
        other.payload_sha256,
    ):
        assert digest.hex() in message
    assert "payload" in message


def test_the_same_id_and_payload_under_another_correlation_is_refused(
    pki: PkiLayout, book: AgreementBook, signer: Signer, record_data: RecordData
) -> None:
    now = dt.datetime.now(dt.UTC)
    record = _complaint(record_data)
    held, facts = _accepted(pki, signer, record, now)
    other = _open(
        pki, _seal(signer, record, now, correlation_id="1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"), now
    )
    assert other.payload_sha256 == held.payload_sha256
    with pytest.raises(MessageIdReused, match="correlation_id differ"):
        judge_acceptance(other, facts, book, receiver=TONGLIANG, now=now)


def test_a_message_id_not_yet_held_is_not_compared(
    pki: PkiLayout, book: AgreementBook, signer: Signer, record_data: RecordData
) -> None:
    now = dt.datetime.now(dt.UTC)
    opened = _open(pki, _seal(signer, _complaint(record_data), now), now)
    fresh = InboundFacts(seen=False, answered=None)
    judge_acceptance(opened, fresh, book, receiver=TONGLIANG, now=now)
