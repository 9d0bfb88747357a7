"""Field tables for the shipped adapters: where each canonical value lives locally.

Both shipped formats are trees of values (Tongliang's JSON objects; Suining's
XML elements, read into dicts first). A :class:`RecordSchema` lists, in the
local format's order, each local path, the canonical path it holds and the
:class:`Codec` that reads and writes its text. Decoding, encoding and the
translation of canonical validation errors into local field names all walk the
same table, so the three cannot drift apart.
"""

from __future__ import annotations

import abc
import datetime as dt
import decimal
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from gateway.adapter import CodeTable, LocalProblem, localize_violations
from gateway.errors import RecordInvalid
from gateway.privacy import PIKind, mask
from gateway.records import (
    BEIJING,
    Record,
    RecordType,
    parse_record,
    personal_info_paths,
    record_key,
)

__all__ = [
    "CodeCodec",
    "Codec",
    "DateCodec",
    "DateTimeCodec",
    "Field",
    "FieldProblem",
    "IntCodec",
    "ListCodec",
    "MoneyCodec",
    "RecordSchema",
    "Style",
    "TextCodec",
]

# Money passes through this context only: any rounding raises instead of
# silently changing an amount.
_EXACT = decimal.Context(
    prec=60,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow],
)
_CENT = Decimal("0.01")
_TEN_THOUSAND = Decimal(10000)
_SURROGATES = re.compile("[\ud800-\udfff]")


class FieldProblem(Exception):
    """A local value that cannot become a canonical one, or back. Never leaves adapters."""

    def __init__(self, rule: str, message: str, *, show_value: bool = True) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.show_value = show_value


# ---------------------------------------------------------------------------
# Codecs: one local value ⇄ one canonical value


class Codec(abc.ABC):
    @abc.abstractmethod
    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        """The canonical value of ``raw``; ``record`` is the whole local record."""

    @abc.abstractmethod
    def encode(self, value: Any) -> object:
        """The local value of canonical ``value``."""


class TextCodec(Codec):
    """Free text, kept exactly (no trimming: whitespace is part of the value)."""

    def __init__(self, *, unencodable: re.Pattern[str] = _SURROGATES, medium: str = "") -> None:
        self._unencodable = unencodable
        self._medium = medium or "the local format"

    def _check(self, text: str) -> str:
        bad = self._unencodable.search(text)
        if bad is not None:
            raise FieldProblem(
                "text.character",
                f"contains U+{ord(bad.group()):04X}, which {self._medium} cannot carry",
                show_value=False,
            )
        return text

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        return self._check(raw)

    def encode(self, value: Any) -> object:
        return self._check(str(value))


class MoneyCodec(Codec):
    """Exact money as decimal text; canonical money is yuan with at most 2 decimals.

    ``scale`` is the local unit in yuan (10000 for 万元) and ``places`` the
    number of decimals the local text has.
    """

    def __init__(self, *, scale: Decimal = Decimal(1), places: int = 2, unit: str = "元") -> None:
        self._scale = scale
        self._places = places
        self._quantum = Decimal(1).scaleb(-places)
        self._unit = unit
        self._pattern = re.compile(rf"[0-9]{{1,24}}(\.[0-9]{{1,{places}}})?")

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
            raise FieldProblem(
                "money.json_number",
                'money must be a JSON string like "2999.00", never a JSON number',
            )
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text", show_value=False)
        if not self._pattern.fullmatch(raw):
            raise FieldProblem(
                "money.format",
                f"must be a non-negative amount in {self._unit} with at most "
                f"{self._places} decimals",
            )
        try:
            yuan = _EXACT.multiply(Decimal(raw), self._scale)
            return _EXACT.quantize(yuan, _CENT)
        except decimal.DecimalException as exc:
            raise FieldProblem("money.precision", "is not a whole number of fen (0.01 元)") from exc

    def encode(self, value: Any) -> object:
        try:
            local = _EXACT.divide(Decimal(value), self._scale)
            return f"{_EXACT.quantize(local, self._quantum):f}"
        except decimal.DecimalException as exc:
            raise FieldProblem(
                "money.precision",
                f"cannot be written in {self._unit} with {self._places} decimals without rounding",
            ) from exc


class DateCodec(Codec):
    """A calendar date as ``YYYY-MM-DD`` (``separator="-"``) or ``YYYYMMDD``."""

    def __init__(self, *, separator: str) -> None:
        self._separator = separator
        sep = re.escape(separator)
        self._pattern = re.compile(rf"([0-9]{{4}}){sep}([0-9]{{2}}){sep}([0-9]{{2}})")
        self._shape = separator.join(("YYYY", "MM", "DD"))

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        match = self._pattern.fullmatch(raw)
        if match is None:
            raise FieldProblem("date.format", f"must be a date {self._shape}")
        try:
            return dt.date(*(int(part) for part in match.groups()))
        except ValueError as exc:
            raise FieldProblem("date.invalid", "is not a calendar date") from exc

    def encode(self, value: Any) -> object:
        day: dt.date = value
        return f"{day.year:04d}{self._separator}{day.month:02d}{self._separator}{day.day:02d}"


class DateTimeCodec(Codec):
    """Beijing wall-clock time to the second; canonical datetimes are aware."""

    def __init__(self, *, compact: bool) -> None:
        self._compact = compact
        if compact:
            self._pattern = re.compile(
                r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})"
            )
            self._shape = "YYYYMMDDHHMMSS"
        else:
            self._pattern = re.compile(
                r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
            )
            self._shape = "YYYY-MM-DD HH:MM:SS"

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        match = self._pattern.fullmatch(raw)
        if match is None:
            raise FieldProblem("datetime.format", f"must be Beijing time {self._shape}")
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            return dt.datetime(year, month, day, hour, minute, second, tzinfo=BEIJING)
        except ValueError as exc:
            raise FieldProblem("datetime.invalid", "is not a real date and time") from exc

    def encode(self, value: Any) -> object:
        moment: dt.datetime = value
        try:
            local = moment.astimezone(BEIJING)
        except (OverflowError, ValueError) as exc:
            raise FieldProblem("datetime.range", "cannot be shown in Beijing time") from exc
        if local.microsecond:
            raise FieldProblem(
                "datetime.precision",
                "has fractions of a second; the local format keeps whole seconds",
            )
        if self._compact:
            return (
                f"{local.year:04d}{local.month:02d}{local.day:02d}"
                f"{local.hour:02d}{local.minute:02d}{local.second:02d}"
            )
        return (
            f"{local.year:04d}-{local.month:02d}-{local.day:02d} "
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        )


class CodeCodec(Codec):
    """A value from a code table; one table serves both directions."""

    def __init__(self, table: CodeTable) -> None:
        self.table = table

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        value = self.table.to_canonical(raw)
        if value is None:
            raise FieldProblem(
                "code.unknown", f"is not a code of the table; allowed: {' '.join(self.table.codes)}"
            )
        return value

    def encode(self, value: Any) -> object:
        code = self.table.to_local(str(value))
        if code is None:
            raise FieldProblem(
                "code.unmapped",
                f"{value} has no code in the local {self.table.local_field} table",
                show_value=False,
            )
        return code


class IntCodec(Codec):
    """A non-negative integer: a JSON number (``as_text=False``) or digits."""

    def __init__(self, *, as_text: bool) -> None:
        self._as_text = as_text

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if self._as_text:
            if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,9}", raw):
                raise FieldProblem("integer.format", "must be a whole number of up to 9 digits")
            return int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise FieldProblem("integer.type", "must be a JSON integer")
        return raw

    def encode(self, value: Any) -> object:
        return str(value) if self._as_text else int(value)


@dataclass(frozen=True)
class ListCodec:
    """A list whose items are plain values (``item_codec``) or objects (``item_fields``).

    ``item_tag`` names each item in paths (Suining ``CL``); without it items are
    shown as ``container[n]``.
    """

    item_codec: Codec | None = None
    item_fields: tuple[Field, ...] = ()
    item_tag: str | None = None


# ---------------------------------------------------------------------------
# Field tables


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


@dataclass(frozen=True)
class RecordSchema:
    """One record type of a local format."""

    local_type: str
    record_type: RecordType
    model: type[BaseModel]
    id_field: tuple[str, ...]
    fields: tuple[Field, ...]
    # Fills canonical values the local format does not carry but implies
    # (Suining BLFK has no original-record type: the status code implies it).
    complete: Callable[[dict[str, Any]], None] | None = None

    @cached_property
    def _pi(self) -> Mapping[str, PIKind]:
        return personal_info_paths(self.model)

    # -- decoding -------------------------------------------------------------

    def decode(
        self, tree: Mapping[str, object], *, position: int, style: Style, ignore: frozenset[str]
    ) -> tuple[Record | None, list[LocalProblem]]:
        """A validated record from one local record tree, or the problems found."""
        record_id = self.record_id(tree)
        path_problems: list[_PathProblem] = []
        canonical = self._decode_fields(
            self.fields, tree, (), "", style=style, problems=path_problems, ignore=ignore
        )
        if self.complete is not None:
            self.complete(canonical)

        def located(problem: _PathProblem) -> LocalProblem:
            return LocalProblem(
                rule=problem.rule,
                message=problem.message,
                position=position,
                record_id=record_id,
                record_type=self.local_type,
                field=problem.local,
                canonical_field=problem.canonical or None,
            )

        problems = [located(p) for p in path_problems]
        try:
            record = parse_record({"record_type": self.record_type.value, **canonical})
        except RecordInvalid as exc:
            broken = [p.canonical for p in path_problems]
            for problem in localize_violations(
                exc,
                position=position,
                record_type=self.local_type,
                record_id=record_id,
                local_field=lambda path: self.local_path(path, style),
            ):
                # A value the adapter already refused is missing here; say so once.
                path = problem.canonical_field or ""
                if path_problems and problem.rule == "missing":
                    continue
                if any(path == b or path.startswith(b + ".") for b in broken if b):
                    continue
                problems.append(problem)
            return None, problems
        if problems:
            return None, problems
        return record, []

    def record_id(self, tree: Mapping[str, object]) -> str | None:
        raw = tree.get(self.id_field[0])
        if isinstance(raw, str) and raw:
            return raw if len(raw) <= 60 else raw[:57] + "..."
        return None

    def _decode_fields(
        self,
        fields: Sequence[Field],
        tree: Mapping[str, object],
        local_prefix: tuple[str, ...],
        canonical_prefix: str,
        *,
        style: Style,
        problems: list[_PathProblem],
        ignore: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        canonical: dict[str, Any] = {}
        self._refuse_unknown(
            fields, tree, local_prefix, style=style, problems=problems, ignore=ignore
        )
        reported: set[tuple[str, ...]] = set()
        for spec in fields:
            canonical_path = canonical_prefix + spec.canonical
            raw, container_problem = _lookup(tree, spec.local)
            if container_problem is not None:
                container, rule, message = container_problem
                if container not in reported:
                    reported.add(container)
                    problems.append(
                        _PathProblem(
                            style.show((*local_prefix, *container)),
                            canonical_path.rpartition(".")[0],
                            rule,
                            message,
                        )
                    )
                continue
            local_path = (*local_prefix, *spec.local)
            if raw is _ABSENT or (spec.optional and raw in ("", None, [])):
                if not spec.optional:
                    problems.append(
                        _PathProblem(
                            style.show(local_path), canonical_path, "field.missing", "is required"
                        )
                    )
                continue
            if isinstance(spec.codec, ListCodec):
                value: object = self._decode_list(
                    spec.codec, raw, local_path, canonical_path, style=style, problems=problems
                )
            else:
                try:
                    value = spec.codec.decode(raw, tree)
                except FieldProblem as problem:
                    message = problem.message
                    if problem.show_value:
                        kind = self._pi.get(_strip_indices(canonical_path))
                        message += f" (value {_shown(raw, kind)})"
                    problems.append(
                        _PathProblem(style.show(local_path), canonical_path, problem.rule, message)
                    )
                    continue
            _assign(canonical, spec.canonical.split("."), value)
        return canonical

    def _decode_list(
        self,
        codec: ListCodec,
        raw: object,
        local_path: tuple[str, ...],
        canonical_path: str,
        *,
        style: Style,
        problems: list[_PathProblem],
    ) -> list[object]:
        if not isinstance(raw, list):
            problems.append(
                _PathProblem(style.show(local_path), canonical_path, "field.type", "must be a list")
            )
            return []
        items: list[object] = []
        for number, item in enumerate(raw, start=1):
            item_path = style.index(local_path, codec.item_tag, number)
            item_canonical = f"{canonical_path}.{number - 1}"
            if codec.item_codec is not None:
                try:
                    items.append(codec.item_codec.decode(item, {}))
                except FieldProblem as problem:
                    problems.append(
                        _PathProblem(
                            style.show(item_path), item_canonical, problem.rule, problem.message
                        )
                    )
            elif not isinstance(item, Mapping):
                problems.append(
                    _PathProblem(
                        style.show(item_path), item_canonical, "field.type", "must be an object"
                    )
                )
            else:
                items.append(
                    self._decode_fields(
                        codec.item_fields,
                        item,
                        item_path,
                        item_canonical + ".",
                        style=style,
                        problems=problems,
                    )
                )
        return items

    def _refuse_unknown(
        self,
        fields: Sequence[Field],
        tree: Mapping[str, object],
        local_prefix: tuple[str, ...],
        *,
        style: Style,
        problems: list[_PathProblem],
        ignore: frozenset[str],
    ) -> None:
        known: dict[tuple[str, ...], set[str]] = {(): set(ignore)}
        for spec in fields:
            for depth in range(len(spec.local)):
                known.setdefault(spec.local[:depth], set()).add(spec.local[depth])
        for container, names in known.items():
            node, problem = _lookup(tree, container) if container else (tree, None)
            if problem is not None or not isinstance(node, Mapping):
                continue
            for key in node:
                if key not in names:
                    problems.append(
                        _PathProblem(
                            style.show((*local_prefix, *container, str(key))),
                            "",
                            "field.unknown",
                            "is not a field of this record type",
                        )
                    )

    # -- encoding -------------------------------------------------------------

    def encode(
        self, record: Record, *, position: int, style: Style
    ) -> tuple[dict[str, object], list[LocalProblem]]:
        """The local record tree of ``record``, or the problems writing it."""
        path_problems: list[_PathProblem] = []
        tree = self._encode_fields(self.fields, record, (), "", style=style, problems=path_problems)
        record_id = record_key(record)
        problems = [
            LocalProblem(
                rule=p.rule,
                message=p.message,
                position=position,
                record_id=record_id,
                record_type=self.local_type,
                field=p.local,
                canonical_field=p.canonical,
            )
            for p in path_problems
        ]
        return tree, problems

    def _encode_fields(
        self,
        fields: Sequence[Field],
        model: BaseModel,
        local_prefix: tuple[str, ...],
        canonical_prefix: str,
        *,
        style: Style,
        problems: list[_PathProblem],
    ) -> dict[str, object]:
        tree: dict[str, object] = {}
        for spec in fields:
            value = _attribute(model, spec.canonical)
            local_path = (*local_prefix, *spec.local)
            canonical_path = canonical_prefix + spec.canonical
            if spec.optional and value in (None, ()):
                if not style.omit_empty_optional:
                    _assign(tree, list(spec.local), [] if isinstance(spec.codec, ListCodec) else "")
                continue
            if isinstance(spec.codec, ListCodec):
                local: object = self._encode_list(
                    spec.codec, value, local_path, canonical_path, style=style, problems=problems
                )
            else:
                try:
                    local = spec.codec.encode(value)
                except FieldProblem as problem:
                    problems.append(
                        _PathProblem(
                            style.show(local_path), canonical_path, problem.rule, problem.message
                        )
                    )
                    continue
            _assign(tree, list(spec.local), local)
        return tree

    def _encode_list(
        self,
        codec: ListCodec,
        values: Sequence[Any],
        local_path: tuple[str, ...],
        canonical_path: str,
        *,
        style: Style,
        problems: list[_PathProblem],
    ) -> list[object]:
        items: list[object] = []
        for number, value in enumerate(values, start=1):
            item_path = style.index(local_path, codec.item_tag, number)
            item_canonical = f"{canonical_path}.{number - 1}"
            if codec.item_codec is not None:
                try:
                    items.append(codec.item_codec.encode(value))
                except FieldProblem as problem:
                    problems.append(
                        _PathProblem(
                            style.show(item_path), item_canonical, problem.rule, problem.message
                        )
                    )
            else:
                items.append(
                    self._encode_fields(
                        codec.item_fields,
                        value,
                        item_path,
                        item_canonical + ".",
                        style=style,
                        problems=problems,
                    )
                )
        return items

    # -- error translation ----------------------------------------------------

    def local_path(self, canonical: str, style: Style) -> str | None:
        """The local field holding canonical path ``canonical`` (``evidence.0.sha256``)."""
        found = _local_parts(self.fields, canonical.split("."), style)
        if found:
            return style.show(found)
        # A rule about a whole object (a party needs one of two ids): name its fields.
        prefix = canonical + "."
        under = [spec.local for spec in self.fields if spec.canonical.startswith(prefix)]
        if not under:
            return None
        common = _common_prefix(under)
        if common:
            return style.show(common)
        return "/".join(style.show(path) for path in under)


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
