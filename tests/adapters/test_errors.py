"""Refusals: a file that breaks its spec is refused whole, naming record, field, rule, value."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.adapter import (
    EncodeContext,
    EncodeContextInvalid,
    LocalFileInvalid,
    LocalProblem,
    RecordNotEncodable,
    load_adapter,
)
from gateway.clock import BEIJING
from gateway.records import BusinessRegistration, ConsumerComplaint, Feedback

SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"
CONTEXT = EncodeContext("510900", "SN1", dt.datetime(2026, 11, 27, 10, 0, tzinfo=BEIJING))


def _tongliang(edit: Callable[[list[dict[str, Any]]], None]) -> bytes:
    items = json.loads((SAMPLES / "tongliang" / "spec_example.json").read_text("utf-8"))
    edit(items)
    return json.dumps(items, ensure_ascii=False).encode()


def _suining(old: str, new: str, sample: str = "spec_example.xml") -> bytes:
    text = (SAMPLES / "suining" / sample).read_bytes().decode("gb18030")
    assert old in text
    return text.replace(old, new, 1).encode("gb18030")


def _refusal(name: str, data: bytes) -> LocalFileInvalid:
    with pytest.raises(LocalFileInvalid) as caught:
        load_adapter(name).decode(data)
    return caught.value


def _only(error: LocalFileInvalid) -> LocalProblem:
    assert len(error.problems) == 1, error.message
    return error.problems[0]


def test_bad_uscc_names_record_field_rule_and_value() -> None:
    data = _tongliang(
        lambda items: items[1]["被投诉人"].update({"统一社会信用代码": "92510903MA6AB7Q52X"})
    )
    problem = _only(_refusal("tongliang", data))
    assert (problem.position, problem.record_id, problem.record_type) == (
        2,
        "TS5001512026112700001",
        "消费投诉",
    )
    assert (problem.field, problem.canonical_field, problem.rule) == (
        "被投诉人.统一社会信用代码",
        "respondent.uscc",
        "uscc.check_char",
    )
    assert "92510903MA6AB7Q52X" in problem.message
    assert str(problem).startswith(
        "record #2 (消费投诉 TS5001512026112700001), "
        "field 被投诉人.统一社会信用代码 [respondent.uscc]"
    )


def test_suining_bad_uscc_uses_pinyin_tag() -> None:
    problem = _only(_refusal("suining", _suining("91500151MA60K3C286", "91500151MA60K3C28X")))
    assert (problem.position, problem.record_id, problem.field, problem.rule) == (
        2,
        "遂市监移〔2026〕7号",
        "DSRTYDM",
        "uscc.check_char",
    )


def test_personal_information_is_masked() -> None:
    data = _tongliang(lambda items: items[0].update({"法定代表人证件号码": "110105194912310021"}))
    error = _refusal("tongliang", data)
    problem = _only(error)
    assert problem.field == "法定代表人证件号码"
    assert problem.rule == "resident_id.check_char"
    assert "110105194912310021" not in str(error)
    assert "110105********0021" in problem.message


def test_phone_with_a_local_format_error_is_masked() -> None:
    data = _tongliang(lambda items: items[1]["投诉人"].update({"联系电话": 13800138000}))
    problem = _only(_refusal("tongliang", data))
    assert (problem.field, problem.rule) == ("投诉人.联系电话", "field.type")
    assert "13800138000" not in problem.message


def test_money_as_json_number_is_refused() -> None:
    text = (SAMPLES / "tongliang" / "spec_example.json").read_text("utf-8")
    problem = _only(_refusal("tongliang", text.replace('"2999.00"', "2999.00").encode()))
    assert (problem.field, problem.rule) == ("涉案金额", "money.json_number")


@pytest.mark.parametrize("amount", ["-1.00", "1.005", "1e3", " 1.00", "1,000.00", ""])
def test_malformed_money_is_refused(amount: str) -> None:
    problem = _only(
        _refusal("tongliang", _tongliang(lambda items: items[1].update({"涉案金额": amount})))
    )
    assert problem.field == "涉案金额"
    assert problem.rule == "money.format"


def test_suining_capital_with_seven_decimals_is_refused() -> None:
    problem = _only(
        _refusal("suining", _suining("<ZCZB>10.500000</ZCZB>", "<ZCZB>10.5000001</ZCZB>"))
    )
    assert (problem.field, problem.rule) == ("ZCZB", "money.format")


def test_missing_required_field_names_the_local_key() -> None:
    problem = _only(_refusal("tongliang", _tongliang(lambda items: items[0].pop("登记机关"))))
    assert (problem.position, problem.field, problem.rule) == (1, "登记机关", "field.missing")


def test_missing_required_element_names_the_tag() -> None:
    problem = _only(_refusal("suining", _suining("<AY>涉嫌销售超过保质期的食品</AY>", "")))
    assert (problem.position, problem.field, problem.rule) == (2, "AY", "field.missing")


def test_unknown_key_and_element_are_refused() -> None:
    problem = _only(
        _refusal("tongliang", _tongliang(lambda items: items[1]["投诉人"].update({"性别": "男"})))
    )
    assert (problem.field, problem.rule) == ("投诉人.性别", "field.unknown")
    problem = _only(_refusal("suining", _suining("<SJJYDZ/>", "<SJJYDZ/><BZXX>1</BZXX>")))
    assert (problem.field, problem.rule) == ("BZXX", "field.unknown")


def test_canonical_rule_is_translated_to_local_field() -> None:
    data = _tongliang(lambda items: items[1].update({"消费日期": "2026-11-28"}))
    problem = _only(_refusal("tongliang", data))
    assert (problem.field, problem.canonical_field, problem.rule) == (
        "消费日期",
        "purchased_on",
        "complaint.purchase_after_registration",
    )


def test_nested_evidence_error_path() -> None:
    sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    problem = _only(
        _refusal("suining", _suining(f"<SHA256>{sha}</SHA256>", "<SHA256>abc</SHA256>"))
    )
    assert (problem.field, problem.canonical_field, problem.rule) == (
        "ZJCL/CL[1]/SHA256",
        "evidence.0.sha256",
        "sha256.format",
    )
    problem = _only(_refusal("suining", _suining("<YS>3</YS>", "<YS>three</YS>")))
    assert (problem.field, problem.rule) == ("ZJCL/CL[1]/YS", "integer.format")


def test_party_without_any_identifier_names_the_party() -> None:
    problem = _only(
        _refusal("suining", _suining("<DSRTYDM>91500151MA60K3C286</DSRTYDM>", "<DSRTYDM/>"))
    )
    assert problem.rule == "party.identifier"
    assert problem.field is not None and "DSRTYDM" in problem.field


def test_tongliang_feedback_status_must_fit_the_original_type() -> None:
    data = json.dumps(
        [
            {
                "记录类型": "办理反馈",
                "原记录编号": "TS1",
                "原记录类型": "消费投诉",
                "办理状态": "已立案",
                "办理时间": "2026-11-28 16:05:00",
                "承办人": "刘九",
            }
        ],
        ensure_ascii=False,
    ).encode()
    problem = _only(_refusal("tongliang", data))
    assert (problem.field, problem.rule) == ("办理状态", "code.unknown")
    assert "调解中" in problem.message


def test_unknown_code_lists_allowed_codes() -> None:
    problem = _only(_refusal("suining", _suining("<DJZT>1</DJZT>", "<DJZT>7</DJZT>")))
    assert (problem.field, problem.rule) == ("DJZT", "code.unknown")
    assert "1 2 3 4 5" in problem.message


def test_every_problem_of_a_file_is_reported() -> None:
    def edit(items: list[dict[str, Any]]) -> None:
        items[0]["成立日期"] = "2021-02-30"
        items[1]["登记时间"] = "2026-11-27T09:30:00"

    error = _refusal("tongliang", _tongliang(edit))
    assert [(p.position, p.field, p.rule) for p in error.problems] == [
        (1, "成立日期", "date.invalid"),
        (2, "登记时间", "datetime.format"),
    ]
    assert "2 problems" in error.message


@pytest.mark.parametrize(
    ("count", "rule"),
    [("3", "batch.count_mismatch"), ("1", "batch.count_mismatch"), ("two", "integer.format")],
)
def test_suining_record_count_must_match(count: str, rule: str) -> None:
    problem = _only(_refusal("suining", _suining("<JLS>2</JLS>", f"<JLS>{count}</JLS>")))
    assert (problem.position, problem.field, problem.rule) == (None, "BWT/JLS", rule)


def test_suining_header_fields_are_checked() -> None:
    error = _refusal(
        "suining",
        _suining(
            "<FSDW>510900</FSDW><FSSJ>20261127100000</FSSJ>",
            "<FSDW>5109</FSDW><FSSJ>20261327100000</FSSJ>",
        ),
    )
    assert [(p.field, p.rule) for p in error.problems] == [
        ("BWT/FSDW", "division.format"),
        ("BWT/FSSJ", "datetime.invalid"),
    ]


BOMB = (
    '<?xml version="1.0" encoding="GB18030"?>\n'
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10)
    ).replace("&lol0;", "&lol;")
    + "]>\n<SJBW>&lol9;</SJBW>\n"
)


@pytest.mark.parametrize(
    "document",
    [
        BOMB,
        '<?xml version="1.0" encoding="GB18030"?>\n<!-- c --><!DOCTYPE SJBW SYSTEM "http://example.invalid/x.dtd"><SJBW/>',
        '<?xml version="1.0" encoding="GB18030"?><!DOCTYPE SJBW [<!ENTITY x SYSTEM "file:///etc/passwd">]><SJBW>&x;</SJBW>',
    ],
    ids=["billion-laughs", "external-dtd", "external-entity"],
)
def test_doctype_and_entities_are_refused_quickly(document: str) -> None:
    started = time.monotonic()
    problem = _only(_refusal("suining", document.encode("gb18030")))
    assert time.monotonic() - started < 1.0
    assert problem.rule == "xml.doctype"


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "xml.declaration"),
        (b"<SJBW/>", "xml.declaration"),
        (b'<?xml version="1.0" encoding="UTF-8"?><SJBW/>', "encoding.declared"),
        (b'<?xml version="1.0" encoding="GB18030"?><SJBW>\xff</SJBW>', "encoding.gb18030"),
        (b'<?xml version="1.0" encoding="GB18030"?><SJBW><BWT></SJBW>', "xml.syntax"),
        (b'<?xml version="1.0" encoding="GB18030"?><ROOT/>', "xml.structure"),
        (b'<?xml version="1.0" encoding="GB18030"?><SJBW><BWTI/></SJBW>', "xml.structure"),
        (
            b'<?xml version="1.0" encoding="GB18030"?><SJBW>&amp;<BWT/><BWTI/></SJBW>',
            "xml.structure",
        ),
    ],
)
def test_suining_malformed_files(data: bytes, rule: str) -> None:
    assert rule in {p.rule for p in _refusal("suining", data).problems}


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "json.syntax"),
        (b"\xff[]", "encoding.utf8"),
        (b'{"a": 1}', "json.structure"),
        (b"[NaN]", "json.syntax"),
        (
            b'[{"\xe8\xae\xb0\xe5\xbd\x95\xe7\xb1\xbb\xe5\x9e\x8b": "x", "a": 1, "a": 2}]',
            "json.duplicate_key",
        ),
        (b"[1]", "record.type"),
        ('[{"记录类型": "年报"}]'.encode(), "code.unknown"),
        (b"[" * 100_000, "json.syntax"),
    ],
)
def test_tongliang_malformed_files(data: bytes, rule: str) -> None:
    assert rule in {p.rule for p in _refusal("tongliang", data).problems}


@pytest.mark.parametrize("name", ["tongliang", "suining", "canonical"])
def test_oversized_input_is_refused_before_parsing(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = load_adapter(name)
    monkeypatch.setattr(type(adapter), "max_bytes", 10)
    with pytest.raises(LocalFileInvalid) as caught:
        adapter.decode(b"x" * 11)
    assert caught.value.problems[0].rule == "file.too_large"


def _complaint() -> ConsumerComplaint:
    records = (
        load_adapter("tongliang")
        .decode((SAMPLES / "tongliang" / "spec_example.json").read_bytes())
        .records
    )
    complaint = records[1]
    assert isinstance(complaint, ConsumerComplaint)
    return complaint


@pytest.mark.parametrize("name", ["tongliang", "suining"])
def test_encode_refuses_sub_second_times(name: str) -> None:
    complaint = _complaint()
    precise = complaint.model_copy(
        update={"registered_at": complaint.registered_at.replace(microsecond=5)}
    )
    with pytest.raises(RecordNotEncodable) as caught:
        load_adapter(name).encode([complaint, precise], CONTEXT)
    problem = caught.value.problems[0]
    assert (problem.position, problem.record_id, problem.canonical_field, problem.rule) == (
        2,
        "TS5001512026112700001",
        "registered_at",
        "datetime.precision",
    )


@pytest.mark.parametrize(("name", "field"), [("tongliang", "注册资本币种"), ("suining", "BZ")])
def test_encode_refuses_a_currency_without_a_local_code(name: str, field: str) -> None:
    registration = (
        load_adapter("tongliang")
        .decode((SAMPLES / "tongliang" / "spec_example.json").read_bytes())
        .records[0]
    )
    assert isinstance(registration, BusinessRegistration)
    exotic = registration.model_copy(update={"registered_capital_currency": "XAU"})
    with pytest.raises(RecordNotEncodable) as caught:
        load_adapter(name).encode([exotic], CONTEXT)
    assert (caught.value.problems[0].field, caught.value.problems[0].rule) == (
        field,
        "code.unmapped",
    )


def test_suining_encode_refuses_characters_xml_cannot_carry() -> None:
    complaint = _complaint().model_copy(update={"facts": "bell \x07 ring"})
    with pytest.raises(RecordNotEncodable) as caught:
        load_adapter("suining").encode([complaint], CONTEXT)
    assert (caught.value.problems[0].field, caught.value.problems[0].rule) == (
        "TSSY",
        "text.character",
    )
    tongliang = load_adapter("tongliang")
    assert tongliang.decode(tongliang.encode([complaint], CONTEXT)).records == (complaint,)


def test_encode_refuses_money_finer_than_a_fen() -> None:
    complaint = _complaint().model_copy(update={"amount": Decimal("1.005")})
    with pytest.raises(RecordNotEncodable) as caught:
        load_adapter("suining").encode([complaint], CONTEXT)
    assert (caught.value.problems[0].field, caught.value.problems[0].rule) == (
        "SAJE",
        "money.precision",
    )


@pytest.mark.parametrize(
    ("context", "needle"),
    [
        (EncodeContext(), "FSDW"),
        (EncodeContext("5109", "SN1", CONTEXT.sent_at), "must be 6 digits"),
        (EncodeContext("510900", " ", CONTEXT.sent_at), "BWBH"),
    ],
)
def test_suining_header_needs_a_complete_context(context: EncodeContext, needle: str) -> None:
    with pytest.raises(EncodeContextInvalid, match=needle):
        load_adapter("suining").encode([_complaint()], context)


def test_naive_sent_at_is_refused() -> None:
    with pytest.raises(EncodeContextInvalid):
        EncodeContext("510900", "SN1", dt.datetime(2026, 1, 1))


def test_empty_optional_values_decode_to_none() -> None:
    records = (
        load_adapter("suining")
        .decode((SAMPLES / "suining" / "mixed_gb18030.xml").read_bytes())
        .records
    )
    registration = next(r for r in records if isinstance(r, BusinessRegistration))
    assert registration.actual_business_address is None
    assert registration.registered_capital_currency == "CNY"  # <BZ/> means the default 156
    feedback = [r for r in records if isinstance(r, Feedback)]
    assert feedback[1].note is None
