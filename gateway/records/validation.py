"""Parsing untrusted data into records, and turning validation errors into field violations.

No violation message repeats a personal-information value unmasked.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic.fields import FieldInfo

from gateway.errors import FieldViolation, RecordInvalid
from gateway.privacy import PersonalInfo, PIKind, escape_controls, mask
from gateway.records.models import (
    _RECORD_ADAPTER,
    _RECORDS_ADAPTER,
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    Record,
)
from gateway.records.vocabulary import RecordType


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
