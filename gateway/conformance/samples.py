"""Sample canonical records: valid, deterministic, one shape for every user.

The specification's example of each record type (:data:`SAMPLE_DATA`), and
functions that build on them: a record with some fields changed
(:func:`sample_record`), feedback answering a record (:func:`sample_feedback`),
and any number of distinct records, each with its own id (:func:`sample_records`).
The conformance kit corrupts these, the benchmarks send them, and tests start
from them. Pure: no I/O, no randomness unless a ``seed`` asks for it, and then
the same seed gives the same records.

Values are synthetic: the resident id is the GB 11643 example, the phone
numbers are not anyone's.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import types
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from gateway.identifiers import USCC_ALPHABET, check_uscc, uscc_check_char
from gateway.records import (
    Feedback,
    FeedbackStatus,
    OriginalType,
    Record,
    RecordType,
    parse_record,
    record_key,
)

__all__ = [
    "SAMPLE_DATA",
    "complete_uscc",
    "example_record",
    "first_status_for",
    "sample_data",
    "sample_feedback",
    "sample_key",
    "sample_record",
    "sample_records",
]

_SAMPLES: dict[RecordType, dict[str, Any]] = {
    RecordType.BUSINESS_REGISTRATION: {
        "record_type": "business_registration",
        "uscc": "91500151MA60K3C286",
        "name": "重庆龙乡优品食品有限公司",
        "entity_type": "有限责任公司(自然人投资或控股)",
        "legal_representative": "张三",
        "legal_representative_id_type": "resident_id",
        "legal_representative_id_number": "11010519491231002X",
        "registered_capital": "1000000.00",
        "registered_capital_currency": "CNY",
        "established_on": "2021-03-15",
        "address": "重庆市铜梁区东城街道龙城大道100号",
        "address_division": "500151",
        "business_scope": "食品销售；农副产品销售",
        "registration_authority": "重庆市铜梁区市场监督管理局",
        "status": "active",
        "approved_on": "2024-05-06",
    },
    RecordType.CONSUMER_COMPLAINT: {
        "record_type": "consumer_complaint",
        "complaint_number": "TS5001512026112700001",
        "registered_at": "2026-11-27T09:30:00+08:00",
        "channel": "hotline_12315",
        "complainant": {"name": "李四", "phone": "13800138000"},
        "respondent": {
            "name": "遂宁市船山区某某电器商行",
            "uscc": "92510903MA6AB7Q52D",
            "address": "四川省遂宁市船山区明月路8号",
            "division": "510903",
        },
        "subject": "空调",
        "category": "goods",
        "amount": "2999.00",
        "purchased_on": "2026-11-20",
        "facts": "安装后无法制冷，商家拒绝维修。",
        "request": "退货退款",
    },
    RecordType.ENFORCEMENT_REFERRAL: {
        "record_type": "enforcement_referral",
        "referral_number": "遂市监移〔2026〕7号",
        "referring_bureau": "遂宁市市场监督管理局",
        "receiving_bureau": "重庆市铜梁区市场监督管理局",
        "party": {
            "name": "重庆龙乡优品食品有限公司",
            "uscc": "91500151MA60K3C286",
            "address": "重庆市铜梁区东城街道龙城大道100号",
        },
        "violation": "涉嫌销售超过保质期的食品",
        "facts": "2026年11月抽检发现……",
        "legal_basis": "《市场监督管理行政处罚程序规定》第十四条",
        "found_on": "2026-11-25",
        "evidence": [
            {
                "name": "现场检查笔录",
                "pages": 3,
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            }
        ],
        "items": ["过期月饼 20 盒"],
        "contact_name": "赵六",
        "contact_phone": "0825-2220000",
    },
    RecordType.FEEDBACK: {
        "record_type": "feedback",
        "original_number": "TS5001512026112700001",
        "original_type": "consumer_complaint",
        "status": "complaint_accepted",
        "note": "已受理",
        "handled_at": "2026-11-28T09:00:00+08:00",
        "officer": "吴十",
    },
}

SAMPLE_DATA: Mapping[RecordType, Mapping[str, Any]] = types.MappingProxyType(_SAMPLES)
"""The specification's example of each record type, as :func:`parse_record` takes it.

Read-only at the top level; :func:`sample_data` hands out copies to change.
"""

# What sample_feedback writes unless told otherwise (an answer to any record).
_FEEDBACK_DEFAULTS: Mapping[str, Any] = types.MappingProxyType(
    {"note": "已按规定办理", "handled_at": "2026-11-28T15:00:00+08:00", "officer": "王五"}
)


def complete_uscc(first16: str) -> str:
    """A valid USCC from its first 16 characters (registration department, type, division,
    and the first eight characters of the organisation code): the GB 11714 and GB 32100
    check characters are computed."""
    if len(first16) != 16 or any(c not in USCC_ALPHABET for c in first16):
        raise ValueError(f"{first16!r} is not 16 characters of the USCC alphabet")
    # The GB 11714 check character is whichever one makes the whole code pass.
    for org_check in "0123456789X":
        first17 = first16 + org_check
        code = first17 + uscc_check_char(first17)
        if check_uscc(code) is None:
            return code
    raise ValueError(f"no organisation-code check character completes {first16!r}")


def sample_data(record_type: RecordType, **changes: Any) -> dict[str, Any]:
    """A fresh copy of the sample of ``record_type``, top-level fields replaced by ``changes``."""
    return {**copy.deepcopy(dict(_SAMPLES[record_type])), **changes}


def sample_record(record_type: RecordType, **changes: Any) -> Record:
    """The sample of ``record_type`` (with ``changes``), validated."""
    return parse_record(sample_data(record_type, **changes))


def example_record(record_type: RecordType) -> Record:
    """A fixed, valid record of ``record_type`` (the specification examples)."""
    return sample_record(record_type)


def first_status_for(original: OriginalType) -> FeedbackStatus:
    """The first feedback status (in workflow order) that answers an ``original`` record type."""
    return next(status for status in FeedbackStatus if status.answers is original)


def sample_feedback(
    original: Record, status: FeedbackStatus | str | None = None, **changes: Any
) -> Feedback:
    """Feedback answering ``original`` (a complaint or a referral), correlated by its own id.

    ``status`` defaults to the first status that answers ``original``'s type.
    """
    if original.record_type is RecordType.FEEDBACK:
        raise ValueError("feedback answers a complaint or a referral, not feedback")
    answered = OriginalType(original.record_type.value)
    record = parse_record(
        {
            "record_type": "feedback",
            "original_number": record_key(original),
            "original_type": answered.value,
            "status": FeedbackStatus(status or first_status_for(answered)).value,
            **_FEEDBACK_DEFAULTS,
            **changes,
        }
    )
    assert isinstance(record, Feedback)
    return record


def sample_key(record_type: RecordType, index: int) -> str:
    """The own id of the ``index``-th of :func:`sample_records`: distinct for every index.

    Registrations get valid USCCs (``index`` below 31**8), complaints and referrals
    numbers in the two bureaus' styles; feedback answers the ``index``-th complaint.
    """
    if index < 0:
        raise ValueError("index must not be negative")
    if record_type is RecordType.BUSINESS_REGISTRATION:
        body = ""
        rest = index
        for _ in range(8):
            rest, digit = divmod(rest, len(USCC_ALPHABET))
            body = USCC_ALPHABET[digit] + body
        if rest:
            raise ValueError(f"index {index} is too large for a distinct USCC")
        return complete_uscc("91500151" + body)
    if record_type is RecordType.ENFORCEMENT_REFERRAL:
        return f"遂市监移〔2026〕{index + 1}号"
    return f"TS500151{index:013d}"


def _varied(record_type: RecordType, rng: random.Random) -> dict[str, Any]:
    """Field values drawn from ``rng`` that keep a record of ``record_type`` valid."""
    day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(300))
    moment = dt.datetime.combine(day, dt.time(9, rng.randrange(60)), dt.UTC)
    if record_type is RecordType.BUSINESS_REGISTRATION:
        return {
            "registered_capital": str(Decimal(rng.randrange(1, 10**9)).scaleb(-2)),
            "established_on": (day - dt.timedelta(days=3650)).isoformat(),
            "approved_on": day.isoformat(),
        }
    if record_type is RecordType.CONSUMER_COMPLAINT:
        return {
            "amount": str(Decimal(rng.randrange(1, 10**7)).scaleb(-2)),
            "registered_at": moment.isoformat(),
            "purchased_on": (day - dt.timedelta(days=rng.randrange(1, 30))).isoformat(),
        }
    if record_type is RecordType.ENFORCEMENT_REFERRAL:
        return {"found_on": day.isoformat()}
    return {"handled_at": moment.isoformat()}


def sample_records(
    record_type: RecordType,
    count: int,
    *,
    start: int = 0,
    seed: int | None = None,
    keys: Sequence[str] | None = None,
    **changes: Any,
) -> list[Record]:
    """``count`` valid records of ``record_type``, each with its own id.

    The ids are :func:`sample_key` of ``start``, ``start + 1``, ... unless ``keys``
    gives them (one per record). Without ``seed`` every record is the sample with
    only its id changed; with one, amounts, dates and times vary, the same for the
    same seed. ``changes`` apply to every record last.
    """
    if keys is not None and len(keys) != count:
        raise ValueError(f"{len(keys)} keys for {count} records")
    rng = random.Random(seed) if seed is not None else None  # noqa: S311 - test data
    id_field = {
        RecordType.BUSINESS_REGISTRATION: "uscc",
        RecordType.CONSUMER_COMPLAINT: "complaint_number",
        RecordType.ENFORCEMENT_REFERRAL: "referral_number",
        RecordType.FEEDBACK: "original_number",
    }[record_type]
    records: list[Record] = []
    for offset in range(count):
        own_id = keys[offset] if keys is not None else sample_key(record_type, start + offset)
        varied = _varied(record_type, rng) if rng is not None else {}
        records.append(sample_record(record_type, **{id_field: own_id, **varied, **changes}))
    return records
