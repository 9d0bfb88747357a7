"""The vocabulary of canonical records: record types, code lists and constrained field types."""

from __future__ import annotations

import enum
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic_core import PydanticCustomError

from gateway.identifiers import check_division_code, check_uscc
from gateway.privacy import PersonalInfo, PIKind


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


def _located(field: str, rule: str, message: str) -> PydanticCustomError:
    # Encode the field into the error type so violations_from can put it back.
    return PydanticCustomError(f"{rule}@{field}", message)
