"""Inbound acceptance after its facts are fetched: one pure decision, no store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.agreements import AgreementBook, AgreementRefused, load_agreements
from gateway.codec import encode_payload
from gateway.envelope import Freshness, OpenedEnvelope, open_envelope, seal_envelope
from gateway.errors import UnknownCorrelation
from gateway.node.inbound import InboundFacts, judge_acceptance
from gateway.pki import (
    PkiLayout,
    SigningCertificateVerifier,
    init_pki,
    key_id,
    load_certificate,
    load_private_key,
)
from gateway.records import Record, RecordType, parse_record
from gateway.signing import Ed25519Suite, Signer
from gateway.store.base import OutboundRow, OutboundState

RecordData = Callable[..., dict[str, Any]]
TONGLIANG, SUINING = "500151", "510900"
SHIPPED = Path(__file__).resolve().parents[2] / "agreements"
IN_FORCE = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)  # SUI-TONG-CP-2024: 2024 … 2028
ENDED = dt.datetime(2029, 6, 1, 8, 0, tzinfo=dt.UTC)
ORIGINAL_ID = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_pki(tmp_path_factory.mktemp("pki"), [TONGLIANG, SUINING])


@pytest.fixture(scope="module")
def book() -> AgreementBook:
    return load_agreements(SHIPPED)


def _opened(pki: PkiLayout, record: Record, *, correlation_id: str = "") -> OpenedEnvelope:
    paths = pki.bureau(SUINING)
    cert = load_certificate(paths.signing_cert)
    signer = Signer(
        bureau=SUINING,
        suite=Ed25519Suite(),
        private_key=load_private_key(paths.signing_key),
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(cert),
    )
    now = dt.datetime.now(dt.UTC)
    envelope = seal_envelope(
        signer,
        message_id="6f1c1a52-3b0e-4c57-9d4e-0b6a3f3c2a10",
        receiver=TONGLIANG,
        record_type=RecordType(record.record_type),
        agreement_id="SUI-TONG-CP-2024",
        correlation_id=correlation_id,
        payload=encode_payload(record),
        created_at=now,
    )
    return open_envelope(
        envelope,
        receiver=TONGLIANG,
        tls_peer=SUINING,
        verifier=SigningCertificateVerifier([load_certificate(pki.ca_cert)]),
        now=now,
        freshness=Freshness(),
    )


def _ours(message_id: str) -> OutboundRow:
    return OutboundRow(
        message_id=message_id,
        receiver=SUINING,
        record_type="consumer_complaint",
        record_key="TL12315-2024-050001",
        correlation_id="",
        envelope=b"",
        created_at=IN_FORCE,
        state=OutboundState.DELIVERED,
        attempts=1,
        next_attempt_at=IN_FORCE,
    )


NEW = InboundFacts(seen=False, answered=None)


def _complaint(record_data: RecordData) -> Record:
    data = record_data("consumer_complaint")
    # The complaint agreement lets no complainant id number cross.
    del data["complainant"]["id_number"]
    return parse_record(data)


def test_a_record_under_an_agreement_in_force_is_accepted(
    pki: PkiLayout, book: AgreementBook, record_data: RecordData
) -> None:
    opened = _opened(pki, _complaint(record_data))
    judge_acceptance(opened, NEW, book, receiver=TONGLIANG, now=IN_FORCE)


def test_a_field_the_agreement_bars_is_refused_even_in_force(
    pki: PkiLayout, book: AgreementBook, record_data: RecordData
) -> None:
    opened = _opened(pki, parse_record(record_data("consumer_complaint")))
    with pytest.raises(AgreementRefused) as caught:
        judge_acceptance(opened, NEW, book, receiver=TONGLIANG, now=IN_FORCE)
    assert caught.value.fields == ("complainant.id_number",)


def test_outside_the_agreement_a_new_record_is_refused(
    pki: PkiLayout, book: AgreementBook, record_data: RecordData
) -> None:
    opened = _opened(pki, _complaint(record_data))
    with pytest.raises(AgreementRefused) as caught:
        judge_acceptance(opened, NEW, book, receiver=TONGLIANG, now=ENDED)
    assert caught.value.reason == "AGREEMENT_NOT_IN_FORCE"


def test_outside_the_agreement_a_repeat_gets_its_original_receipt(
    pki: PkiLayout, book: AgreementBook, record_data: RecordData
) -> None:
    opened = _opened(pki, _complaint(record_data))
    seen = InboundFacts(seen=True, answered=None)
    judge_acceptance(opened, seen, book, receiver=TONGLIANG, now=ENDED)


@pytest.mark.parametrize(
    ("answered", "accepted"),
    [(None, False), (ORIGINAL_ID, True), ("00000000-0000-4000-8000-000000000000", False)],
    ids=["never sent", "the record it names", "another record"],
)
def test_feedback_must_answer_the_record_it_names(
    pki: PkiLayout,
    book: AgreementBook,
    record_data: RecordData,
    answered: str | None,
    accepted: bool,
) -> None:
    opened = _opened(pki, parse_record(record_data("feedback")), correlation_id=ORIGINAL_ID)
    facts = InboundFacts(seen=False, answered=None if answered is None else _ours(answered))
    if accepted:
        judge_acceptance(opened, facts, book, receiver=TONGLIANG, now=IN_FORCE)
        return
    with pytest.raises(UnknownCorrelation):
        judge_acceptance(opened, facts, book, receiver=TONGLIANG, now=IN_FORCE)
