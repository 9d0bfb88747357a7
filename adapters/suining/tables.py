"""Suining's code tables and field tables: where each canonical value sits in a message."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from adapters._schema import (
    Codec,
    CodeCodec,
    DateCodec,
    DateTimeCodec,
    Field,
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
    RecordType,
    RegistrationStatus,
)

ROOT, HEADER, BODY = "SJBW", "BWT", "BWTI"
HEADER_FIELDS = ("BWBH", "FSDW", "FSSJ", "JLS")

# ---------------------------------------------------------------------------
# Code tables: local numeric code → canonical value, used for both directions.

ID_TYPES = CodeTable(
    "ZJLX",
    RecordType.BUSINESS_REGISTRATION,
    "legal_representative_id_type",
    {
        "1": IdType.RESIDENT_ID,
        "2": IdType.PASSPORT,
        "3": IdType.HK_MACAO_PERMIT,
        "4": IdType.TAIWAN_PERMIT,
        "9": IdType.OTHER,
    },
)
CURRENCY_NUMBERS = CodeTable(
    "BZ",
    RecordType.BUSINESS_REGISTRATION,
    "registered_capital_currency",
    {currency.numeric: currency.alpha for currency in CURRENCIES},
    default="156",
)
REGISTRATION_STATUSES = CodeTable(
    "DJZT",
    RecordType.BUSINESS_REGISTRATION,
    "status",
    {
        "1": RegistrationStatus.ACTIVE,
        "2": RegistrationStatus.REVOKED,
        "3": RegistrationStatus.DEREGISTERED,
        "4": RegistrationStatus.CANCELLED,
        "5": RegistrationStatus.MOVED_OUT,
    },
)
CHANNELS = CodeTable(
    "LYQD",
    RecordType.CONSUMER_COMPLAINT,
    "channel",
    {
        "1": Channel.HOTLINE_12315,
        "2": Channel.PLATFORM_12315,
        "3": Channel.LETTER,
        "4": Channel.VISIT,
        "5": Channel.TRANSFERRED,
        "9": Channel.OTHER,
    },
)
CATEGORIES = CodeTable(
    "XFLB",
    RecordType.CONSUMER_COMPLAINT,
    "category",
    {"1": ConsumptionCategory.GOODS, "2": ConsumptionCategory.SERVICE},
)
# 1x codes answer a complaint, 2x a referral: BLFK has no original-type tag.
FEEDBACK_STATUSES = CodeTable(
    "BLZT",
    RecordType.FEEDBACK,
    "status",
    {
        "11": FeedbackStatus.COMPLAINT_ACCEPTED,
        "12": FeedbackStatus.COMPLAINT_NOT_ACCEPTED,
        "13": FeedbackStatus.COMPLAINT_MEDIATING,
        "14": FeedbackStatus.COMPLAINT_MEDIATED,
        "15": FeedbackStatus.COMPLAINT_MEDIATION_TERMINATED,
        "19": FeedbackStatus.COMPLAINT_CLOSED,
        "21": FeedbackStatus.REFERRAL_RECEIVED,
        "22": FeedbackStatus.REFERRAL_FILED,
        "23": FeedbackStatus.REFERRAL_NOT_FILED,
        "24": FeedbackStatus.REFERRAL_OBJECTION,
        "29": FeedbackStatus.REFERRAL_CLOSED,
    },
)


def _original_type_from_status(canonical: dict[str, Any]) -> None:
    status = canonical.get("status")
    if status is not None:
        canonical["original_type"] = FeedbackStatus(status).answers


# ---------------------------------------------------------------------------
# Field tables, in the order of the specification.

# XML 1.0 cannot carry these characters at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT = TextCodec(unencodable=_NOT_XML, medium="XML 1.0")
_DATE = DateCodec(separator="")
_DATETIME = DateTimeCodec(compact=True)


def _field(local: str, canonical: str, codec: Codec | ListCodec = _TEXT, **kw: bool) -> Field:
    return Field((local,), canonical, codec, **kw)


_SCHEMAS: tuple[RecordSchema, ...] = (
    RecordSchema(
        "SCZTDJ",
        RecordType.BUSINESS_REGISTRATION,
        BusinessRegistration,
        ("TYSHXYDM",),
        (
            _field("TYSHXYDM", "uscc"),
            _field("ZTMC", "name"),
            _field("ZTLX", "entity_type"),
            _field("FDDBR", "legal_representative"),
            _field("ZJLX", "legal_representative_id_type", CodeCodec(ID_TYPES)),
            _field("ZJHM", "legal_representative_id_number"),
            _field(
                "ZCZB",
                "registered_capital",
                MoneyCodec(scale=Decimal(10000), places=6, unit="万元"),
            ),
            _field("BZ", "registered_capital_currency", CodeCodec(CURRENCY_NUMBERS), optional=True),
            _field("CLRQ", "established_on", _DATE),
            _field("ZS", "address"),
            _field("ZSXZQH", "address_division"),
            _field("JYFW", "business_scope"),
            _field("DJJG", "registration_authority"),
            _field("DJZT", "status", CodeCodec(REGISTRATION_STATUSES)),
            _field("HZRQ", "approved_on", _DATE),
            _field("SJJYDZ", "actual_business_address", optional=True),
        ),
    ),
    RecordSchema(
        "XFTS",
        RecordType.CONSUMER_COMPLAINT,
        ConsumerComplaint,
        ("TSBH",),
        (
            _field("TSBH", "complaint_number"),
            _field("DJSJ", "registered_at", _DATETIME),
            _field("LYQD", "channel", CodeCodec(CHANNELS)),
            _field("TSRXM", "complainant.name"),
            _field("TSRDH", "complainant.phone"),
            _field("TSRZJHM", "complainant.id_number", optional=True),
            _field("TSRDZ", "complainant.address", optional=True),
            _field("BTSRMC", "respondent.name"),
            _field("BTSRTYDM", "respondent.uscc", optional=True),
            _field("BTSRDZ", "respondent.address"),
            _field("BTSRXZQH", "respondent.division"),
            _field("SPFWMC", "subject"),
            _field("XFLB", "category", CodeCodec(CATEGORIES)),
            _field("SAJE", "amount", MoneyCodec()),
            _field("XFRQ", "purchased_on", _DATE),
            _field("TSSY", "facts"),
            _field("SQ", "request"),
        ),
    ),
    RecordSchema(
        "AJYS",
        RecordType.ENFORCEMENT_REFERRAL,
        EnforcementReferral,
        ("YSWH",),
        (
            _field("YSWH", "referral_number"),
            _field("YSDW", "referring_bureau"),
            _field("JSDW", "receiving_bureau"),
            _field("DSRMC", "party.name"),
            _field("DSRTYDM", "party.uscc", optional=True),
            _field("DSRZJHM", "party.id_number", optional=True),
            _field("DSRDZ", "party.address"),
            _field("AY", "violation"),
            _field("WFSS", "facts"),
            _field("YSYJ", "legal_basis"),
            _field("FXRQ", "found_on", _DATE),
            _field(
                "ZJCL",
                "evidence",
                ListCodec(
                    item_tag="CL",
                    item_fields=(
                        _field("MC", "name"),
                        _field("YS", "pages", IntCodec(as_text=True)),
                        _field("SHA256", "sha256"),
                    ),
                ),
            ),
            _field("SAWP", "items", ListCodec(item_tag="WP", item_codec=_TEXT), optional=True),
            _field("LXR", "contact_name"),
            _field("LXDH", "contact_phone"),
        ),
    ),
    RecordSchema(
        "BLFK",
        RecordType.FEEDBACK,
        Feedback,
        ("YJLBH",),
        (
            _field("YJLBH", "original_number"),
            _field("BLZT", "status", CodeCodec(FEEDBACK_STATUSES)),
            _field("SM", "note", optional=True),
            _field("BLSJ", "handled_at", _DATETIME),
            _field("CBR", "officer"),
        ),
        complete=_original_type_from_status,
    ),
)
_BY_TAG = {schema.local_type: schema for schema in _SCHEMAS}
_BY_RECORD_TYPE = {schema.record_type: schema for schema in _SCHEMAS}
_STYLE = Style(separator="/", omit_empty_optional=False)
