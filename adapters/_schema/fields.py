"""Where a canonical value lives in a local tree: fields, list fields, path style, path walking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from adapters._schema.codecs import Codec
from gateway.privacy import PIKind, mask


@dataclass(frozen=True)
class ListCodec:
    """A list whose items are plain values (``item_codec``) or objects (``item_fields``).

    ``item_tag`` names each item in paths (Suining ``CL``); without it items are
    shown as ``container[n]``.
    """

    item_codec: Codec | None = None
    item_fields: tuple[Field, ...] = ()
    item_tag: str | None = None


@dataclass(frozen=True)
class Field:
    local: tuple[str, ...]
    canonical: str
    codec: Codec | ListCodec
    optional: bool = False


@dataclass(frozen=True)
class Style:
    """How a format shows paths and writes absent optional values."""

    separator: str
    omit_empty_optional: bool

    def index(
        self, container: tuple[str, ...], item_tag: str | None, number: int
    ) -> tuple[str, ...]:
        if item_tag is None:
            return (*container[:-1], f"{container[-1]}[{number}]")
        return (*container, f"{item_tag}[{number}]")

    def show(self, path: Sequence[str]) -> str:
        return self.separator.join(path)


@dataclass(frozen=True)
class _PathProblem:
    local: str
    canonical: str
    rule: str
    message: str


def _shown(raw: object, kind: PIKind | None) -> str:
    # A phone number written as a JSON number is still personal information.
    if not isinstance(raw, str | int | Decimal) or isinstance(raw, bool):
        return type(raw).__name__
    text = str(raw)
    if kind is not None:
        text = mask(kind, text)
    return text if len(text) <= 60 else text[:57] + "..."


def _strip_indices(path: str) -> str:
    return ".".join(part for part in path.split(".") if not part.isdigit())


_ABSENT: Any = object()


def _lookup(
    tree: Mapping[str, object], path: tuple[str, ...]
) -> tuple[object, tuple[tuple[str, ...], str, str] | None]:
    node: object = tree
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping):
            return _ABSENT, (path[:depth], "field.type", "must be an object")
        if key not in node:
            if depth < len(path) - 1:
                return _ABSENT, (path[: depth + 1], "field.missing", "is required")
            return _ABSENT, None
        node = node[key]
    return node, None


def _assign(tree: dict[str, Any], path: Sequence[str], value: object) -> None:
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _attribute(model: BaseModel, path: str) -> Any:
    value: Any = model
    for part in path.split("."):
        if value is None:
            return None
        value = getattr(value, part)
    return value


def _local_parts(fields: Sequence[Field], parts: list[str], style: Style) -> tuple[str, ...] | None:
    for spec in fields:
        spec_parts = spec.canonical.split(".")
        if parts[: len(spec_parts)] != spec_parts:
            continue
        rest = parts[len(spec_parts) :]
        if not rest:
            return spec.local
        codec = spec.codec
        if isinstance(codec, ListCodec) and rest[0].isdigit():
            item = style.index(spec.local, codec.item_tag, int(rest[0]) + 1)
            if len(rest) == 1:
                return item
            inner = _local_parts(codec.item_fields, rest[1:], style)
            if inner is not None:
                return (*item, *inner)
    return None


def _common_prefix(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    first = paths[0]
    length = 0
    while all(len(p) > length and p[length] == first[length] for p in paths):
        length += 1
    return first[:length]
