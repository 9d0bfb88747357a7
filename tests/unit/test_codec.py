"""Canonical records ⇄ protobuf payloads: identity round trips, determinism, refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from chuanyu.exchange.v1 import records_pb2 as pb
from gateway.codec import (
    decode_payload,
    encode_payload,
    record_from_proto,
    record_to_proto,
    record_type_from_proto,
    record_type_to_proto,
)
from gateway.errors import EnvelopeMalformed, RecordInvalid
from gateway.records import Record, RecordType, parse_record

RecordData = Callable[..., dict[str, Any]]

# (kind, overrides): every type, with optional fields present and absent.
ROUND_TRIPS: list[tuple[str, dict[str, Any]]] = [
    ("business_registration", {}),
    ("business_registration", {"actual_business_address": None}),
    ("business_registration", {"legal_representative_id_type": "hk_macao_permit",
                               "legal_representative_id_number": "H12345678",
                               "registered_capital": "0.50",
                               "registered_capital_currency": "HKD",
                               "status": "moved_out"}),
    ("business_registration", {"name": "𠮷野家(铜梁)餐饮有限公司", "registered_capital": 7}),
    ("consumer_complaint", {}),
    ("consumer_complaint", {"complainant.id_number": None, "complainant.address": None,
                            "respondent.uscc": None}),
    ("consumer_complaint", {"registered_at": "2024-05-20T09:30:00.123456+08:00",
                            "channel": "transferred", "category": "service",
                            "complainant.name": "𠮷田𡈽", "facts": "表情😀与扩展汉字𪚥"}),
    ("enforcement_referral", {}),
    ("enforcement_referral", {"evidence": [], "items": []}),
    ("enforcement_referral", {"party.uscc": None, "party.id_number": "11010519491231002X"}),
    ("enforcement_referral", {"evidence": [{"name": "𠮷照片", "pages": 0, "sha256": "ff" * 32}],
                              "items": ["一", "𠮷"]}),
    ("feedback", {}),
    ("feedback", {"note": None}),
    ("feedback", {"original_type": "enforcement_referral", "status": "referral_objection",
                  "handled_at": "2024-05-22T00:00:00Z", "officer": "𠮷"}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "overrides"), ROUND_TRIPS)
def test_round_trip_is_identity(
    kind: str, overrides: dict[str, Any], record_data: RecordData
) -> None:
    record = parse_record(record_data(kind, overrides))
    assert record_from_proto(record_to_proto(record)) == record
    decoded = decode_payload(encode_payload(record))
    assert decoded == record
    assert type(decoded) is type(record)
    assert decoded.model_dump() == record.model_dump()


@pytest.mark.parametrize(("kind", "overrides"), ROUND_TRIPS)
def test_encoding_is_deterministic(
    kind: str, overrides: dict[str, Any], record_data: RecordData
) -> None:
    record = parse_record(record_data(kind, overrides))
    payload = encode_payload(record)
    assert encode_payload(record) == payload
    # The same record built from a dict with keys in another order encodes the same.
    reordered = dict(reversed(list(record_data(kind, overrides).items())))
    assert encode_payload(parse_record(reordered)) == payload
    # Re-encoding what was decoded gives the very bytes again.
    assert encode_payload(decode_payload(payload)) == payload


def test_instants_keep_their_moment_across_time_zones(record_data: RecordData) -> None:
    beijing = parse_record(record_data("feedback", {"handled_at": "2024-05-22T10:00:00+08:00"}))
    utc = parse_record(record_data("feedback", {"handled_at": "2024-05-22T02:00:00Z"}))
    assert encode_payload(beijing) == encode_payload(utc)
    message = record_to_proto(beijing)
    assert message.feedback.handled_at.seconds == int(
        dt.datetime(2024, 5, 22, 2, tzinfo=dt.UTC).timestamp()
    )


def test_wire_shapes(record_data: RecordData) -> None:
    message = record_to_proto(parse_record(record_data("business_registration")))
    assert message.WhichOneof("kind") == "business_registration"
    b = message.business_registration
    assert b.registered_capital.amount == "1000000.00"
    assert b.registered_capital.currency == "CNY"
    assert b.established_on == "2020-05-12"
    assert b.legal_representative_id_type == pb.ID_TYPE_RESIDENT_ID
    assert b.status == pb.REGISTRATION_STATUS_ACTIVE
    feedback = record_to_proto(parse_record(record_data("feedback"))).feedback
    assert feedback.original_type == pb.RECORD_TYPE_CONSUMER_COMPLAINT
    assert feedback.status == pb.FEEDBACK_STATUS_COMPLAINT_ACCEPTED
    complaint = record_to_proto(parse_record(record_data("consumer_complaint"))).consumer_complaint
    assert complaint.amount == "2999.00"
    assert complaint.channel == pb.CHANNEL_HOTLINE_12315


@pytest.mark.parametrize(
    ("kind", "field"),
    [("business_registration", "registered_capital"), ("consumer_complaint", "amount")],
)
def test_normalised_decimal_money_crosses_the_wire(
    kind: str, field: str, record_data: RecordData
) -> None:
    record = parse_record(record_data(kind, {field: Decimal("1000000.00").normalize()}))
    assert decode_payload(encode_payload(record)) == record


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        b"not a protobuf at all",
        b"\x0a\xff",  # length prefix runs past the end
        b"\x0a\x04\x0a\x02\xff\xfe",  # a string field that is not UTF-8
    ],
)
def test_garbage_is_malformed(payload: bytes) -> None:
    with pytest.raises(EnvelopeMalformed) as caught:
        decode_payload(payload)
    assert caught.value.reason == "ENVELOPE_MALFORMED"


@pytest.mark.parametrize("payload", [b"", pb.Record().SerializeToString(), b"\x28\x01"])
def test_empty_record_is_malformed(payload: bytes) -> None:
    with pytest.raises(EnvelopeMalformed, match="oneof 'kind' is empty"):
        decode_payload(payload)


def _bad_enum(record: Record, set_field: Callable[[pb.Record], None]) -> RecordInvalid:
    message = record_to_proto(record)
    set_field(message)
    with pytest.raises(RecordInvalid) as caught:
        decode_payload(message.SerializeToString())
    return caught.value


def _set(path: str, value: int) -> Callable[[pb.Record], None]:
    def apply(message: pb.Record) -> None:
        *parents, last = path.split(".")
        target: Any = message
        for part in parents:
            target = getattr(target, part)
        setattr(target, last, value)

    return apply


@pytest.mark.parametrize(
    ("kind", "path", "value", "field"),
    [
        ("business_registration", "business_registration.legal_representative_id_type", 7,
         "legal_representative_id_type"),
        ("business_registration", "business_registration.status", 0, "status"),
        ("business_registration", "business_registration.status", 1000, "status"),
        ("consumer_complaint", "consumer_complaint.channel", 42, "channel"),
        ("consumer_complaint", "consumer_complaint.category", 0, "category"),
        ("feedback", "feedback.status", 99, "status"),
        ("feedback", "feedback.original_type", 0, "original_type"),
        ("feedback", "feedback.original_type", 17, "original_type"),
        # A record type that exists but is not an original a feedback can answer.
        ("feedback", "feedback.original_type", pb.RECORD_TYPE_FEEDBACK, "original_type"),
    ],
)  # fmt: skip
def test_unknown_enum_number_is_refused_naming_the_field(
    kind: str, path: str, value: int, field: str, record_data: RecordData
) -> None:
    error = _bad_enum(parse_record(record_data(kind)), _set(path, value))
    assert [v.field for v in error.violations] == [field]
    assert error.violations[0].rule == "enum"
    assert str(error).startswith(f"{kind} payload is invalid")


def test_a_missing_timestamp_is_refused(record_data: RecordData) -> None:
    message = record_to_proto(parse_record(record_data("consumer_complaint")))
    message.consumer_complaint.ClearField("registered_at")
    with pytest.raises(RecordInvalid) as caught:
        decode_payload(message.SerializeToString())
    assert [v.field for v in caught.value.violations] == ["registered_at"]


def test_a_peer_record_is_validated(record_data: RecordData) -> None:
    message = record_to_proto(parse_record(record_data("business_registration")))
    message.business_registration.uscc = "91500151MA60K3C287"
    message.business_registration.registered_capital.amount = "12.345"
    with pytest.raises(RecordInvalid) as caught:
        decode_payload(message.SerializeToString())
    assert {(v.field, v.rule) for v in caught.value.violations} == {
        ("uscc", "uscc.check_char"),
        ("registered_capital", "decimal_max_places"),
    }


# --------------------------------------------------------------------------- record types


@pytest.mark.parametrize(
    ("record_type", "number"),
    [
        (RecordType.BUSINESS_REGISTRATION, pb.RECORD_TYPE_BUSINESS_REGISTRATION),
        (RecordType.CONSUMER_COMPLAINT, pb.RECORD_TYPE_CONSUMER_COMPLAINT),
        (RecordType.ENFORCEMENT_REFERRAL, pb.RECORD_TYPE_ENFORCEMENT_REFERRAL),
        (RecordType.FEEDBACK, pb.RECORD_TYPE_FEEDBACK),
    ],
)
def test_record_type_numbers(record_type: RecordType, number: int) -> None:
    assert record_type_to_proto(record_type) == number
    assert record_type_to_proto(record_type.value) == number
    assert record_type_from_proto(number) is record_type


@pytest.mark.parametrize(("number", "match"), [(0, "unspecified"), (5, "unknown"), (-1, "unknown")])
def test_unknown_record_type_number_is_malformed(number: int, match: str) -> None:
    with pytest.raises(EnvelopeMalformed, match=match):
        record_type_from_proto(number)
