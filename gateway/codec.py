"""Canonical records ⇄ protobuf payloads (``chuanyu.exchange.v1.Record``).

Both directions walk one declarative table per record type (:data:`_TABLES`): each
canonical field, the protobuf field of the same name, and the codec between them.
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


# ---------------------------------------------------------------------------
# Field codecs: one canonical value ⇄ one protobuf field of the same name


class _Codec:
    """A canonical field and the protobuf field of the same name (plain values)."""

    def encode(self, record: Any, name: str) -> dict[str, Any]:
        """Constructor arguments of the protobuf message for ``record``'s field ``name``."""
        return {name: self.to_proto(getattr(record, name))}

    def decode(self, message: Any, name: str) -> dict[str, Any]:
        """Canonical data (as :func:`parse_record` takes it) for ``message``'s field ``name``."""
        return {name: self.from_proto(message, name)}

    def to_proto(self, value: Any) -> Any:
        return value

    def from_proto(self, message: Any, name: str) -> Any:
        return getattr(message, name)


class _Optional(_Codec):
    """Absent canonically (``None``) is the empty string on the wire, and back."""

    def to_proto(self, value: Any) -> Any:
        return value or ""

    def from_proto(self, message: Any, name: str) -> Any:
        return getattr(message, name) or None


class _Date(_Codec):
    def to_proto(self, value: Any) -> Any:
        return value.isoformat()


class _Time(_Codec):
    def to_proto(self, value: Any) -> Any:
        return to_timestamp(value)

    def from_proto(self, message: Any, name: str) -> Any:
        if not message.HasField(name):
            return None
        ts: Timestamp = getattr(message, name)
        try:
            return from_timestamp(ts)
        except (ValueError, OverflowError):
            # Handed on as text, so the record's validation names the field and refuses it.
            return f"out-of-range timestamp {ts.seconds}s"


class _Decimal(_Codec):
    def to_proto(self, value: Any) -> Any:
        return format(value, "f")


class _List(_Codec):
    def to_proto(self, value: Any) -> Any:
        return list(value)

    def from_proto(self, message: Any, name: str) -> Any:
        return list(getattr(message, name))


class _Enum(_Codec):
    """A canonical enum member ⇄ the protobuf enum value ``PREFIX_MEMBER``."""

    def __init__(self, enum_type: Any, prefix: str) -> None:
        self.enum_type = enum_type
        self.prefix = prefix

    def to_proto(self, value: Any) -> Any:
        return self.enum_type.Value(_enum_to_proto(self.prefix, value))

    def from_proto(self, message: Any, name: str) -> Any:
        return _enum_from_proto(self.prefix, _name(self.enum_type, getattr(message, name)))


class _Message(_Codec):
    """A nested canonical model ⇄ a nested protobuf message, field by field."""

    def __init__(self, message_type: Any, fields: _Table) -> None:
        self.message_type = message_type
        self.fields = fields

    def to_proto(self, value: Any) -> Any:
        return self.message_type(**_encode_fields(value, self.fields))

    def from_proto(self, message: Any, name: str) -> Any:
        return _decode_fields(getattr(message, name), self.fields)


class _Repeated(_Message):
    """A sequence of nested models ⇄ a repeated protobuf message."""

    def to_proto(self, value: Any) -> Any:
        return [self.message_type(**_encode_fields(item, self.fields)) for item in value]

    def from_proto(self, message: Any, name: str) -> Any:
        return [_decode_fields(item, self.fields) for item in getattr(message, name)]


class _Money(_Codec):
    """``registered_capital`` and its currency ⇄ one ``Money`` (no currency means CNY)."""

    def encode(self, record: Any, name: str) -> dict[str, Any]:
        amount = format(getattr(record, name), "f")
        return {name: pb.Money(amount=amount, currency=getattr(record, f"{name}_currency"))}

    def decode(self, message: Any, name: str) -> dict[str, Any]:
        money = getattr(message, name)
        return {name: money.amount, f"{name}_currency": money.currency or "CNY"}


_Table = tuple[tuple[str, _Codec], ...]


def _encode_fields(model: Any, fields: _Table) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for name, codec in fields:
        arguments.update(codec.encode(model, name))
    return arguments


def _decode_fields(message: Any, fields: _Table) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, codec in fields:
        data.update(codec.decode(message, name))
    return data


_PLAIN, _OPTIONAL, _DATE, _TIME = _Codec(), _Optional(), _Date(), _Time()

# Per record type: its protobuf message (the ``kind`` oneof member named like the record
# type) and its fields, in the order of the .proto file.
_TABLES: dict[RecordType, tuple[Any, _Table]] = {
    RecordType.BUSINESS_REGISTRATION: (
        pb.BusinessRegistration,
        (
            ("uscc", _PLAIN),
            ("name", _PLAIN),
            ("entity_type", _PLAIN),
            ("legal_representative", _PLAIN),
            ("legal_representative_id_type", _Enum(pb.IdType, "ID_TYPE")),
            ("legal_representative_id_number", _PLAIN),
            ("registered_capital", _Money()),
            ("established_on", _DATE),
            ("address", _PLAIN),
            ("address_division", _PLAIN),
            ("business_scope", _PLAIN),
            ("registration_authority", _PLAIN),
            ("status", _Enum(pb.RegistrationStatus, "REGISTRATION_STATUS")),
            ("approved_on", _DATE),
            ("actual_business_address", _OPTIONAL),
        ),
    ),
    RecordType.CONSUMER_COMPLAINT: (
        pb.ConsumerComplaint,
        (
            ("complaint_number", _PLAIN),
            ("registered_at", _TIME),
            ("channel", _Enum(pb.Channel, "CHANNEL")),
            (
                "complainant",
                _Message(
                    pb.Complainant,
                    (
                        ("name", _PLAIN),
                        ("phone", _PLAIN),
                        ("id_number", _OPTIONAL),
                        ("address", _OPTIONAL),
                    ),
                ),
            ),
            (
                "respondent",
                _Message(
                    pb.Respondent,
                    (
                        ("name", _PLAIN),
                        ("uscc", _OPTIONAL),
                        ("address", _PLAIN),
                        ("division", _PLAIN),
                    ),
                ),
            ),
            ("subject", _PLAIN),
            ("category", _Enum(pb.ConsumptionCategory, "CONSUMPTION_CATEGORY")),
            ("amount", _Decimal()),
            ("purchased_on", _DATE),
            ("facts", _PLAIN),
            ("request", _PLAIN),
        ),
    ),
    RecordType.ENFORCEMENT_REFERRAL: (
        pb.EnforcementReferral,
        (
            ("referral_number", _PLAIN),
            ("referring_bureau", _PLAIN),
            ("receiving_bureau", _PLAIN),
            (
                "party",
                _Message(
                    pb.Party,
                    (
                        ("name", _PLAIN),
                        ("uscc", _OPTIONAL),
                        ("id_number", _OPTIONAL),
                        ("address", _PLAIN),
                    ),
                ),
            ),
            ("violation", _PLAIN),
            ("facts", _PLAIN),
            ("legal_basis", _PLAIN),
            ("found_on", _DATE),
            (
                "evidence",
                _Repeated(pb.Evidence, (("name", _PLAIN), ("pages", _PLAIN), ("sha256", _PLAIN))),
            ),
            ("items", _List()),
            ("contact_name", _PLAIN),
            ("contact_phone", _PLAIN),
        ),
    ),
    RecordType.FEEDBACK: (
        pb.Feedback,
        (
            ("original_number", _PLAIN),
            ("original_type", _Enum(pb.RecordType, "RECORD_TYPE")),
            ("status", _Enum(pb.FeedbackStatus, "FEEDBACK_STATUS")),
            ("note", _OPTIONAL),
            ("handled_at", _TIME),
            ("officer", _PLAIN),
        ),
    ),
}

_KINDS = {record_type.value: record_type for record_type in _TABLES}


def record_to_proto(record: Record) -> pb.Record:
    message_type, fields = _TABLES[record.record_type]
    return pb.Record(**{record.record_type.value: message_type(**_encode_fields(record, fields))})


def record_from_proto(message: pb.Record) -> Record:
    """Validate a protobuf record into a canonical one (``RecordInvalid`` if it breaks a rule)."""
    kind = message.WhichOneof("kind")
    record_type = _KINDS.get(kind or "")
    if kind is None or record_type is None:
        raise EnvelopeMalformed("payload holds no record (the oneof 'kind' is empty)")
    _, fields = _TABLES[record_type]
    data = {"record_type": record_type, **_decode_fields(getattr(message, kind), fields)}
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
