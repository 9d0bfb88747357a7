"""Tongliang's code tables and field tables, in the order of the specification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters._schema import (
    Codec,
    CodeCodec,
    DateCodec,
    DateTimeCodec,
    Field,
    FieldProblem,
    IntCodec,
    ListCodec,
    MoneyCodec,
    RecordSchema,
    Style,
    TextCodec,
)
from adapters.currencies import CURRENCIES
from gateway.adapter import CodeTable
from gateway.records import (
    BusinessRegistration,
    Channel,
    ConsumerComplaint,
    ConsumptionCategory,
    EnforcementReferral,
    Feedback,
    FeedbackStatus,
    IdType,
    OriginalType,
    RecordType,
    RegistrationStatus,
)

RECORD_TYPE_KEY = "记录类型"

# ---------------------------------------------------------------------------
# Code tables: local word → canonical value, used for both directions.

ID_TYPES = CodeTable(
    "法定代表人证件类型",
    RecordType.BUSINESS_REGISTRATION,
    "legal_representative_id_type",
    {
        "居民身份证": IdType.RESIDENT_ID,
        "护照": IdType.PASSPORT,
        "港澳居民来往内地通行证": IdType.HK_MACAO_PERMIT,
        "台湾居民来往大陆通行证": IdType.TAIWAN_PERMIT,
        "其他": IdType.OTHER,
    },
)
CURRENCY_NAMES = CodeTable(
    "注册资本币种",
    RecordType.BUSINESS_REGISTRATION,
    "registered_capital_currency",
    {currency.name_zh: currency.alpha for currency in CURRENCIES},
    default="人民币",
)
REGISTRATION_STATUSES = CodeTable(
    "登记状态",
    RecordType.BUSINESS_REGISTRATION,
    "status",
    {
        "存续": RegistrationStatus.ACTIVE,
        "吊销": RegistrationStatus.REVOKED,
        "注销": RegistrationStatus.DEREGISTERED,
        "撤销": RegistrationStatus.CANCELLED,
        "迁出": RegistrationStatus.MOVED_OUT,
    },
)
CHANNELS = CodeTable(
    "来源渠道",
    RecordType.CONSUMER_COMPLAINT,
    "channel",
    {
        "12315热线": Channel.HOTLINE_12315,
        "12315平台": Channel.PLATFORM_12315,
        "来信": Channel.LETTER,
        "来访": Channel.VISIT,
        "转办": Channel.TRANSFERRED,
        "其他": Channel.OTHER,
    },
)
CATEGORIES = CodeTable(
    "消费类别",
    RecordType.CONSUMER_COMPLAINT,
    "category",
    {"商品": ConsumptionCategory.GOODS, "服务": ConsumptionCategory.SERVICE},
)
ORIGINAL_TYPES = CodeTable(
    "原记录类型",
    RecordType.FEEDBACK,
    "original_type",
    {
        "消费投诉": OriginalType.CONSUMER_COMPLAINT,
        "案件线索移送": OriginalType.ENFORCEMENT_REFERRAL,
    },
)
# 已办结 closes both a complaint and a referral: the word alone is ambiguous, so
# the status table depends on 原记录类型.
COMPLAINT_STATUSES = CodeTable(
    "办理状态",
    RecordType.FEEDBACK,
    "status",
    {
        "已受理": FeedbackStatus.COMPLAINT_ACCEPTED,
        "不予受理": FeedbackStatus.COMPLAINT_NOT_ACCEPTED,
        "调解中": FeedbackStatus.COMPLAINT_MEDIATING,
        "调解成功": FeedbackStatus.COMPLAINT_MEDIATED,
        "终止调解": FeedbackStatus.COMPLAINT_MEDIATION_TERMINATED,
        "已办结": FeedbackStatus.COMPLAINT_CLOSED,
    },
)
REFERRAL_STATUSES = CodeTable(
    "办理状态",
    RecordType.FEEDBACK,
    "status",
    {
        "已接收": FeedbackStatus.REFERRAL_RECEIVED,
        "已立案": FeedbackStatus.REFERRAL_FILED,
        "不予立案": FeedbackStatus.REFERRAL_NOT_FILED,
        "异议": FeedbackStatus.REFERRAL_OBJECTION,
        "已办结": FeedbackStatus.REFERRAL_CLOSED,
    },
)
_STATUS_TABLES: Mapping[OriginalType, CodeTable] = {
    OriginalType.CONSUMER_COMPLAINT: COMPLAINT_STATUSES,
    OriginalType.ENFORCEMENT_REFERRAL: REFERRAL_STATUSES,
}


class _FeedbackStatusWords(Codec):
    """办理状态, read with the table of the 原记录类型 it answers."""

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        original_word = record.get(ORIGINAL_TYPES.local_field)
        original = (
            ORIGINAL_TYPES.to_canonical(original_word) if isinstance(original_word, str) else None
        )
        if original is None:
            # 原记录类型 reports its own problem; here only an unknown word is news.
            for table in _STATUS_TABLES.values():
                value = table.to_canonical(raw)
                if value is not None:
                    return value
            allowed = " ".join(dict.fromkeys(w for t in _STATUS_TABLES.values() for w in t.codes))
            raise FieldProblem("code.unknown", f"is not a 办理状态; allowed: {allowed}")
        table = _STATUS_TABLES[OriginalType(original)]
        value = table.to_canonical(raw)
        if value is None:
            raise FieldProblem(
                "code.unknown",
                f"is not a 办理状态 of a {original_word}; allowed: {' '.join(table.codes)}",
            )
        return value

    def encode(self, value: Any) -> object:
        status = FeedbackStatus(value)
        code = _STATUS_TABLES[status.answers].to_local(status.value)
        if code is None:  # every status is in one of the two tables
            raise FieldProblem("code.unmapped", f"{status.value} has no 办理状态 word")
        return code


# ---------------------------------------------------------------------------
# Field tables, in the order of the specification.

_TEXT = TextCodec(medium="UTF-8 JSON")
_MONEY = MoneyCodec()
_DATE = DateCodec(separator="-")
_DATETIME = DateTimeCodec(compact=False)


def _field(local: str, canonical: str, codec: Codec | ListCodec = _TEXT, **kw: bool) -> Field:
    return Field(tuple(local.split(".")), canonical, codec, **kw)


_SCHEMAS: tuple[RecordSchema, ...] = (
    RecordSchema(
        "市场主体登记",
        RecordType.BUSINESS_REGISTRATION,
        BusinessRegistration,
        ("统一社会信用代码",),
        (
            _field("统一社会信用代码", "uscc"),
            _field("名称", "name"),
            _field("市场主体类型", "entity_type"),
            _field("法定代表人", "legal_representative"),
            _field("法定代表人证件类型", "legal_representative_id_type", CodeCodec(ID_TYPES)),
            _field("法定代表人证件号码", "legal_representative_id_number"),
            _field("注册资本", "registered_capital", _MONEY),
            _field(
                "注册资本币种",
                "registered_capital_currency",
                CodeCodec(CURRENCY_NAMES),
                optional=True,
            ),
            _field("成立日期", "established_on", _DATE),
            _field("住所", "address"),
            _field("住所行政区划代码", "address_division"),
            _field("经营范围", "business_scope"),
            _field("登记机关", "registration_authority"),
            _field("登记状态", "status", CodeCodec(REGISTRATION_STATUSES)),
            _field("核准日期", "approved_on", _DATE),
            _field("实际经营地址", "actual_business_address", optional=True),
        ),
    ),
    RecordSchema(
        "消费投诉",
        RecordType.CONSUMER_COMPLAINT,
        ConsumerComplaint,
        ("投诉编号",),
        (
            _field("投诉编号", "complaint_number"),
            _field("登记时间", "registered_at", _DATETIME),
            _field("来源渠道", "channel", CodeCodec(CHANNELS)),
            _field("投诉人.姓名", "complainant.name"),
            _field("投诉人.联系电话", "complainant.phone"),
            _field("投诉人.证件号码", "complainant.id_number", optional=True),
            _field("投诉人.地址", "complainant.address", optional=True),
            _field("被投诉人.名称", "respondent.name"),
            _field("被投诉人.统一社会信用代码", "respondent.uscc", optional=True),
            _field("被投诉人.地址", "respondent.address"),
            _field("被投诉人.行政区划代码", "respondent.division"),
            _field("商品或服务名称", "subject"),
            _field("消费类别", "category", CodeCodec(CATEGORIES)),
            _field("涉案金额", "amount", _MONEY),
            _field("消费日期", "purchased_on", _DATE),
            _field("投诉事由", "facts"),
            _field("诉求", "request"),
        ),
    ),
    RecordSchema(
        "案件线索移送",
        RecordType.ENFORCEMENT_REFERRAL,
        EnforcementReferral,
        ("移送文号",),
        (
            _field("移送文号", "referral_number"),
            _field("移送单位", "referring_bureau"),
            _field("接收单位", "receiving_bureau"),
            _field("当事人.名称", "party.name"),
            _field("当事人.统一社会信用代码", "party.uscc", optional=True),
            _field("当事人.证件号码", "party.id_number", optional=True),
            _field("当事人.地址", "party.address"),
            _field("案由", "violation"),
            _field("违法事实", "facts"),
            _field("移送依据", "legal_basis"),
            _field("发现日期", "found_on", _DATE),
            _field(
                "证据材料",
                "evidence",
                ListCodec(
                    item_fields=(
                        _field("名称", "name"),
                        _field("页数", "pages", IntCodec(as_text=False)),
                        _field("SHA256", "sha256"),
                    )
                ),
            ),
            _field("涉案物品", "items", ListCodec(item_codec=_TEXT), optional=True),
            _field("联系人", "contact_name"),
            _field("联系电话", "contact_phone"),
        ),
    ),
    RecordSchema(
        "办理反馈",
        RecordType.FEEDBACK,
        Feedback,
        ("原记录编号",),
        (
            _field("原记录编号", "original_number"),
            _field("原记录类型", "original_type", CodeCodec(ORIGINAL_TYPES)),
            _field("办理状态", "status", _FeedbackStatusWords()),
            _field("说明", "note", optional=True),
            _field("办理时间", "handled_at", _DATETIME),
            _field("承办人", "officer"),
        ),
    ),
)
_BY_LOCAL_TYPE = {schema.local_type: schema for schema in _SCHEMAS}
_BY_RECORD_TYPE = {schema.record_type: schema for schema in _SCHEMAS}
_STYLE = Style(separator=".", omit_empty_optional=True)
_IGNORED = frozenset({RECORD_TYPE_KEY})
