"""Canonical records: validation rules, field violations, PI masking, JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.errors import FieldViolation, RecordInvalid
from gateway.privacy import PIKind, mask_id_number, mask_name, mask_phone
from gateway.records import (
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    IdType,
    RecordType,
    parse_record,
    parse_records_json,
    personal_info_paths,
    record_key,
    record_to_json,
    records_to_json,
)

# The PI values of the good records in conftest.py.
NAME = "李四"
PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"

RecordData = Callable[..., dict[str, Any]]
KINDS = ["business_registration", "consumer_complaint", "enforcement_referral", "feedback"]
MODELS: dict[str, type[BaseModel]] = {
    "business_registration": BusinessRegistration,
    "consumer_complaint": ConsumerComplaint,
    "enforcement_referral": EnforcementReferral,
    "feedback": Feedback,
}


def violations(data: Any) -> tuple[FieldViolation, ...]:
    with pytest.raises(RecordInvalid) as caught:
        parse_record(data)
    return caught.value.violations


# --------------------------------------------------------------------------- good records


@pytest.mark.parametrize("kind", KINDS)
def test_every_record_type_validates_from_a_good_dict(kind: str, record_data: RecordData) -> None:
    record = parse_record(record_data(kind))
    assert type(record) is MODELS[kind]
    assert record.record_type is RecordType(kind)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("business_registration", "91500151MA60K3C286"),
        ("consumer_complaint", "TL12315-2024-050001"),
        ("enforcement_referral", "铜市监移〔2024〕3号"),
        ("feedback", "TL12315-2024-050001"),
    ],
)
def test_record_key_is_the_origin_identifier(kind: str, key: str, record_data: RecordData) -> None:
    assert record_key(parse_record(record_data(kind))) == key


def test_parsed_values_have_canonical_types(record_data: RecordData) -> None:
    business = parse_record(record_data("business_registration"))
    assert isinstance(business, BusinessRegistration)
    assert business.registered_capital == Decimal("1000000.00")
    assert isinstance(business.registered_capital, Decimal)
    assert business.legal_representative_id_type is IdType.RESIDENT_ID
    referral = parse_record(record_data("enforcement_referral", {"evidence.0.sha256": "AB" * 32}))
    assert isinstance(referral, EnforcementReferral)
    assert referral.evidence[0].sha256 == "ab" * 32  # normalised to lower case


@pytest.mark.parametrize(
    ("kind", "overrides"),
    [
        ("business_registration", {"legal_representative_id_type": "passport",
                                   "legal_representative_id_number": "E12345678"}),
        ("business_registration", {"actual_business_address": None}),
        ("business_registration", {"registered_capital": 0}),
        ("business_registration", {"registered_capital": Decimal("12.5")}),
        ("business_registration", {"registered_capital": "12"}),
        ("consumer_complaint", {"complainant.id_number": None, "complainant.address": None}),
        ("consumer_complaint", {"respondent.uscc": None}),
        # 01:00 Beijing on the purchase day is 17:00 UTC the day before: same Beijing date.
        ("consumer_complaint", {"registered_at": "2024-04-30T17:00:00+00:00",
                                "purchased_on": "2024-05-01"}),
        ("enforcement_referral", {"party.uscc": None, "party.id_number": ID_NUMBER}),
        ("enforcement_referral", {"evidence": [], "items": []}),
        ("enforcement_referral", {"party.name": "𠮷野家餐饮店"}),
        ("feedback", {"original_type": "enforcement_referral", "status": "referral_filed"}),
        ("feedback", {"status": "complaint_mediation_terminated", "note": None}),
    ],
)  # fmt: skip
def test_variants_that_are_still_valid(
    kind: str, overrides: dict[str, Any], record_data: RecordData
) -> None:
    parse_record(record_data(kind, overrides))


def test_a_model_instance_is_revalidated(record_data: RecordData) -> None:
    record = parse_record(record_data("consumer_complaint"))
    assert parse_record(record) == record


# --------------------------------------------------------------------------- violations

VIOLATIONS: list[tuple[str, dict[str, Any], str, str]] = [
    # money
    ("business_registration", {"registered_capital": 1000000.0}, "registered_capital",
     "money.float"),
    ("business_registration", {"registered_capital": "1000000.001"}, "registered_capital",
     "decimal_max_places"),
    ("business_registration", {"registered_capital": "-1.00"}, "registered_capital",
     "money.format"),
    ("business_registration", {"registered_capital": Decimal("-0.01")}, "registered_capital",
     "greater_than_equal"),
    ("business_registration", {"registered_capital": "1,000.00"}, "registered_capital",
     "money.format"),
    ("business_registration", {"registered_capital": "1e6"}, "registered_capital",
     "money.format"),
    ("consumer_complaint", {"amount": 2999.0}, "amount", "money.float"),
    ("consumer_complaint", {"amount": "2999.999"}, "amount", "decimal_max_places"),
    ("consumer_complaint", {"amount": "-5"}, "amount", "money.format"),
    ("business_registration", {"registered_capital_currency": "cny"},
     "registered_capital_currency", "string_pattern_mismatch"),
    # identifiers
    ("business_registration", {"uscc": "91500151MA60K3C287"}, "uscc", "uscc.check_char"),
    ("business_registration", {"uscc": "91500151MA60K3C2"}, "uscc", "uscc.length"),
    ("business_registration", {"address_division": "990000"}, "address_division",
     "division.province"),
    ("business_registration", {"legal_representative_id_number": "110105194912310021"},
     "legal_representative_id_number", "resident_id.check_char"),
    ("business_registration", {"legal_representative_id_number": "11010519491231"},
     "legal_representative_id_number", "resident_id.length"),
    ("consumer_complaint", {"respondent.uscc": "92510903MA6AB7Q52E"}, "respondent.uscc",
     "uscc.check_char"),
    ("consumer_complaint", {"respondent.division": "51090"}, "respondent.division",
     "division.format"),
    ("enforcement_referral", {"party.uscc": "93510981MA6XN3P0OH"}, "party.uscc",
     "uscc.alphabet"),
    # cross-field rules
    ("consumer_complaint", {"purchased_on": "2024-05-21"}, "purchased_on",
     "complaint.purchase_after_registration"),
    # 23:30 UTC on 20 May is already 21 May in Beijing: purchase that day is fine, 22nd not.
    ("consumer_complaint", {"registered_at": "2024-05-20T23:30:00Z",
                            "purchased_on": "2024-05-22"}, "purchased_on",
     "complaint.purchase_after_registration"),
    ("feedback", {"status": "referral_filed"}, "status", "feedback.status_type"),
    ("feedback", {"original_type": "enforcement_referral", "status": "complaint_closed"},
     "status", "feedback.status_type"),
    ("enforcement_referral", {"party": {"name": "某个体户", "address": "射洪市"}}, "party",
     "party.identifier"),
    ("enforcement_referral", {"party.uscc": None}, "party", "party.identifier"),
    ("enforcement_referral", {"party.uscc": ""}, "party.uscc", "uscc.length"),
    # evidence
    ("enforcement_referral", {"evidence.1.sha256": "ab" * 31}, "evidence.1.sha256",
     "sha256.format"),
    ("enforcement_referral", {"evidence.0.sha256": "zz" * 32}, "evidence.0.sha256",
     "sha256.format"),
    ("enforcement_referral", {"evidence.0.pages": -1}, "evidence.0.pages",
     "greater_than_equal"),
    ("enforcement_referral", {"evidence.0.pages": "3"}, "evidence.0.pages", "int_type"),
    # text
    ("business_registration", {"name": "   "}, "name", "text.blank"),
    ("business_registration", {"business_scope": ""}, "business_scope", "text.blank"),
    ("business_registration", {"actual_business_address": " \t"}, "actual_business_address",
     "text.blank"),
    ("consumer_complaint", {"respondent.name": "\u3000"}, "respondent.name", "text.blank"),
    ("enforcement_referral", {"items": ["抽检报告", " "]}, "items.1", "text.blank"),
    ("consumer_complaint", {"facts": "空调\x00无法制冷"}, "facts", "text.nul"),
    ("feedback", {"original_number": "TL\x00001"}, "original_number", "text.nul"),
    ("business_registration", {"name": "公" * 201}, "name", "too_long"),
    # types and shape
    ("consumer_complaint", {"registered_at": "2024-05-20T09:30:00"}, "registered_at",
     "timezone_aware"),
    ("feedback", {"handled_at": "2024-05-22T10:00:00"}, "handled_at", "timezone_aware"),
    ("consumer_complaint", {"channel": "wechat"}, "channel", "enum"),
    ("business_registration", {"established_on": "2020-02-30"}, "established_on",
     "date_from_datetime_parsing"),
    ("business_registration", {"nickname": "x"}, "nickname", "extra_forbidden"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "overrides", "field", "rule"),
    VIOLATIONS,
    ids=[f"{v[0]}-{v[3]}-{v[2]}" for v in VIOLATIONS],
)
def test_each_rule_yields_its_violation(
    kind: str, overrides: dict[str, Any], field: str, rule: str, record_data: RecordData
) -> None:
    found = violations(record_data(kind, overrides))
    assert [(v.field, v.rule) for v in found] == [(field, rule)]
    assert found[0].message


def test_missing_field_is_named(record_data: RecordData) -> None:
    data = record_data("business_registration")
    del data["uscc"]
    assert [(v.field, v.rule) for v in violations(data)] == [("uscc", "missing")]


@pytest.mark.parametrize(
    ("data", "rule"),
    [({"uscc": "91500151MA60K3C286"}, "union_tag_not_found"),
     ({"record_type": "invoice"}, "union_tag_invalid")],
)  # fmt: skip
def test_unknown_record_type(data: dict[str, Any], rule: str) -> None:
    assert [(v.field, v.rule) for v in violations(data)] == [("(record)", rule)]


def test_one_violation_per_broken_rule_and_a_bounded_summary(record_data: RecordData) -> None:
    data = record_data(
        "consumer_complaint",
        {
            "amount": 1.5,
            "subject": " ",
            "facts": "\x00",
            "request": "",
            "respondent.division": "99",
            "respondent.uscc": "X",
            "channel": "fax",
        },
    )
    with pytest.raises(RecordInvalid) as caught:
        parse_record(data, context="complaint TL-1")
    fields = {v.field for v in caught.value.violations}
    assert fields == {
        "amount",
        "subject",
        "facts",
        "request",
        "respondent.division",
        "respondent.uscc",
        "channel",
    }
    message = str(caught.value)
    assert message.startswith("complaint TL-1 is invalid: ")
    assert message.endswith("; and 2 more")
    assert caught.value.reason == "RECORD_INVALID"


# --------------------------------------------------------------------------- personal information

# (kind, overrides, raw value that must never be shown, masked form that must be shown)
PI_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("business_registration", {"legal_representative_id_number": "110105194912310021"},
     "110105194912310021", "110105********0021"),
    ("business_registration", {"legal_representative": NAME + "\x00"}, NAME, "李**"),
    # A NUL shows as the visible escape \x00: a value can never forge a log line.
    ("consumer_complaint", {"complainant.name": "\x00" + NAME}, NAME, "\\x00**"),
    ("consumer_complaint", {"complainant.phone": PHONE + "\x00"}, PHONE, "138*****000\\x00"),
    ("consumer_complaint", {"complainant.name": NAME * 5000}, NAME * 3, "李" + "*" * 56),
    ("enforcement_referral", {"contact_name": "王五\x00"}, "王五", "王**"),
    ("enforcement_referral", {"contact_phone": " " * 11}, " " * 11, "*" * 11),
    ("feedback", {"officer": "赵六\x00"}, "赵六", "赵**"),
]  # fmt: skip


def assert_masked(exc: RecordInvalid, raw: str, masked: str) -> None:
    assert raw not in str(exc)
    assert raw not in exc.message
    for violation in exc.violations:
        assert raw not in violation.message
        assert raw not in str(violation)
    assert any(masked in v.message for v in exc.violations), exc.violations


@pytest.mark.parametrize(("kind", "overrides", "raw", "masked"), PI_CASES)
def test_pi_is_masked_in_violations(
    kind: str, overrides: dict[str, Any], raw: str, masked: str, record_data: RecordData
) -> None:
    with pytest.raises(RecordInvalid) as caught:
        parse_record(record_data(kind, overrides))
    assert_masked(caught.value, raw, masked)


def test_masking_examples() -> None:
    assert mask_name(NAME) == "李*"
    assert mask_phone(PHONE) == "138****8000"
    assert mask_id_number(ID_NUMBER) == "110105********002X"


def test_a_bad_id_number_of_another_document_type_is_not_checked_nor_shown(
    record_data: RecordData,
) -> None:
    data = record_data(
        "business_registration",
        {"legal_representative_id_type": "passport", "legal_representative_id_number": "\x00"},
    )
    found = violations(data)
    assert [(v.field, v.rule) for v in found] == [("legal_representative_id_number", "text.nul")]


def test_pi_is_masked_in_violations_from_json_files(record_data: RecordData) -> None:
    bad = record_data(
        "business_registration", {"legal_representative_id_number": "110105194912310021"}
    )
    text = json.dumps([record_data("feedback"), bad])
    with pytest.raises(RecordInvalid) as caught:
        parse_records_json(text, context="tongliang.json")
    assert [v.field for v in caught.value.violations] == ["1.legal_representative_id_number"]
    assert_masked(caught.value, "110105194912310021", "110105********0021")


@pytest.mark.parametrize(
    ("kind", "path", "value", "masked"),
    [
        ("consumer_complaint", "complainant.phone", 13800138000, "138****8000"),
        ("consumer_complaint", "complainant.id_number", 110105194912310023, "110105********0023"),
        ("business_registration", "legal_representative_id_number", 110105194912310023,
         "110105********0023"),
    ],
)  # fmt: skip
def test_pi_given_as_a_number_is_masked(
    kind: str, path: str, value: int, masked: str, record_data: RecordData
) -> None:
    with pytest.raises(RecordInvalid) as caught:
        parse_record(record_data(kind, {path: value}))
    assert_masked(caught.value, str(value), masked)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("business_registration", {"legal_representative": PIKind.NAME,
                                   "legal_representative_id_number": PIKind.ID_NUMBER}),
        ("consumer_complaint", {"complainant.name": PIKind.NAME,
                                "complainant.phone": PIKind.PHONE,
                                "complainant.id_number": PIKind.ID_NUMBER,
                                "complainant.address": PIKind.ADDRESS}),
        ("enforcement_referral", {"party.id_number": PIKind.ID_NUMBER,
                                  "contact_name": PIKind.NAME,
                                  "contact_phone": PIKind.PHONE}),
        ("feedback", {"officer": PIKind.NAME}),
    ],
)  # fmt: skip
def test_personal_info_paths(kind: str, expected: dict[str, PIKind]) -> None:
    assert personal_info_paths(MODELS[kind]) == expected


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("kind", KINDS)
def test_record_json_round_trip(kind: str, record_data: RecordData) -> None:
    record = parse_record(record_data(kind))
    text = record_to_json(record)
    assert parse_records_json(b"[" + text + b"]") == [record]


def test_records_json_round_trip_keeps_money_exact(record_data: RecordData) -> None:
    records = [parse_record(record_data(kind)) for kind in KINDS]
    text = records_to_json(records)
    assert parse_records_json(text) == records
    loaded = json.loads(text)
    assert loaded[0]["registered_capital"] == "1000000.00"
    assert loaded[1]["amount"] == "2999.00"


def test_json_float_money_is_refused(record_data: RecordData) -> None:
    text = json.dumps([record_data("consumer_complaint", {"amount": 2999.5})])
    with pytest.raises(RecordInvalid) as caught:
        parse_records_json(text, context="suining.json")
    assert [(v.field, v.rule) for v in caught.value.violations] == [("0.amount", "money.float")]
    assert str(caught.value).startswith("suining.json is invalid: ")


def test_json_that_does_not_parse() -> None:
    with pytest.raises(RecordInvalid) as caught:
        parse_records_json("[{", context="x.json")
    assert caught.value.violations[0].rule == "json_invalid"
