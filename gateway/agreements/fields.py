"""The canonical field catalogue: every leaf field path an agreement must give a policy."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gateway.privacy import PIKind
from gateway.records import (
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    Record,
    RecordType,
    personal_info_paths,
)


@dataclass(frozen=True, slots=True)
class CanonicalField:
    """A leaf field of a canonical record, as an agreement names it (dotted path)."""

    path: str
    # May be absent: its default is None or an empty sequence, so dropping it removes data.
    optional: bool
    personal_info: PIKind | None
    # Inside a sequence of nested models (``evidence.name``): the path names every element.
    in_sequence: bool


_MODELS: dict[RecordType, type[BaseModel]] = {
    RecordType.BUSINESS_REGISTRATION: BusinessRegistration,
    RecordType.CONSUMER_COMPLAINT: ConsumerComplaint,
    RecordType.ENFORCEMENT_REFERRAL: EnforcementReferral,
    RecordType.FEEDBACK: Feedback,
}


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _walk(
    model: type[BaseModel], prefix: str, pi: Mapping[str, PIKind], in_sequence: bool
) -> Iterator[CanonicalField]:
    for name, info in model.model_fields.items():
        if not prefix and name == "record_type":
            continue  # the discriminator: always present, never a policy question
        path = f"{prefix}{name}"
        nested = _nested_model(info.annotation)
        if nested is not None:
            sequence = typing.get_origin(info.annotation) in (tuple, list)
            yield from _walk(nested, f"{path}.", pi, in_sequence or sequence)
            continue
        # A default like "CNY" is not absence: dropping it would not remove anything.
        optional = not info.is_required() and info.default in (None, ())
        yield CanonicalField(path, optional, pi.get(path), in_sequence)


def canonical_fields(record_type: RecordType) -> Mapping[str, CanonicalField]:
    """Every leaf field path of ``record_type``'s canonical model, in model order."""
    return _CATALOGUE[record_type]


def _catalogue(record_type: RecordType) -> Mapping[str, CanonicalField]:
    model = _MODELS[record_type]
    fields = {f.path: f for f in _walk(model, "", personal_info_paths(model), False)}
    return types.MappingProxyType(fields)


_CATALOGUE = {rt: _catalogue(rt) for rt in RecordType}


def _values_at(obj: Any, parts: tuple[str, ...]) -> list[Any]:
    """The values at a dotted path; a sequence of models contributes one value per element."""
    value = getattr(obj, parts[0], None)
    rest = parts[1:]
    if not rest:
        return [value]
    if isinstance(value, tuple | list):
        return [v for element in value for v in _values_at(element, rest)]
    if value is None:
        return []
    return _values_at(value, rest)


def _has_value(value: Any) -> bool:
    return value is not None and value not in ("", ())


def _carries(record: Record, path: str) -> bool:
    return any(_has_value(v) for v in _values_at(record, tuple(path.split("."))))


def _delete_at(data: Any, parts: list[str]) -> None:
    if isinstance(data, list | tuple):
        for element in data:
            _delete_at(element, parts)
        return
    if not isinstance(data, dict) or parts[0] not in data:
        return
    if len(parts) == 1:
        del data[parts[0]]  # the model's default (None or empty) takes its place
    else:
        _delete_at(data[parts[0]], parts[1:])
