"""Canonical records: the one shape every region's data takes inside the gateway.

Adapters turn local files into these models and back; the node turns them into
protobuf payloads (:mod:`gateway.codec`). Validation lives here, once:

* USCC (GB 32100 + GB 11714), resident id (GB 11643), GB/T 2260 division codes;
* money is :class:`~decimal.Decimal` yuan with at most two decimals — a float is
  refused, never rounded;
* times are timezone-aware; dates are plain dates;
* fields holding personal information carry a :class:`~gateway.privacy.PersonalInfo`
  marker, and no error message ever repeats their value unmasked.

:func:`parse_record` validates untrusted data and raises
:class:`~gateway.errors.RecordInvalid` with one violation per broken rule.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from gateway.errors import FieldViolation, RecordInvalid
from gateway.identifiers import check_division_code, check_resident_id, check_uscc
from gateway.privacy import PersonalInfo, PIKind, escape_controls, mask

__all__ = [
    "BusinessRegistration",
    "Channel",
    "Complainant",
    "ConsumerComplaint",
    "ConsumptionCategory",
    "EnforcementReferral",
    "Evidence",
    "Feedback",
    "FeedbackStatus",
    "IdType",
    "OriginalType",
    "Party",
    "Record",
    "RecordType",
    "RegistrationStatus",
    "Respondent",
    "parse_record",
    "parse_records_json",
    "personal_info_paths",
    "record_key",
    "record_to_json",
    "records_to_json",
    "violations_from",
]

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


class RecordType(enum.StrEnum):
    BUSINESS_REGISTRATION = "business_registration"
    CONSUMER_COMPLAINT = "consumer_complaint"
    ENFORCEMENT_REFERRAL = "enforcement_referral"
    FEEDBACK = "feedback"


class IdType(enum.StrEnum):
    RESIDENT_ID = "resident_id"  # 居民身份证
    PASSPORT = "passport"  # 护照
    HK_MACAO_PERMIT = "hk_macao_permit"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
    OTHER = "other"  # 其他


class RegistrationStatus(enum.StrEnum):
    ACTIVE = "active"  # 存续
    REVOKED = "revoked"  # 吊销 (licence revoked)
    DEREGISTERED = "deregistered"  # 注销
    CANCELLED = "cancelled"  # 撤销 (registration cancelled)
    MOVED_OUT = "moved_out"  # 迁出


class Channel(enum.StrEnum):
    HOTLINE_12315 = "hotline_12315"  # 12315热线
    PLATFORM_12315 = "platform_12315"  # 12315平台
    LETTER = "letter"  # 来信
    VISIT = "visit"  # 来访
    TRANSFERRED = "transferred"  # 转办
    OTHER = "other"  # 其他


class ConsumptionCategory(enum.StrEnum):
    GOODS = "goods"  # 商品
    SERVICE = "service"  # 服务


class OriginalType(enum.StrEnum):
    CONSUMER_COMPLAINT = "consumer_complaint"
    ENFORCEMENT_REFERRAL = "enforcement_referral"


class FeedbackStatus(enum.StrEnum):
    COMPLAINT_ACCEPTED = "complaint_accepted"  # 11 已受理
    COMPLAINT_NOT_ACCEPTED = "complaint_not_accepted"  # 12 不予受理
    COMPLAINT_MEDIATING = "complaint_mediating"  # 13 调解中
    COMPLAINT_MEDIATED = "complaint_mediated"  # 14 调解成功
    COMPLAINT_MEDIATION_TERMINATED = "complaint_mediation_terminated"  # 15 终止调解
    COMPLAINT_CLOSED = "complaint_closed"  # 19 已办结
    REFERRAL_RECEIVED = "referral_received"  # 21 已接收
    REFERRAL_FILED = "referral_filed"  # 22 已立案
    REFERRAL_NOT_FILED = "referral_not_filed"  # 23 不予立案
    REFERRAL_OBJECTION = "referral_objection"  # 24 异议
    REFERRAL_CLOSED = "referral_closed"  # 29 已办结

    @property
    def answers(self) -> OriginalType:
        if self.value.startswith("complaint_"):
            return OriginalType.CONSUMER_COMPLAINT
        return OriginalType.ENFORCEMENT_REFERRAL


# ---------------------------------------------------------------------------
# Constrained field types


def _nonblank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("text.blank", "must not be empty or blank")
    if "\x00" in value:
        raise PydanticCustomError("text.nul", "must not contain NUL characters")
    return value


def _uscc(value: str) -> str:
    problem = check_uscc(value)
    if problem is not None:
        raise PydanticCustomError(problem.rule, "{detail}", {"detail": problem.message})
    return value


def _division(value: str) -> str:
    problem = check_division_code(value)
    if problem is not None:
        raise PydanticCustomError(problem.rule, "{detail}", {"detail": problem.message})
    return value


def _money(value: Any) -> Any:
    if isinstance(value, float):
        raise PydanticCustomError(
            "money.float", "money must be a decimal string, never a binary float"
        )
    if isinstance(value, str) and not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value.strip()):
        raise PydanticCustomError("money.format", "must be a plain decimal number like 2999.00")
    return value


def _sha256_hex(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise PydanticCustomError("sha256.format", "must be 64 hexadecimal characters")
    return value.lower()


Text = Annotated[str, AfterValidator(_nonblank)]
OptionalText = Annotated[str, AfterValidator(_nonblank)] | None
Uscc = Annotated[str, AfterValidator(_uscc)]
DivisionCode = Annotated[str, AfterValidator(_division)]
Yuan = Annotated[Decimal, BeforeValidator(_money), Field(ge=0, decimal_places=2, max_digits=20)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
PersonName = Annotated[str, AfterValidator(_nonblank), PersonalInfo(PIKind.NAME)]
Phone = Annotated[str, AfterValidator(_nonblank), PersonalInfo(PIKind.PHONE)]
IdNumber = Annotated[str, AfterValidator(_nonblank), PersonalInfo(PIKind.ID_NUMBER)]
HomeAddress = Annotated[str, AfterValidator(_nonblank), PersonalInfo(PIKind.ADDRESS)]
Sha256Hex = Annotated[str, AfterValidator(_sha256_hex)]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_max_length=8000,
        use_enum_values=False,
        ser_json_timedelta="iso8601",
    )


# ---------------------------------------------------------------------------
# Business registration — 市场主体登记


class BusinessRegistration(_Model):
    record_type: Literal[RecordType.BUSINESS_REGISTRATION] = RecordType.BUSINESS_REGISTRATION
    uscc: Uscc
    name: Annotated[Text, Field(max_length=200)]
    entity_type: Text
    legal_representative: PersonName
    legal_representative_id_type: IdType
    legal_representative_id_number: IdNumber
    registered_capital: Yuan
    registered_capital_currency: Currency = "CNY"
    established_on: dt.date
    address: Text
    address_division: DivisionCode
    business_scope: Annotated[Text, Field(max_length=4000)]
    registration_authority: Text
    status: RegistrationStatus
    approved_on: dt.date
    actual_business_address: OptionalText = None

    @model_validator(mode="after")
    def _id_number_matches_type(self) -> BusinessRegistration:
        if self.legal_representative_id_type is IdType.RESIDENT_ID:
            problem = check_resident_id(self.legal_representative_id_number)
            if problem is not None:
                raise _located("legal_representative_id_number", problem.rule, problem.message)
        return self


# ---------------------------------------------------------------------------
# Consumer complaint — 消费投诉


class Complainant(_Model):
    name: PersonName
    phone: Phone
    id_number: Annotated[str, PersonalInfo(PIKind.ID_NUMBER)] | None = None
    address: Annotated[str, PersonalInfo(PIKind.ADDRESS)] | None = None


class Respondent(_Model):
    name: Text
    uscc: Uscc | None = None
    address: Text
    division: DivisionCode


class ConsumerComplaint(_Model):
    record_type: Literal[RecordType.CONSUMER_COMPLAINT] = RecordType.CONSUMER_COMPLAINT
    complaint_number: Annotated[Text, Field(max_length=40)]
    registered_at: AwareDatetime
    channel: Channel
    complainant: Complainant
    respondent: Respondent
    subject: Text
    category: ConsumptionCategory
    amount: Yuan
    purchased_on: dt.date
    facts: Annotated[Text, Field(max_length=4000)]
    request: Text

    @model_validator(mode="after")
    def _purchase_before_registration(self) -> ConsumerComplaint:
        if self.purchased_on > self.registered_at.astimezone(BEIJING).date():
            raise _located(
                "purchased_on",
                "complaint.purchase_after_registration",
                "date of purchase is after the complaint was registered",
            )
        return self


# ---------------------------------------------------------------------------
# Enforcement referral — 案件线索移送


class Party(_Model):
    name: Text
    uscc: Uscc | None = None
    id_number: Annotated[str, PersonalInfo(PIKind.ID_NUMBER)] | None = None
    address: Text

    @model_validator(mode="after")
    def _one_identifier(self) -> Party:
        if not self.uscc and not self.id_number:
            raise PydanticCustomError(
                "party.identifier", "a party needs a USCC or an id number (one of the two)"
            )
        return self


class Evidence(_Model):
    name: Text
    pages: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
    sha256: Sha256Hex


class EnforcementReferral(_Model):
    record_type: Literal[RecordType.ENFORCEMENT_REFERRAL] = RecordType.ENFORCEMENT_REFERRAL
    referral_number: Annotated[Text, Field(max_length=100)]
    referring_bureau: Text
    receiving_bureau: Text
    party: Party
    violation: Text
    facts: Annotated[Text, Field(max_length=8000)]
    legal_basis: Text
    found_on: dt.date
    evidence: tuple[Evidence, ...] = ()
    items: tuple[Text, ...] = ()
    # The contact is an official, but a natural person all the same: masked like PI.
    contact_name: PersonName
    contact_phone: Phone


# ---------------------------------------------------------------------------
# Feedback — 办理反馈


class Feedback(_Model):
    record_type: Literal[RecordType.FEEDBACK] = RecordType.FEEDBACK
    original_number: Annotated[Text, Field(max_length=100)]
    original_type: OriginalType
    status: FeedbackStatus
    note: Annotated[str, Field(max_length=4000)] | None = None
    handled_at: AwareDatetime
    officer: PersonName

    @model_validator(mode="after")
    def _status_fits_original(self) -> Feedback:
        if self.status.answers is not self.original_type:
            raise _located(
                "status",
                "feedback.status_type",
                f"status {self.status.value} does not answer a {self.original_type.value}",
            )
        return self


Record = Annotated[
    BusinessRegistration | ConsumerComplaint | EnforcementReferral | Feedback,
    Field(discriminator="record_type"),
]
_RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)
_RECORDS_ADAPTER: TypeAdapter[list[Record]] = TypeAdapter(list[Record])


def record_key(record: Record) -> str:
    """The record's own identifier at its origin (USCC, complaint or referral number)."""
    match record:
        case BusinessRegistration():
            return record.uscc
        case ConsumerComplaint():
            return record.complaint_number
        case EnforcementReferral():
            return record.referral_number
        case Feedback():
            return record.original_number


# ---------------------------------------------------------------------------
# Validation errors → field violations


def _located(field: str, rule: str, message: str) -> PydanticCustomError:
    # Encode the field into the error type so violations_from can put it back.
    return PydanticCustomError(f"{rule}@{field}", message)


def _pi_kind_at(model: type[BaseModel] | None, path: tuple[str | int, ...]) -> PIKind | None:
    """The PI kind of the field at ``path`` under ``model``, if it is marked."""
    current: Any = model
    kind: PIKind | None = None
    for part in path:
        if isinstance(part, int) or current is None or not isinstance(current, type):
            continue
        if not issubclass(current, BaseModel):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        kind = _field_pi(info)
        current = _model_in(info.annotation)
    return kind


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


_MODELS: dict[str, type[BaseModel]] = {
    RecordType.BUSINESS_REGISTRATION.value: BusinessRegistration,
    RecordType.CONSUMER_COMPLAINT.value: ConsumerComplaint,
    RecordType.ENFORCEMENT_REFERRAL.value: EnforcementReferral,
    RecordType.FEEDBACK.value: Feedback,
}


_MISSING: Any = object()


def _shown(value: Any, kind: PIKind | None) -> str:
    text = value if isinstance(value, str) else repr(value)
    if kind is not None:
        # Whatever its type (a spreadsheet may hand over a phone number as an int).
        text = mask(kind, value if isinstance(value, str) else str(value))
    text = escape_controls(text)
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def violations_from(exc: ValidationError, model: type[BaseModel] | None) -> list[FieldViolation]:
    """Turn a pydantic error into violations naming field and rule, PI masked."""
    out: list[FieldViolation] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        rule = err["type"]
        message = err["msg"]
        value = err.get("input", _MISSING)
        if "@" in rule:
            rule, _, located = rule.partition("@")
            loc = (*loc, *located.split("."))
            for part in located.split("."):
                value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
        # A list of records puts the position first: keep it, look past it.
        prefix = loc[:1] if loc and isinstance(loc[0], int) else ()
        loc = loc[len(prefix) :]
        if model is None and loc and isinstance(loc[0], str) and loc[0] in _MODELS:
            # Discriminated union: the first location part is the tag.
            model_at: type[BaseModel] | None = _MODELS[loc[0]]
            loc = loc[1:]
        else:
            model_at = model
        # pydantic puts function-validator names into loc for Annotated types; drop them.
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
        kind = _pi_kind_at(model_at, loc)
        field = ".".join(str(p) for p in (*prefix, *loc)) or "(record)"
        shown = value is not _MISSING and not isinstance(value, dict | list | tuple)
        if shown and rule not in ("missing", "extra_forbidden"):
            message = f"{message} (value {_shown(value, kind)})"
        out.append(FieldViolation(field=field, rule=rule, message=message))
    return out


def parse_record(data: Any, *, context: str = "record") -> Record:
    """Validate untrusted data (a dict, or a model) into a canonical record."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    try:
        return _RECORD_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise RecordInvalid(violations_from(exc, None), context=context) from None


def parse_records_json(text: str | bytes, *, context: str = "file") -> list[Record]:
    """Validate canonical JSON (a list of records, each with ``record_type``)."""
    try:
        return _RECORDS_ADAPTER.validate_json(text)
    except ValidationError as exc:
        violations = violations_from(exc, None)
        raise RecordInvalid(violations, context=context) from None


def record_to_json(record: Record) -> bytes:
    return _RECORD_ADAPTER.dump_json(record, indent=2)


def records_to_json(records: list[Record]) -> bytes:
    return _RECORDS_ADAPTER.dump_json(records, indent=2)


def personal_info_paths(model: type[BaseModel], prefix: str = "") -> dict[str, PIKind]:
    """Every PI-marked field under ``model`` as dotted path → kind."""
    found: dict[str, PIKind] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        kind = _field_pi(info)
        if kind is not None:
            found[path] = kind
        nested = _model_in(info.annotation)
        if nested is not None:
            found.update(personal_info_paths(nested, f"{path}."))
    return found


def _field_pi(info: FieldInfo) -> PIKind | None:
    """The PI marker of a field, whether on the field or inside an ``X | None``."""
    for meta in info.metadata:
        if isinstance(meta, PersonalInfo):
            return meta.kind
    for arg in getattr(info.annotation, "__args__", ()):
        for meta in getattr(arg, "__metadata__", ()):
            if isinstance(meta, PersonalInfo):
                return meta.kind
    return None
