"""Golden files: every shipped sample decodes to the committed canonical JSON, and converts."""

from __future__ import annotations

import codecs
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.adapter import EncodeContext, load_adapter
from gateway.clock import BEIJING
from gateway.convert import convert
from gateway.records import (
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    OriginalType,
    RecordType,
    parse_records_json,
    records_to_json,
)

SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"
CASES = [
    (name, path)
    for name, suffix in (("tongliang", ".json"), ("suining", ".xml"))
    for path in sorted((SAMPLES / name).glob(f"*{suffix}"))
]
OTHER = {"tongliang": "suining", "suining": "tongliang"}


def test_samples_are_shipped() -> None:
    assert {name for name, _ in CASES} == {"tongliang", "suining"}
    assert len(CASES) >= 5


@pytest.mark.parametrize(("name", "sample"), CASES, ids=[f"{n}/{p.name}" for n, p in CASES])
def test_sample_decodes_to_golden_canonical_json(name: str, sample: Path, golden_dir: Path) -> None:
    batch = load_adapter(name).decode(sample.read_bytes())
    golden = (golden_dir / name / f"{sample.stem}.json").read_bytes()
    assert records_to_json(list(batch.records)) + b"\n" == golden
    assert tuple(parse_records_json(golden)) == batch.records


@pytest.mark.parametrize("name", ["tongliang", "suining"])
def test_samples_hold_every_record_type(name: str) -> None:
    adapter = load_adapter(name)
    seen = {
        record.record_type
        for sample_name, path in CASES
        if sample_name == name
        for record in adapter.decode(path.read_bytes()).records
    }
    assert seen == set(RecordType)


@pytest.mark.parametrize(("name", "sample"), CASES, ids=[f"{n}/{p.name}" for n, p in CASES])
def test_sample_converts_to_the_other_format_and_back(
    name: str, sample: Path, tongliang_header: EncodeContext
) -> None:
    data = sample.read_bytes()
    original = load_adapter(name).decode(data)
    other = convert(data, source=name, target=OTHER[name], context=tongliang_header)
    back = convert(
        other, source=OTHER[name], target=name, context=EncodeContext.from_batch(original)
    )
    again = load_adapter(name).decode(back)
    assert again.records == original.records
    assert (again.batch_id, again.sender_bureau, again.sent_at) == (
        original.batch_id,
        original.sender_bureau,
        original.sent_at,
    )


@pytest.mark.parametrize(("name", "sample"), CASES, ids=[f"{n}/{p.name}" for n, p in CASES])
def test_sample_through_canonical_json(name: str, sample: Path) -> None:
    data = sample.read_bytes()
    original = load_adapter(name).decode(data)
    canonical = convert(data, source=name, target="canonical")
    back = convert(
        canonical, source="canonical", target=name, context=EncodeContext.from_batch(original)
    )
    assert load_adapter(name).decode(back).records == original.records


def test_tongliang_spec_example_in_suining_terms(tongliang_header: EncodeContext) -> None:
    data = (SAMPLES / "tongliang" / "spec_example.json").read_bytes()
    xml = convert(data, source="tongliang", target="suining", context=tongliang_header)
    assert xml.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
    text = xml.decode("gb18030")
    for fragment in (
        "<BWBH>TL202611270001</BWBH>",
        "<FSDW>500151</FSDW>",
        "<FSSJ>20261127100000</FSSJ>",
        "<JLS>2</JLS>",
        "<ZCZB>100.000000</ZCZB>",  # 1 000 000.00 元 = 100 万元
        "<BZ>156</BZ>",
        "<ZJLX>1</ZJLX>",
        "<DJZT>1</DJZT>",
        "<CLRQ>20210315</CLRQ>",
        "<DJSJ>20261127093000</DJSJ>",
        "<LYQD>1</LYQD>",
        "<XFLB>1</XFLB>",
        "<SAJE>2999.00</SAJE>",
        "<TSRZJHM/>",
    ):
        assert fragment in text


def test_suining_spec_example_in_tongliang_terms() -> None:
    data = (SAMPLES / "suining" / "spec_example.xml").read_bytes()
    text = convert(data, source="suining", target="tongliang").decode("utf-8")
    for fragment in (
        '"注册资本": "105000.00"',  # 10.5 万元
        '"注册资本币种": "人民币"',
        '"法定代表人证件类型": "居民身份证"',
        '"成立日期": "2019-08-01"',
        '"证据材料": [',
        '"页数": 3',
        '"涉案物品": [',
    ):
        assert fragment in text
    assert "实际经营地址" not in text  # empty optional: omitted
    party = json.loads(text)[1]["当事人"]
    assert list(party) == ["名称", "统一社会信用代码", "地址"]  # empty DSRZJHM omitted


def test_money_is_exact_decimal_yuan() -> None:
    suining = load_adapter("suining").decode(
        (SAMPLES / "suining" / "mixed_gb18030.xml").read_bytes()
    )
    registration = next(r for r in suining.records if isinstance(r, BusinessRegistration))
    assert registration.registered_capital == Decimal("123.45")  # 0.012345 万元
    assert isinstance(registration.registered_capital, Decimal)
    tongliang = load_adapter("tongliang").decode(
        (SAMPLES / "tongliang" / "bom_rare_characters.json").read_bytes()
    )
    complaint = next(r for r in tongliang.records if isinstance(r, ConsumerComplaint))
    assert complaint.amount == Decimal("0.50")
    usd = next(r for r in tongliang.records if isinstance(r, BusinessRegistration))
    assert (usd.registered_capital, usd.registered_capital_currency) == (
        Decimal("2500000.50"),
        "USD",
    )
    xml = load_adapter("suining").encode(
        [usd], EncodeContext("500151", "B1", dt.datetime.now(BEIJING))
    )
    assert "<ZCZB>250.000050</ZCZB>" in xml.decode("gb18030")
    assert "<BZ>840</BZ>" in xml.decode("gb18030")


def test_gb18030_sample_is_real_gb18030_with_non_bmp_characters() -> None:
    data = (SAMPLES / "suining" / "mixed_gb18030.xml").read_bytes()
    assert "𪚥".encode("gb18030") in data
    assert "𪚥".encode() not in data
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    records = load_adapter("suining").decode(data).records
    assert any(isinstance(r, BusinessRegistration) and "𪚥" in r.name for r in records)


def test_tongliang_bom_is_optional() -> None:
    data = (SAMPLES / "tongliang" / "spec_example.json").read_bytes()
    adapter = load_adapter("tongliang")
    assert adapter.decode(codecs.BOM_UTF8 + data).records == adapter.decode(data).records


def test_times_are_aware_beijing_and_written_in_beijing_time() -> None:
    records = (
        load_adapter("tongliang")
        .decode((SAMPLES / "tongliang" / "spec_example.json").read_bytes())
        .records
    )
    complaint = next(r for r in records if isinstance(r, ConsumerComplaint))
    assert complaint.registered_at.utcoffset() == dt.timedelta(hours=8)
    in_utc = complaint.model_copy(
        update={"registered_at": complaint.registered_at.astimezone(dt.UTC)}
    )
    text = load_adapter("tongliang").encode([in_utc], EncodeContext()).decode()
    assert '"登记时间": "2026-11-27 09:30:00"' in text


def test_suining_feedback_type_comes_from_the_status_code() -> None:
    records = (
        load_adapter("suining")
        .decode((SAMPLES / "suining" / "mixed_gb18030.xml").read_bytes())
        .records
    )
    feedback = [r for r in records if isinstance(r, Feedback)]
    assert [(f.status.value, f.original_type) for f in feedback] == [
        ("complaint_accepted", OriginalType.CONSUMER_COMPLAINT),
        ("referral_filed", OriginalType.ENFORCEMENT_REFERRAL),
    ]


def test_referral_evidence_and_items_survive_both_formats(tongliang_header: EncodeContext) -> None:
    data = (SAMPLES / "tongliang" / "referrals_and_feedback.json").read_bytes()
    xml = convert(data, source="tongliang", target="suining", context=tongliang_header)
    referral = next(
        r for r in load_adapter("suining").decode(xml).records if isinstance(r, EnforcementReferral)
    )
    assert [(e.name, e.pages) for e in referral.evidence] == [("抽检报告", 12), ("购货发票", 1)]
    assert referral.evidence[0].sha256.startswith("55c64d0f")
    assert referral.items == ("空调 KFR-35GW 2 台", "安装配件 1 套")
    assert "<ZJCL>" in xml.decode("gb18030") and "<CL>" in xml.decode("gb18030")
