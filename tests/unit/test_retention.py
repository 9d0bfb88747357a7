"""Retention: anonymised records stay valid, and purges are planned from agreement terms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.agreements import AgreementBook, canonical_fields, load_agreements
from gateway.clock import BEIJING
from gateway.codec import decode_payload, encode_payload
from gateway.records import (
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    IdType,
    Record,
    RecordType,
    parse_record,
)
from gateway.retention import (
    PLACEHOLDER,
    StoredItem,
    anonymise,
    is_anonymised,
    plan_purge,
    purge_due_at,
)

RecordData = Callable[..., dict[str, Any]]

SHIPPED = Path(__file__).resolve().parents[2] / "agreements"
TONGLIANG, SUINING = "500151", "510900"
MR, CP = "SUI-TONG-MR-2024", "SUI-TONG-CP-2024"
KINDS = ["business_registration", "consumer_complaint", "enforcement_referral", "feedback"]
# The PI values of the good records in conftest.py.
PI_VALUES = ("李四", "13800138000", "11010519491231002X", "王五", "赵六", "02345678901")


@pytest.fixture(scope="module")
def book() -> AgreementBook:
    return load_agreements(SHIPPED)


def _no_pi_left(record: Record) -> None:
    dumped = record.model_dump_json()
    for value in PI_VALUES:
        assert value not in dumped


@pytest.mark.parametrize("kind", KINDS)
def test_anonymise_leaves_a_valid_record_without_pi(kind: str, record_data: RecordData) -> None:
    original = parse_record(record_data(kind))
    anonymised = anonymise(original)
    _no_pi_left(anonymised)
    assert is_anonymised(anonymised) and not is_anonymised(original)
    # Still a canonical record the store can encode and decode (decoding validates).
    assert decode_payload(encode_payload(anonymised)) == anonymised
    assert anonymise(anonymised) == anonymised  # idempotent
    # Fields that are not PI are untouched.
    pi_roots = {
        path.split(".")[0]
        for path, spec in canonical_fields(RecordType(kind)).items()
        if spec.personal_info
    } | {"legal_representative_id_type"}
    for name in type(original).model_fields:
        if name not in pi_roots:
            assert getattr(anonymised, name) == getattr(original, name), name


def test_complaint_optional_pi_is_removed_required_pi_replaced(record_data: RecordData) -> None:
    anonymised = anonymise(parse_record(record_data("consumer_complaint")))
    assert isinstance(anonymised, ConsumerComplaint)
    assert anonymised.complainant.name == PLACEHOLDER
    assert anonymised.complainant.phone == PLACEHOLDER
    assert anonymised.complainant.id_number is None
    assert anonymised.complainant.address is None


def test_registration_id_number_becomes_other(record_data: RecordData) -> None:
    anonymised = anonymise(parse_record(record_data("business_registration")))
    assert isinstance(anonymised, BusinessRegistration)
    assert anonymised.legal_representative == PLACEHOLDER
    assert anonymised.legal_representative_id_number == PLACEHOLDER
    # A placeholder is not a GB 11643 number, so the type cannot stay resident_id.
    assert anonymised.legal_representative_id_type is IdType.OTHER


def test_referral_party_keeps_an_identifier(record_data: RecordData) -> None:
    with_both = anonymise(
        parse_record(record_data("enforcement_referral", {"party.id_number": PI_VALUES[2]}))
    )
    assert isinstance(with_both, EnforcementReferral)
    assert with_both.party.id_number is None and with_both.party.uscc
    assert with_both.contact_name == PLACEHOLDER and with_both.contact_phone == PLACEHOLDER
    # A natural person known only by an id number: removal would break "one of the two".
    person_only = anonymise(
        parse_record(
            record_data(
                "enforcement_referral", {"party.uscc": None, "party.id_number": PI_VALUES[2]}
            )
        )
    )
    assert isinstance(person_only, EnforcementReferral)
    assert person_only.party.id_number == PLACEHOLDER
    _no_pi_left(person_only)


def test_feedback_officer_replaced(record_data: RecordData) -> None:
    anonymised = anonymise(parse_record(record_data("feedback")))
    assert isinstance(anonymised, Feedback)
    assert anonymised.officer == PLACEHOLDER
    assert anonymised.note == "已受理,正在联系经营者"


# ---------------------------------------------------------------------------
# Planning


def _item(
    key: str,
    record: Record,
    stored_at: dt.datetime,
    *,
    agreement_id: str = CP,
    sender: str = TONGLIANG,
    receiver: str = SUINING,
) -> StoredItem:
    return StoredItem(
        key=key,
        sender=sender,
        receiver=receiver,
        agreement_id=agreement_id,
        record_type=record.record_type,
        stored_at=stored_at,
        record=record,
    )


def test_purge_due_at_uses_the_agreement_terms(book: AgreementBook) -> None:
    stored = dt.datetime(2024, 6, 1, 9, 0, tzinfo=BEIJING)
    due = purge_due_at(
        book,
        agreement_id=CP,
        sender=TONGLIANG,
        receiver=SUINING,
        record_type=RecordType.CONSUMER_COMPLAINT,
        stored_at=stored,
    )
    assert due == stored + dt.timedelta(days=1095)
    referral_due = purge_due_at(
        book,
        agreement_id=MR,
        sender=SUINING,
        receiver=TONGLIANG,
        record_type=RecordType.ENFORCEMENT_REFERRAL,
        stored_at=stored,
    )
    assert referral_due == stored + dt.timedelta(days=1825)
    assert (
        purge_due_at(
            book,
            agreement_id=MR,
            sender=TONGLIANG,
            receiver=SUINING,
            record_type=RecordType.CONSUMER_COMPLAINT,
            stored_at=stored,
        )
        is None
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        purge_due_at(
            book,
            agreement_id=CP,
            sender=TONGLIANG,
            receiver=SUINING,
            record_type=RecordType.CONSUMER_COMPLAINT,
            stored_at=dt.datetime(2024, 6, 1),
        )


def test_plan_purge(book: AgreementBook, record_data: RecordData) -> None:
    stored = dt.datetime(2024, 6, 1, 9, 0, tzinfo=BEIJING)
    complaint = parse_record(record_data("consumer_complaint"))
    referral = parse_record(record_data("enforcement_referral"))
    feedback = parse_record(record_data("feedback"))
    items = [
        _item("in/complaint", complaint, stored),
        _item("in/complaint-later", complaint, stored + dt.timedelta(days=1)),
        _item("in/complaint-purged", anonymise(complaint), stored),
        _item(
            "out/feedback",
            feedback,
            stored - dt.timedelta(days=3),
            sender=SUINING,
            receiver=TONGLIANG,
        ),
        _item("in/referral", referral, stored, agreement_id=MR),
        _item("in/lost-agreement", complaint, stored, agreement_id="SUI-TONG-OLD-2019"),
        _item("in/no-terms", complaint, stored, agreement_id=MR),
    ]
    due = stored + dt.timedelta(days=1095)

    just_before = plan_purge(items, book, due - dt.timedelta(seconds=1))
    assert [a.key for a in just_before.actions] == ["out/feedback"]  # stored 3 days earlier
    plan = plan_purge(items, book, due)
    # Oldest first; the later complaint, the purged one and the referral (five years) wait.
    assert [a.key for a in plan.actions] == ["out/feedback", "in/complaint"]
    action = plan.actions[1]
    assert action.agreement_id == CP and action.retention_days == 1095 and action.due_at == due
    assert action.anonymised == anonymise(complaint)
    assert action.purged_paths == (
        "complainant.name",
        "complainant.phone",
        "complainant.id_number",
        "complainant.address",
    )
    assert plan.actions[0].purged_paths == ("officer",)
    assert {(u.key, u.agreement_id) for u in plan.unresolved} == {
        ("in/lost-agreement", "SUI-TONG-OLD-2019"),
        ("in/no-terms", MR),
    }
    reasons = {u.key: u.reason for u in plan.unresolved}
    assert "not in the agreement book" in reasons["in/lost-agreement"]
    assert "no terms for consumer_complaint" in reasons["in/no-terms"]

    later = plan_purge(items, book, stored + dt.timedelta(days=1825))
    assert [a.key for a in later.actions] == [
        "out/feedback",
        "in/complaint",
        "in/complaint-later",
        "in/referral",
    ]
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_purge(items, book, dt.datetime(2030, 1, 1))


def test_plan_purge_after_the_agreement_expired(
    book: AgreementBook, record_data: RecordData
) -> None:
    """Retention is still known for an agreement no longer in force."""
    complaint = parse_record(record_data("consumer_complaint"))
    stored = dt.datetime(2028, 12, 1, tzinfo=BEIJING)
    plan = plan_purge(
        [_item("k", complaint, stored)], book, dt.datetime(2032, 1, 1, tzinfo=BEIJING)
    )
    assert [a.key for a in plan.actions] == ["k"]
