"""Cooperation agreements: the shipped files, validation naming file/key/rule, decisions."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.agreements import (
    Agreement,
    AgreementBook,
    AgreementFileInvalid,
    AgreementRefused,
    FieldAction,
    RefusalReason,
    SharingClass,
    canonical_fields,
    load_agreements,
    parse_agreement,
)
from gateway.clock import BEIJING
from gateway.errors import ConfigInvalid, PeerError
from gateway.records import (
    ConsumerComplaint,
    OriginalType,
    RecordType,
    parse_record,
    personal_info_paths,
)

RecordData = Callable[..., dict[str, Any]]

SHIPPED = Path(__file__).resolve().parents[2] / "agreements"
TONGLIANG, SUINING, CHENGDU = "500151", "510900", "510100"
MR, CP = "SUI-TONG-MR-2024", "SUI-TONG-CP-2024"
ED25519 = "ed25519"
NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=BEIJING)
ID_NUMBER = "11010519491231002X"


@pytest.fixture(scope="module")
def book() -> AgreementBook:
    return load_agreements(SHIPPED)


def shipped_data(agreement_id: str) -> dict[str, Any]:
    return tomllib.loads((SHIPPED / f"{agreement_id}.toml").read_text(encoding="utf-8"))


def refused(excinfo: pytest.ExceptionInfo[AgreementRefused]) -> str:
    return excinfo.value.reason


# ---------------------------------------------------------------------------
# The shipped agreements


def test_shipped_agreements_load(book: AgreementBook) -> None:
    assert sorted(book.agreements) == [CP, MR]
    for agreement in book.agreements.values():
        assert agreement.parties == (TONGLIANG, SUINING)
        assert agreement.in_force(NOW)
        assert set(agreement.directions) == {(TONGLIANG, SUINING), (SUINING, TONGLIANG)}
        assert agreement.title and agreement.source.endswith(f"{agreement.id}.toml")
    mr, cp = book.agreements[MR], book.agreements[CP]
    for pair in mr.directions:
        assert set(mr.directions[pair].records) == {
            RecordType.BUSINESS_REGISTRATION,
            RecordType.ENFORCEMENT_REFERRAL,
            RecordType.FEEDBACK,
        }
        assert set(cp.directions[pair].records) == {
            RecordType.CONSUMER_COMPLAINT,
            RecordType.FEEDBACK,
        }
        assert mr.directions[pair].records[RecordType.FEEDBACK].answers == {
            OriginalType.ENFORCEMENT_REFERRAL
        }
        assert cp.directions[pair].records[RecordType.FEEDBACK].answers == {
            OriginalType.CONSUMER_COMPLAINT
        }
        complaint = cp.directions[pair].records[RecordType.CONSUMER_COMPLAINT]
        assert complaint.retention_days == 1095
        assert complaint.fields["complainant.id_number"].action is FieldAction.DROP
        assert complaint.fields["complainant.phone"].action is FieldAction.ALLOW


def test_shipped_agreements_are_symmetric(book: AgreementBook) -> None:
    """Both directions of each shipped agreement say the same: a typo in one shows here."""
    for agreement in book.agreements.values():
        there = agreement.directions[(TONGLIANG, SUINING)].records
        back = agreement.directions[(SUINING, TONGLIANG)].records
        assert there == back


def test_shipped_pi_fields_are_never_unconditional(book: AgreementBook) -> None:
    for agreement in book.agreements.values():
        for direction in agreement.directions.values():
            for terms in direction.records.values():
                for policy in terms.fields.values():
                    if policy.personal_info is not None:
                        assert policy.sharing_class is not SharingClass.UNCONDITIONAL


def test_catalogue_holds_every_pi_path_of_the_models() -> None:
    from gateway.records import (
        BusinessRegistration,
        EnforcementReferral,
        Feedback,
    )

    models: dict[RecordType, type[BaseModel]] = {
        RecordType.BUSINESS_REGISTRATION: BusinessRegistration,
        RecordType.CONSUMER_COMPLAINT: ConsumerComplaint,
        RecordType.ENFORCEMENT_REFERRAL: EnforcementReferral,
        RecordType.FEEDBACK: Feedback,
    }
    for record_type, model in models.items():
        catalogue = canonical_fields(record_type)
        pi = {p: f.personal_info for p, f in catalogue.items() if f.personal_info}
        assert pi == personal_info_paths(model)
        assert "record_type" not in catalogue
    referral = canonical_fields(RecordType.ENFORCEMENT_REFERRAL)
    assert referral["evidence.sha256"].in_sequence
    assert referral["party.id_number"].optional
    # A default that is a value ("CNY") is not absence.
    assert not canonical_fields(RecordType.BUSINESS_REGISTRATION)[
        "registered_capital_currency"
    ].optional


# ---------------------------------------------------------------------------
# Validation: every problem names file, key and rule


def _fields_block(record_type: RecordType) -> str:
    lines = []
    for path, spec in canonical_fields(record_type).items():
        sharing = "conditional" if spec.personal_info else "unconditional"
        lines.append(f'{path} = {{ policy = "allow", class = "{sharing}" }}')
    return "\n".join(lines)


def _feedback_block(answers: str) -> str:
    return (
        "\n[directions.records.feedback]\n"
        'purpose = "反馈"\nlegal_basis = "本协议"\nretention_days = 30\n'
        f"{answers}\n"
        "[directions.records.feedback.fields]\n"
        + _fields_block(RecordType.FEEDBACK).replace("unconditional", "conditional")
        + "\n"
    )


BASE = f"""\
id = "TEST-1"
title = "测试协议"
parties = ["500151", "510900"]
effective_from = 2024-01-01
effective_until = 2028-12-31

[[directions]]
from = "500151"
to = "510900"

[directions.records.business_registration]
purpose = "登记信息共享"
legal_basis = "本协议"
retention_days = 365

[directions.records.business_registration.fields]
{_fields_block(RecordType.BUSINESS_REGISTRATION)}
"""

REG = "directions[0].records.business_registration"
REG_FIELDS = f"{REG}.fields"


def _replace(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return mutate


def _append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


INVALID_CASES: list[tuple[str, Callable[[str], str], str, str]] = [
    ("id missing", _replace('id = "TEST-1"\n', ""), "id", "key.missing"),
    ("id format", _replace('"TEST-1"', '"TEST 1"'), "id", "id.format"),
    ("unknown top key", _append("\n"), "", ""),  # placeholder replaced below
    ("title blank", _replace('"测试协议"', '"  "'), "title", "type.text"),
    (
        "party code",
        _replace('["500151", "510900"]', '["500151", "99x"]'),
        "parties[1]",
        "parties.bureau",
    ),
    ("one party", _replace('["500151", "510900"]', '["500151"]'), "parties", "parties.count"),
    (
        "party twice",
        _replace('["500151", "510900"]', '["500151", "510900", "500151"]'),
        "parties",
        "parties.duplicate",
    ),
    (
        "dates order",
        _replace("effective_until = 2028-12-31", "effective_until = 2023-12-31"),
        "effective_until",
        "dates.order",
    ),
    (
        "date quoted",
        _replace("effective_from = 2024-01-01", 'effective_from = "2024-01-01"'),
        "effective_from",
        "type.date",
    ),
    (
        "datetime",
        _replace("effective_from = 2024-01-01", "effective_from = 2024-01-01T00:00:00"),
        "effective_from",
        "type.date",
    ),
    (
        "suite",
        _replace(
            "effective_until = 2028-12-31", 'effective_until = 2028-12-31\nsignature_suite = "rsa"'
        ),
        "signature_suite",
        "suite.unknown",
    ),
    (
        "direction outsider",
        _replace('from = "500151"', 'from = "510100"'),
        "directions[0].from",
        "direction.party",
    ),
    (
        "direction to itself",
        _replace('to = "510900"', 'to = "500151"'),
        "directions[0].to",
        "direction.party",
    ),
    (
        "direction bad code",
        _replace('to = "510900"', 'to = "5109"'),
        "directions[0].to",
        "parties.bureau",
    ),
    (
        "direction missing from",
        _replace('from = "500151"\n', ""),
        "directions[0].from",
        "key.missing",
    ),
    (
        "record type",
        _append('\n[directions.records.trademark]\npurpose = "x"\n'),
        "directions[0].records.trademark",
        "record_type.unknown",
    ),
    (
        "unknown field",
        _append('complainant.name = { policy = "allow", class = "conditional" }\n'),
        f"{REG_FIELDS}.complainant.name",
        "field.unknown",
    ),
    (
        "missing field",
        _replace('uscc = { policy = "allow", class = "unconditional" }\n', ""),
        REG_FIELDS,
        "field.missing",
    ),
    (
        "entry not a table",
        _replace('uscc = { policy = "allow", class = "unconditional" }', 'uscc = "allow"'),
        f"{REG_FIELDS}.uscc",
        "field.entry",
    ),
    (
        "drop required",
        _replace('uscc = { policy = "allow"', 'uscc = { policy = "drop"'),
        f"{REG_FIELDS}.uscc.policy",
        "drop.required_field",
    ),
    (
        "drop defaulted",
        _replace(
            'registered_capital_currency = { policy = "allow"',
            'registered_capital_currency = { policy = "drop"',
        ),
        f"{REG_FIELDS}.registered_capital_currency.policy",
        "drop.required_field",
    ),
    (
        "refuse required",
        _replace('uscc = { policy = "allow"', 'uscc = { policy = "refuse"'),
        f"{REG_FIELDS}.uscc.policy",
        "refuse.required_field",
    ),
    (
        "pi unconditional",
        _replace(
            'legal_representative = { policy = "allow", class = "conditional" }',
            'legal_representative = { policy = "allow", class = "unconditional" }',
        ),
        f"{REG_FIELDS}.legal_representative.class",
        "class.pi_unconditional",
    ),
    (
        "not_shared allowed",
        _replace(
            'actual_business_address = { policy = "allow", class = "unconditional" }',
            'actual_business_address = { policy = "allow", class = "not_shared" }',
        ),
        f"{REG_FIELDS}.actual_business_address.policy",
        "class.not_shared_allowed",
    ),
    (
        "policy unknown",
        _replace('uscc = { policy = "allow"', 'uscc = { policy = "share"'),
        f"{REG_FIELDS}.uscc.policy",
        "policy.unknown",
    ),
    (
        "policy missing",
        _replace('uscc = { policy = "allow", ', "uscc = { "),
        f"{REG_FIELDS}.uscc.policy",
        "key.missing",
    ),
    (
        "class unknown",
        _replace(
            'uscc = { policy = "allow", class = "unconditional"',
            'uscc = { policy = "allow", class = "public"',
        ),
        f"{REG_FIELDS}.uscc.class",
        "class.unknown",
    ),
    (
        "field entry key",
        _replace(
            'uscc = { policy = "allow", class = "unconditional" }',
            'uscc = { policy = "allow", class = "unconditional", why = 1 }',
        ),
        f"{REG_FIELDS}.uscc.why",
        "key.unknown",
    ),
    (
        "retention zero",
        _replace("retention_days = 365", "retention_days = 0"),
        f"{REG}.retention_days",
        "retention.range",
    ),
    (
        "retention text",
        _replace("retention_days = 365", 'retention_days = "365"'),
        f"{REG}.retention_days",
        "retention.range",
    ),
    (
        "retention missing",
        _replace("retention_days = 365\n", ""),
        f"{REG}.retention_days",
        "key.missing",
    ),
    (
        "purpose missing",
        _replace('purpose = "登记信息共享"\n', ""),
        f"{REG}.purpose",
        "key.missing",
    ),
    (
        "legal basis missing",
        _replace('legal_basis = "本协议"\n', ""),
        f"{REG}.legal_basis",
        "legal_basis.missing",
    ),
    (
        "answers on a non-feedback",
        _replace("retention_days = 365", 'retention_days = 365\nanswers = ["consumer_complaint"]'),
        f"{REG}.answers",
        "feedback.answers",
    ),
    (
        "feedback without answers",
        _append(_feedback_block("")),
        "directions[0].records.feedback.answers",
        "feedback.answers",
    ),
    (
        "feedback answers unknown",
        _append(_feedback_block('answers = ["feedback"]')),
        "directions[0].records.feedback.answers",
        "feedback.answers",
    ),
    (
        "feedback answers unmatched",
        _append(_feedback_block('answers = ["enforcement_referral"]')),
        "directions[0].records.feedback.answers",
        "feedback.answers_unmatched",
    ),
    (
        "direction twice",
        _append(
            '\n[[directions]]\nfrom = "500151"\nto = "510900"\n'
            "[directions.records.business_registration]\n"
            'purpose = "again"\nlegal_basis = "本协议"\nretention_days = 1\n'
            "[directions.records.business_registration.fields]\n"
            + _fields_block(RecordType.BUSINESS_REGISTRATION)
        ),
        "directions[1]",
        "direction.duplicate",
    ),
    (
        "direction without records",
        _append('\n[[directions]]\nfrom = "510900"\nto = "500151"\n[directions.records]\n'),
        "directions[1].records",
        "record_type.none",
    ),
    ("no directions", lambda text: text.split("[[directions]]")[0], "directions", "key.missing"),
    ("toml syntax", _append("this is = = not toml\n"), "(file)", "toml.syntax"),
]
INVALID_CASES[2] = (
    "unknown top key",
    _replace('title = "测试协议"', 'title = "测试协议"\nsigned_by = "x"'),
    "signed_by",
    "key.unknown",
)


def test_base_snippet_is_valid(tmp_path: Path) -> None:
    (tmp_path / "TEST-1.toml").write_text(BASE, encoding="utf-8")
    book = load_agreements(tmp_path)
    assert list(book.agreements) == ["TEST-1"]


@pytest.mark.parametrize(
    ("mutate", "key", "rule"),
    [pytest.param(m, k, r, id=name) for name, m, k, r in INVALID_CASES],
)
def test_invalid_agreement_names_file_key_and_rule(
    tmp_path: Path, mutate: Callable[[str], str], key: str, rule: str
) -> None:
    path = tmp_path / "TEST-1.toml"
    path.write_text(mutate(BASE), encoding="utf-8")
    with pytest.raises(AgreementFileInvalid) as excinfo:
        load_agreements(tmp_path)
    error = excinfo.value
    assert isinstance(error, ConfigInvalid)  # the node's start-up refusal
    found = {(p.file, p.key, p.rule) for p in error.problems}
    assert (str(path), key, rule) in found, error.problems
    # The message an operator reads carries all three too.
    assert str(path) in str(error) and key in str(error) and f"[{rule}]" in str(error)


def test_missing_fields_are_named(tmp_path: Path) -> None:
    text = BASE.replace('uscc = { policy = "allow", class = "unconditional" }\n', "")
    text = text.replace('status = { policy = "allow", class = "unconditional" }\n', "")
    (tmp_path / "TEST-1.toml").write_text(text, encoding="utf-8")
    with pytest.raises(AgreementFileInvalid) as excinfo:
        load_agreements(tmp_path)
    [problem] = excinfo.value.problems
    assert problem.rule == "field.missing"
    assert "missing: uscc, status" in problem.message


def test_quoted_and_dotted_field_paths_are_the_same(tmp_path: Path) -> None:
    data = shipped_data(CP)
    fields = data["directions"][0]["records"]["consumer_complaint"]["fields"]
    fields["complainant.phone"] = fields["complainant"].pop("phone")  # as if written quoted
    agreement = parse_agreement(data, "quoted.toml")
    terms = agreement.terms(TONGLIANG, SUINING, RecordType.CONSUMER_COMPLAINT)
    assert terms is not None and "complainant.phone" in terms.fields


def test_a_field_listed_twice_is_refused() -> None:
    data = shipped_data(CP)
    fields = data["directions"][0]["records"]["consumer_complaint"]["fields"]
    fields["complainant.phone"] = dict(fields["complainant"]["phone"])  # quoted and dotted
    with pytest.raises(AgreementFileInvalid) as excinfo:
        parse_agreement(data, "CP.toml")
    [problem] = excinfo.value.problems
    assert (problem.file, problem.rule) == ("CP.toml", "field.duplicate")
    assert problem.key == "directions[0].records.consumer_complaint.fields.complainant.phone"


def test_every_problem_of_every_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "A.toml").write_text(BASE.replace('"TEST-1"', '"A"', 1), encoding="utf-8")
    (tmp_path / "B.toml").write_text(
        BASE.replace('"TEST-1"', '"B"', 1)
        .replace("retention_days = 365", "retention_days = -1")
        .replace("effective_until = 2028-12-31", "effective_until = 2020-01-01"),
        encoding="utf-8",
    )
    (tmp_path / "C.toml").write_text("id = ", encoding="utf-8")
    with pytest.raises(AgreementFileInvalid) as excinfo:
        load_agreements(tmp_path)
    found = {(Path(p.file).name, p.rule) for p in excinfo.value.problems}
    assert found == {
        ("B.toml", "retention.range"),
        ("B.toml", "dates.order"),
        ("C.toml", "toml.syntax"),
    }


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "first.toml").write_text(BASE, encoding="utf-8")
    (tmp_path / "second.toml").write_text(BASE, encoding="utf-8")
    with pytest.raises(AgreementFileInvalid) as excinfo:
        load_agreements(tmp_path)
    [problem] = excinfo.value.problems
    assert (Path(problem.file).name, problem.key, problem.rule) == (
        "second.toml",
        "id",
        "id.duplicate",
    )
    assert "first.toml" in problem.message


def test_directory_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="does not exist"):
        load_agreements(tmp_path / "nope")
    (tmp_path / "README.md").write_text("not an agreement", encoding="utf-8")
    with pytest.raises(ConfigInvalid, match="no agreement files"):
        load_agreements(tmp_path)


# ---------------------------------------------------------------------------
# Outbound: drop and refuse


def test_outbound_drops_the_complainant_id_number(
    book: AgreementBook, record_data: RecordData
) -> None:
    complaint = parse_record(record_data("consumer_complaint"))
    assert isinstance(complaint, ConsumerComplaint)
    assert complaint.complainant.id_number == ID_NUMBER
    sent = book.for_outbound(CP, TONGLIANG, SUINING, complaint, now=NOW, suite=ED25519)
    assert isinstance(sent, ConsumerComplaint)
    assert sent.complainant.id_number is None
    # Everything else crosses unchanged, and the caller's record is untouched.
    assert sent.model_copy(update={"complainant": complaint.complainant}) == complaint
    assert complaint.complainant.id_number == ID_NUMBER
    # What the sender now sends is what the receiver accepts.
    assert (
        book.check_inbound(
            CP, TONGLIANG, SUINING, RecordType.CONSUMER_COMPLAINT, sent, now=NOW, suite=ED25519
        )
        is book.agreements[CP]
    )


def test_outbound_without_anything_to_drop_returns_the_record(
    book: AgreementBook, record_data: RecordData
) -> None:
    complaint = parse_record(record_data("consumer_complaint", {"complainant.id_number": None}))
    assert book.for_outbound(CP, SUINING, TONGLIANG, complaint, now=NOW, suite=ED25519) is complaint
    registration = parse_record(record_data("business_registration"))
    assert book.for_outbound(MR, TONGLIANG, SUINING, registration, now=NOW, suite=ED25519) is (
        registration
    )


def _custom(agreement_id: str, change: Callable[[dict[str, Any]], None]) -> AgreementBook:
    data = copy.deepcopy(shipped_data(agreement_id))
    change(data)
    return AgreementBook([parse_agreement(data, f"{agreement_id}.toml")])


def _policy(data: dict[str, Any], direction: int, record_type: str, *path: str) -> dict[str, Any]:
    target: dict[str, Any] = data["directions"][direction]["records"][record_type]["fields"]
    for part in path:
        target = target[part]
    return target


def test_outbound_refuses_a_record_carrying_a_refused_field(record_data: RecordData) -> None:
    def refuse_address(data: dict[str, Any]) -> None:
        _policy(data, 0, "business_registration", "actual_business_address").update(
            policy="refuse", **{"class": "not_shared"}
        )

    book = _custom(MR, refuse_address)
    registration = parse_record(record_data("business_registration"))
    with pytest.raises(AgreementRefused) as excinfo:
        book.for_outbound(MR, TONGLIANG, SUINING, registration, now=NOW, suite=ED25519)
    assert refused(excinfo) == RefusalReason.AGREEMENT_FIELD_REFUSED
    assert excinfo.value.fields == ("actual_business_address",)
    assert "actual_business_address" in excinfo.value.message
    # Without a value the same record type crosses.
    bare = parse_record(record_data("business_registration", {"actual_business_address": None}))
    assert book.for_outbound(MR, TONGLIANG, SUINING, bare, now=NOW, suite=ED25519) is bare
    # The other direction did not change.
    assert book.for_outbound(MR, SUINING, TONGLIANG, registration, now=NOW, suite=ED25519)


def test_outbound_refuses_a_drop_that_leaves_the_record_invalid(record_data: RecordData) -> None:
    def drop_party_id(data: dict[str, Any]) -> None:
        for direction in (0, 1):
            _policy(data, direction, "enforcement_referral", "party", "id_number")["policy"] = (
                "drop"
            )

    book = _custom(MR, drop_party_id)
    person = parse_record(
        record_data("enforcement_referral", {"party.uscc": None, "party.id_number": ID_NUMBER})
    )
    with pytest.raises(AgreementRefused) as excinfo:
        book.for_outbound(MR, TONGLIANG, SUINING, person, now=NOW, suite=ED25519)
    assert refused(excinfo) == RefusalReason.AGREEMENT_FIELD_REFUSED
    assert excinfo.value.fields == ("party.id_number",)
    assert ID_NUMBER not in excinfo.value.message  # PI never repeated
    both = parse_record(record_data("enforcement_referral", {"party.id_number": ID_NUMBER}))
    sent = book.for_outbound(MR, TONGLIANG, SUINING, both, now=NOW, suite=ED25519)
    assert sent.party.id_number is None and sent.party.uscc  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# Inbound refusals, one per reason


def test_inbound_accepts_within_the_agreement(book: AgreementBook, record_data: RecordData) -> None:
    referral = parse_record(record_data("enforcement_referral"))
    agreement = book.check_inbound(
        MR, SUINING, TONGLIANG, RecordType.ENFORCEMENT_REFERRAL, referral, now=NOW, suite=ED25519
    )
    assert isinstance(agreement, Agreement) and agreement.id == MR


def _suite_required(data: dict[str, Any]) -> None:
    data["signature_suite"] = "sm2-sm3"


def _one_way(data: dict[str, Any]) -> None:
    data["directions"] = data["directions"][:1]
    del data["directions"][0]["records"]["feedback"]


INBOUND_REFUSALS: list[tuple[str, dict[str, Any], RefusalReason]] = [
    ("unknown agreement", {"agreement_id": "SUI-TONG-IP-2024"}, RefusalReason.AGREEMENT_UNKNOWN),
    (
        "before it starts",
        {"now": dt.datetime(2023, 12, 31, 23, 59, tzinfo=BEIJING)},
        RefusalReason.AGREEMENT_NOT_IN_FORCE,
    ),
    (
        "expired yesterday",
        {"now": dt.datetime(2029, 1, 1, 0, 0, tzinfo=BEIJING)},
        RefusalReason.AGREEMENT_NOT_IN_FORCE,
    ),
    # 16:00 UTC on the last day is already the next day in Beijing.
    (
        "expired in Beijing time",
        {"now": dt.datetime(2028, 12, 31, 16, 0, tzinfo=dt.UTC)},
        RefusalReason.AGREEMENT_NOT_IN_FORCE,
    ),
    ("sender not a party", {"sender": CHENGDU}, RefusalReason.AGREEMENT_PARTY_MISMATCH),
    ("receiver not a party", {"receiver": CHENGDU}, RefusalReason.AGREEMENT_PARTY_MISMATCH),
    (
        "direction not covered",
        {"book": _one_way},  # keeps only Tongliang → Suining
        RefusalReason.AGREEMENT_PARTY_MISMATCH,
    ),
    ("suite required", {"book": _suite_required}, RefusalReason.AGREEMENT_SUITE_REQUIRED),
    (
        "record type not allowed",
        {"agreement_id": CP},
        RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
    ),
    (
        "header type differs",
        {"record_type": RecordType.BUSINESS_REGISTRATION},
        RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
    ),
    (
        "dropped field carries a value",
        {"kind": "consumer_complaint", "agreement_id": CP},
        RefusalReason.AGREEMENT_FIELD_REFUSED,
    ),
    (
        "feedback on a complaint under MR",
        {"kind": "feedback"},
        RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
    ),
]


@pytest.mark.parametrize(
    ("case", "reason"), [pytest.param(c, r, id=n) for n, c, r in INBOUND_REFUSALS]
)
def test_inbound_refusals(
    book: AgreementBook, record_data: RecordData, case: dict[str, Any], reason: RefusalReason
) -> None:
    # The default: a Suining referral to Tongliang under MR, which is allowed.
    kind = case.get("kind", "enforcement_referral")
    record = parse_record(record_data(kind))
    if "book" in case:
        book = _custom(MR, case["book"])
    with pytest.raises(AgreementRefused) as excinfo:
        book.check_inbound(
            case.get("agreement_id", MR),
            case.get("sender", SUINING),
            case.get("receiver", TONGLIANG),
            case.get("record_type", RecordType(kind)),
            record,
            now=case.get("now", NOW),
            suite=ED25519,
        )
    error = excinfo.value
    assert isinstance(error, PeerError)
    assert error.reason == reason.value
    assert ID_NUMBER not in error.message


def test_inbound_field_refusal_names_the_field(
    book: AgreementBook, record_data: RecordData
) -> None:
    complaint = parse_record(record_data("consumer_complaint"))
    with pytest.raises(AgreementRefused) as excinfo:
        book.check_inbound(
            CP, SUINING, TONGLIANG, RecordType.CONSUMER_COMPLAINT, complaint, now=NOW, suite=ED25519
        )
    assert excinfo.value.fields == ("complainant.id_number",)
    assert excinfo.value.agreement_id == CP


def test_in_force_boundaries(book: AgreementBook) -> None:
    mr = book.agreements[MR]
    assert mr.in_force(dt.datetime(2024, 1, 1, 0, 0, tzinfo=BEIJING))
    assert not mr.in_force(dt.datetime(2023, 12, 31, 15, 59, tzinfo=dt.UTC))
    assert mr.in_force(dt.datetime(2028, 12, 31, 23, 59, 59, tzinfo=BEIJING))
    assert not mr.in_force(dt.datetime(2029, 1, 1, tzinfo=BEIJING))
    with pytest.raises(ValueError, match="timezone-aware"):
        mr.in_force(dt.datetime(2026, 1, 1))


def test_suite_required_accepts_that_suite(record_data: RecordData) -> None:
    book = _custom(MR, _suite_required)
    registration = parse_record(record_data("business_registration"))
    assert book.for_outbound(MR, TONGLIANG, SUINING, registration, now=NOW, suite="sm2-sm3")
    with pytest.raises(AgreementRefused) as excinfo:
        book.for_outbound(MR, TONGLIANG, SUINING, registration, now=NOW, suite=ED25519)
    assert refused(excinfo) == RefusalReason.AGREEMENT_SUITE_REQUIRED


def test_open_ended_agreement(record_data: RecordData) -> None:
    def open_ended(data: dict[str, Any]) -> None:
        del data["effective_until"]

    book = _custom(MR, open_ended)
    assert book.agreements[MR].in_force(dt.datetime(2100, 1, 1, tzinfo=BEIJING))


# ---------------------------------------------------------------------------
# Default agreement


@pytest.mark.parametrize(
    ("record_type", "answers", "expected"),
    [
        (RecordType.BUSINESS_REGISTRATION, None, MR),
        (RecordType.ENFORCEMENT_REFERRAL, None, MR),
        (RecordType.CONSUMER_COMPLAINT, None, CP),
        (RecordType.FEEDBACK, OriginalType.CONSUMER_COMPLAINT, CP),
        (RecordType.FEEDBACK, OriginalType.ENFORCEMENT_REFERRAL, MR),
    ],
)
def test_default_agreement(
    book: AgreementBook,
    record_type: RecordType,
    answers: OriginalType | None,
    expected: str,
) -> None:
    for sender, receiver in ((TONGLIANG, SUINING), (SUINING, TONGLIANG)):
        chosen = book.default_agreement(sender, receiver, record_type, NOW, answers=answers)
        assert chosen.id == expected


def test_default_agreement_refusals(book: AgreementBook) -> None:
    with pytest.raises(AgreementRefused) as excinfo:
        book.default_agreement(TONGLIANG, SUINING, RecordType.FEEDBACK, NOW)
    assert refused(excinfo) == RefusalReason.AGREEMENT_AMBIGUOUS
    assert CP in excinfo.value.message and MR in excinfo.value.message
    with pytest.raises(AgreementRefused) as excinfo:
        book.default_agreement(
            TONGLIANG,
            SUINING,
            RecordType.CONSUMER_COMPLAINT,
            dt.datetime(2030, 1, 1, tzinfo=BEIJING),
        )
    assert refused(excinfo) == RefusalReason.AGREEMENT_NOT_IN_FORCE
    with pytest.raises(AgreementRefused) as excinfo:
        book.default_agreement(TONGLIANG, CHENGDU, RecordType.CONSUMER_COMPLAINT, NOW)
    assert refused(excinfo) == RefusalReason.AGREEMENT_NONE_APPLIES


def test_default_agreement_ignores_one_not_in_force(tmp_path: Path) -> None:
    old = BASE.replace('"TEST-1"', '"OLD"', 1).replace("2028-12-31", "2025-12-31")
    new = BASE.replace('"TEST-1"', '"NEW"', 1).replace("2024-01-01", "2026-01-01")
    (tmp_path / "OLD.toml").write_text(old, encoding="utf-8")
    (tmp_path / "NEW.toml").write_text(new, encoding="utf-8")
    book = load_agreements(tmp_path)
    rt = RecordType.BUSINESS_REGISTRATION
    assert book.default_agreement(TONGLIANG, SUINING, rt, NOW).id == "NEW"
    before = dt.datetime(2025, 6, 1, tzinfo=BEIJING)
    assert book.default_agreement(TONGLIANG, SUINING, rt, before).id == "OLD"
