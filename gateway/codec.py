"""Canonical records ⇄ protobuf payloads (``chuanyu.exchange.v1.Record``).

Encoding is deterministic (``SerializeToString(deterministic=True)``) so the
same record always gives the same payload bytes. Decoding validates: the bytes
a peer sends are untrusted, so :func:`decode_payload` returns a record only
after :func:`gateway.records.parse_record` accepted it.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from chuanyu.exchange.v1 import records_pb2 as pb
from gateway.clock import from_timestamp, to_timestamp
from gateway.errors import EnvelopeMalformed
from gateway.records import (
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    Record,
    RecordType,
    parse_record,
)

__all__ = [
    "decode_payload",
    "encode_payload",
    "record_from_proto",
    "record_to_proto",
    "record_type_from_proto",
    "record_type_to_proto",
    "to_datetime",
]

_RECORD_TYPE_PREFIX = "RECORD_TYPE_"


def record_type_to_proto(record_type: RecordType | str) -> pb.RecordType.ValueType:
    return pb.RecordType.Value(_RECORD_TYPE_PREFIX + str(record_type).upper())


def record_type_from_proto(value: int) -> RecordType:
    """The canonical record type; ``EnvelopeMalformed`` for unknown or unspecified."""
    name = _name(pb.RecordType, value)
    if not name.startswith(_RECORD_TYPE_PREFIX):
        raise EnvelopeMalformed(f"unknown record type {value}")
    if name == "RECORD_TYPE_UNSPECIFIED":
        raise EnvelopeMalformed("record type is unspecified")
    return RecordType(name.removeprefix(_RECORD_TYPE_PREFIX).lower())


def _enum_to_proto(prefix: str, member: enum.Enum) -> str:
    return f"{prefix}_{str(member.value).upper()}"


def _name(enum_type: Any, value: int) -> str:
    # proto3 enums are open: a peer may send a number we do not define.
    try:
        return str(enum_type.Name(value))
    except ValueError:
        return f"undefined value {value}"


def _enum_from_proto(prefix: str, name: str) -> str:
    # An unknown or unspecified value becomes a string the validator refuses by name.
    return name.removeprefix(prefix + "_").lower()


def to_datetime(ts: Timestamp, *, field: str) -> dt.datetime:
    """An aware datetime, or ``EnvelopeMalformed`` naming ``field`` when out of range.

    protobuf represents any 64-bit seconds value; Python's datetime only years 1-9999.
    """
    try:
        return from_timestamp(ts)
    except (ValueError, OverflowError) as exc:
        raise EnvelopeMalformed(
            f"{field} is not a representable time (seconds={ts.seconds}, nanos={ts.nanos})"
        ) from exc


def _datetime(message: Any, field: str) -> dt.datetime | str | None:
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    try:
        return from_timestamp(ts)
    except (ValueError, OverflowError):
        # Handed on as text, so the record's validation names the field and refuses it.
        return f"out-of-range timestamp {ts.seconds}s"


def _opt(value: str) -> str | None:
    return value or None


def record_to_proto(record: Record) -> pb.Record:
    match record:
        case BusinessRegistration():
            return pb.Record(
                business_registration=pb.BusinessRegistration(
                    uscc=record.uscc,
                    name=record.name,
                    entity_type=record.entity_type,
                    legal_representative=record.legal_representative,
                    legal_representative_id_type=pb.IdType.Value(
                        _enum_to_proto("ID_TYPE", record.legal_representative_id_type)
                    ),
                    legal_representative_id_number=record.legal_representative_id_number,
                    registered_capital=pb.Money(
                        amount=format(record.registered_capital, "f"),
                        currency=record.registered_capital_currency,
                    ),
                    established_on=record.established_on.isoformat(),
                    address=record.address,
                    address_division=record.address_division,
                    business_scope=record.business_scope,
                    registration_authority=record.registration_authority,
                    status=pb.RegistrationStatus.Value(
                        _enum_to_proto("REGISTRATION_STATUS", record.status)
                    ),
                    approved_on=record.approved_on.isoformat(),
                    actual_business_address=record.actual_business_address or "",
                )
            )
        case ConsumerComplaint():
            c, r = record.complainant, record.respondent
            return pb.Record(
                consumer_complaint=pb.ConsumerComplaint(
                    complaint_number=record.complaint_number,
                    registered_at=to_timestamp(record.registered_at),
                    channel=pb.Channel.Value(_enum_to_proto("CHANNEL", record.channel)),
                    complainant=pb.Complainant(
                        name=c.name,
                        phone=c.phone,
                        id_number=c.id_number or "",
                        address=c.address or "",
                    ),
                    respondent=pb.Respondent(
                        name=r.name, uscc=r.uscc or "", address=r.address, division=r.division
                    ),
                    subject=record.subject,
                    category=pb.ConsumptionCategory.Value(
                        _enum_to_proto("CONSUMPTION_CATEGORY", record.category)
                    ),
                    amount=format(record.amount, "f"),
                    purchased_on=record.purchased_on.isoformat(),
                    facts=record.facts,
                    request=record.request,
                )
            )
        case EnforcementReferral():
            p = record.party
            return pb.Record(
                enforcement_referral=pb.EnforcementReferral(
                    referral_number=record.referral_number,
                    referring_bureau=record.referring_bureau,
                    receiving_bureau=record.receiving_bureau,
                    party=pb.Party(
                        name=p.name,
                        uscc=p.uscc or "",
                        id_number=p.id_number or "",
                        address=p.address,
                    ),
                    violation=record.violation,
                    facts=record.facts,
                    legal_basis=record.legal_basis,
                    found_on=record.found_on.isoformat(),
                    evidence=[
                        pb.Evidence(name=e.name, pages=e.pages, sha256=e.sha256)
                        for e in record.evidence
                    ],
                    items=list(record.items),
                    contact_name=record.contact_name,
                    contact_phone=record.contact_phone,
                )
            )
        case Feedback():
            return pb.Record(
                feedback=pb.Feedback(
                    original_number=record.original_number,
                    original_type=record_type_to_proto(record.original_type),
                    status=pb.FeedbackStatus.Value(
                        _enum_to_proto("FEEDBACK_STATUS", record.status)
                    ),
                    note=record.note or "",
                    handled_at=to_timestamp(record.handled_at),
                    officer=record.officer,
                )
            )


def record_from_proto(message: pb.Record) -> Record:
    """Validate a protobuf record into a canonical one (``RecordInvalid`` if it breaks a rule)."""
    kind = message.WhichOneof("kind")
    data: dict[str, Any]
    if kind == "business_registration":
        b = message.business_registration
        data = {
            "record_type": RecordType.BUSINESS_REGISTRATION,
            "uscc": b.uscc,
            "name": b.name,
            "entity_type": b.entity_type,
            "legal_representative": b.legal_representative,
            "legal_representative_id_type": _enum_from_proto(
                "ID_TYPE", _name(pb.IdType, b.legal_representative_id_type)
            ),
            "legal_representative_id_number": b.legal_representative_id_number,
            "registered_capital": b.registered_capital.amount,
            "registered_capital_currency": b.registered_capital.currency or "CNY",
            "established_on": b.established_on,
            "address": b.address,
            "address_division": b.address_division,
            "business_scope": b.business_scope,
            "registration_authority": b.registration_authority,
            "status": _enum_from_proto(
                "REGISTRATION_STATUS", _name(pb.RegistrationStatus, b.status)
            ),
            "approved_on": b.approved_on,
            "actual_business_address": _opt(b.actual_business_address),
        }
    elif kind == "consumer_complaint":
        c = message.consumer_complaint
        data = {
            "record_type": RecordType.CONSUMER_COMPLAINT,
            "complaint_number": c.complaint_number,
            "registered_at": _datetime(c, "registered_at"),
            "channel": _enum_from_proto("CHANNEL", _name(pb.Channel, c.channel)),
            "complainant": {
                "name": c.complainant.name,
                "phone": c.complainant.phone,
                "id_number": _opt(c.complainant.id_number),
                "address": _opt(c.complainant.address),
            },
            "respondent": {
                "name": c.respondent.name,
                "uscc": _opt(c.respondent.uscc),
                "address": c.respondent.address,
                "division": c.respondent.division,
            },
            "subject": c.subject,
            "category": _enum_from_proto(
                "CONSUMPTION_CATEGORY", _name(pb.ConsumptionCategory, c.category)
            ),
            "amount": c.amount,
            "purchased_on": c.purchased_on,
            "facts": c.facts,
            "request": c.request,
        }
    elif kind == "enforcement_referral":
        e = message.enforcement_referral
        data = {
            "record_type": RecordType.ENFORCEMENT_REFERRAL,
            "referral_number": e.referral_number,
            "referring_bureau": e.referring_bureau,
            "receiving_bureau": e.receiving_bureau,
            "party": {
                "name": e.party.name,
                "uscc": _opt(e.party.uscc),
                "id_number": _opt(e.party.id_number),
                "address": e.party.address,
            },
            "violation": e.violation,
            "facts": e.facts,
            "legal_basis": e.legal_basis,
            "found_on": e.found_on,
            "evidence": [
                {"name": x.name, "pages": x.pages, "sha256": x.sha256} for x in e.evidence
            ],
            "items": list(e.items),
            "contact_name": e.contact_name,
            "contact_phone": e.contact_phone,
        }
    elif kind == "feedback":
        f = message.feedback
        data = {
            "record_type": RecordType.FEEDBACK,
            "original_number": f.original_number,
            "original_type": _enum_from_proto("RECORD_TYPE", _name(pb.RecordType, f.original_type)),
            "status": _enum_from_proto("FEEDBACK_STATUS", _name(pb.FeedbackStatus, f.status)),
            "note": _opt(f.note),
            "handled_at": _datetime(f, "handled_at"),
            "officer": f.officer,
        }
    else:
        raise EnvelopeMalformed("payload holds no record (the oneof 'kind' is empty)")
    return parse_record(data, context=f"{kind} payload")


def encode_payload(record: Record) -> bytes:
    return record_to_proto(record).SerializeToString(deterministic=True)


def decode_payload(payload: bytes) -> Record:
    """Parse and validate payload bytes from a peer."""
    message = pb.Record()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise EnvelopeMalformed(f"payload is not a chuanyu.exchange.v1.Record: {exc}") from exc
    return record_from_proto(message)
