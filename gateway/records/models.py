"""The canonical record models, one per record type, and the union of them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    Field,
    TypeAdapter,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.clock import beijing_date
from gateway.identifiers import check_resident_id
from gateway.privacy import PersonalInfo, PIKind
from gateway.records.vocabulary import (
    Channel,
    ConsumptionCategory,
    Currency,
    DivisionCode,
    FeedbackStatus,
    IdNumber,
    IdType,
    OptionalText,
    OriginalType,
    PersonName,
    Phone,
    RecordType,
    RegistrationStatus,
    Sha256Hex,
    Text,
    Uscc,
    Yuan,
    _located,
    _Model,
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
        if self.purchased_on > beijing_date(self.registered_at):
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
