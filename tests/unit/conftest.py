"""Shared inputs for the tier-1 unit tests: one good dict per canonical record type.

The dicts are what an adapter would hand to :func:`gateway.records.parse_record`;
tests copy one and break exactly one rule.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

# Synthetic people and numbers; the id number is the GB 11643 example.
NAME = "李四"
PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"

GOOD_RECORDS: dict[str, dict[str, Any]] = {
    "business_registration": {
        "record_type": "business_registration",
        "uscc": "91500151MA60K3C286",
        "name": "重庆市铜梁区巴川商贸有限公司",
        "entity_type": "有限责任公司(自然人投资或控股)",
        "legal_representative": NAME,
        "legal_representative_id_type": "resident_id",
        "legal_representative_id_number": ID_NUMBER,
        "registered_capital": "1000000.00",
        "registered_capital_currency": "CNY",
        "established_on": "2020-05-12",
        "address": "重庆市铜梁区巴川街道龙城大道1号",
        "address_division": "500151",
        "business_scope": "日用百货销售;食品销售(仅销售预包装食品)",
        "registration_authority": "重庆市铜梁区市场监督管理局",
        "status": "active",
        "approved_on": "2023-01-05",
        "actual_business_address": "重庆市铜梁区东城街道金砂路8号",
    },
    "consumer_complaint": {
        "record_type": "consumer_complaint",
        "complaint_number": "TL12315-2024-050001",
        "registered_at": "2024-05-20T09:30:00+08:00",
        "channel": "hotline_12315",
        "complainant": {
            "name": NAME,
            "phone": PHONE,
            "id_number": ID_NUMBER,
            "address": "四川省遂宁市船山区河东新区某小区3栋",
        },
        "respondent": {
            "name": "遂宁市船山区某某电器经营部",
            "uscc": "92510903MA6AB7Q52D",
            "address": "四川省遂宁市船山区明月路18号",
            "division": "510903",
        },
        "subject": "购买的空调无法制冷",
        "category": "goods",
        "amount": "2999.00",
        "purchased_on": "2024-05-01",
        "facts": "5月1日购买空调一台,安装后无法制冷,商家拒绝退换。",
        "request": "退货退款",
    },
    "enforcement_referral": {
        "record_type": "enforcement_referral",
        "referral_number": "铜市监移〔2024〕3号",
        "referring_bureau": "重庆市铜梁区市场监督管理局",
        "receiving_bureau": "射洪市市场监督管理局",
        "party": {
            "name": "射洪市某某种植专业合作社",
            "uscc": "93510981MA6XN3P00H",
            "address": "四川省遂宁市射洪市太和街道",
        },
        "violation": "销售不符合食品安全标准的食品",
        "facts": "抽检发现该合作社供应的蔬菜农药残留超标。",
        "legal_basis": "《中华人民共和国食品安全法》第三十四条",
        "found_on": "2024-04-02",
        "evidence": [
            {"name": "抽检报告", "pages": 3, "sha256": "ab" * 32},
            {"name": "现场笔录", "pages": 2, "sha256": "0123456789abcdef" * 4},
        ],
        "items": ["抽检报告", "现场笔录"],
        "contact_name": "王五",
        "contact_phone": "02345678901",
    },
    "feedback": {
        "record_type": "feedback",
        "original_number": "TL12315-2024-050001",
        "original_type": "consumer_complaint",
        "status": "complaint_accepted",
        "note": "已受理,正在联系经营者",
        "handled_at": "2024-05-22T10:00:00+08:00",
        "officer": "赵六",
    },
}

RecordData = Callable[..., dict[str, Any]]


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


@pytest.fixture
def record_data() -> RecordData:
    """``record_data(kind, {"dotted.path": value, ...})``: a fresh good dict, overridden."""

    def make(kind: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        data = copy.deepcopy(GOOD_RECORDS[kind])
        for path, value in (overrides or {}).items():
            _set_path(data, path, value)
        return data

    return make
