"""The region-adapter contract: local file bytes ⇄ canonical records, and nothing else.

A region adapter knows one bureau's local file format. It decodes a file into
canonical records (:mod:`gateway.records`) and encodes canonical records into a
file. It never signs, stores or sends: the node does that with what the adapter
returns. Adapters are found through the ``chuanyu_gateway.adapters`` entry-point
group (:func:`load_adapter`); ``canonical`` is built in and reads and writes the
canonical JSON of :func:`gateway.records.records_to_json`.

Errors added here, under the root of :mod:`gateway.errors`::

    GatewayError
    ├── PeerError
    │   ├── RecordInvalid
    │   │   └── LocalFormatError        a local file or record breaks its local format
    │   │       ├── LocalFileInvalid      decode refused the file as a whole
    │   │       └── RecordNotEncodable    encode cannot write a record in the local format
    │   ├── NotFound
    │   │   └── AdapterNotFound         no adapter of that name is installed
    │   └── EncodeContextInvalid        the batch header values needed by encode are missing
    └── GatewayFault
        └── AdapterBroken               an installed adapter fails to load

A :class:`LocalFormatError` carries one :class:`LocalProblem` per broken rule,
each naming the record (1-based position and its own id), the local field, the
canonical field, the rule, and the offending value with personal information
masked.
"""

from __future__ import annotations

import abc
import datetime as dt
import importlib.metadata
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, ClassVar

from gateway.errors import (
    FieldViolation,
    GatewayFault,
    NotFound,
    PeerError,
    RecordInvalid,
)
from gateway.records import Record, RecordType, parse_record, records_to_json

__all__ = [
    "CANONICAL",
    "DEFAULT_MAX_BYTES",
    "ENTRY_POINT_GROUP",
    "MAX_PROBLEMS",
    "AdapterBroken",
    "AdapterNotFound",
    "Batch",
    "CanonicalJsonAdapter",
    "CodeTable",
    "Corruption",
    "EncodeContext",
    "EncodeContextInvalid",
    "LocalAdapter",
    "LocalFileInvalid",
    "LocalFormatError",
    "LocalProblem",
    "RecordNotEncodable",
    "available_adapters",
    "load_adapter",
    "localize_violations",
]

ENTRY_POINT_GROUP = "chuanyu_gateway.adapters"
CANONICAL = "canonical"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# A broken file can hold one problem per field of millions of records; past this
# many the report says "and more" instead of growing without bound.
MAX_PROBLEMS = 200


# ---------------------------------------------------------------------------
# Errors


@dataclass(frozen=True, slots=True)
class LocalProblem:
    """One broken rule of a local file, located as precisely as the file allows.

    ``message`` is safe to log: personal information in it is already masked.
    ``position`` is the record's 1-based position in the file, ``None`` for a
    problem of the file itself (encoding, syntax, batch header).
    """

    rule: str
    message: str
    position: int | None = None
    record_id: str | None = None
    record_type: str | None = None
    field: str | None = None
    canonical_field: str | None = None

    @property
    def location(self) -> str:
        if self.position is None:
            where = "file"
        else:
            label = " ".join(p for p in (self.record_type, self.record_id) if p)
            where = f"record #{self.position}" + (f" ({label})" if label else "")
        if self.field is not None:
            where += f", field {self.field}"
            if self.canonical_field and self.canonical_field != self.field:
                where += f" [{self.canonical_field}]"
        elif self.canonical_field:
            where += f", field [{self.canonical_field}]"
        return where

    def __str__(self) -> str:
        return f"{self.location}: {self.message} (rule {self.rule})"


class LocalFormatError(RecordInvalid):
    """A local file or record breaks its local format; ``problems`` says where and why."""

    reason = "LOCAL_FORMAT_INVALID"
    verb = "refused"

    def __init__(self, problems: Sequence[LocalProblem], *, adapter: str) -> None:
        if not problems:
            raise ValueError("a LocalFormatError needs at least one problem")
        self.problems = tuple(problems)
        self.adapter = adapter
        super().__init__(
            [
                FieldViolation(field=p.location, rule=p.rule, message=p.message)
                for p in self.problems
            ],
            context=f"{adapter} file",
        )
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = len(self.problems) - 5
        if more > 0:
            shown += f"; and {more} more"
        count = f"{len(self.problems)} problem" + ("s" if len(self.problems) > 1 else "")
        self.message = f"{adapter} file {self.verb} ({count}): {shown}"
        self.args = (self.message,)


class LocalFileInvalid(LocalFormatError):
    """``decode`` refused a file as a whole: no record of it may be used."""

    reason = "LOCAL_FILE_INVALID"


class RecordNotEncodable(LocalFormatError):
    """``encode`` cannot write a canonical record in the local format without losing a value."""

    reason = "RECORD_NOT_ENCODABLE"
    verb = "cannot be written"


class AdapterNotFound(NotFound):
    reason = "ADAPTER_NOT_FOUND"


class AdapterBroken(GatewayFault):
    reason = "ADAPTER_BROKEN"


class EncodeContextInvalid(PeerError):
    reason = "ENCODE_CONTEXT_INVALID"


def localize_violations(
    exc: RecordInvalid,
    *,
    position: int,
    record_type: str | None,
    record_id: str | None,
    local_field: Callable[[str], str | None],
) -> list[LocalProblem]:
    """Turn canonical violations (paths like ``respondent.uscc``) into local problems.

    ``local_field`` maps a canonical path to the local field name, or ``None``
    when the local format has no such field. The messages of ``exc`` come from
    :func:`gateway.records.violations_from`, which already masks personal
    information.
    """
    problems: list[LocalProblem] = []
    for violation in exc.violations:
        canonical = None if violation.field == "(record)" else violation.field
        problems.append(
            LocalProblem(
                rule=violation.rule,
                message=violation.message,
                position=position,
                record_id=record_id,
                record_type=record_type,
                field=local_field(canonical) if canonical is not None else None,
                canonical_field=canonical,
            )
        )
    return problems


# ---------------------------------------------------------------------------
# What decode returns and encode needs


@dataclass(frozen=True, slots=True)
class Batch:
    """The records of one local file, with the batch header when the format has one."""

    records: tuple[Record, ...]
    batch_id: str | None = None
    sender_bureau: str | None = None
    sent_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class EncodeContext:
    """Batch-header values a format may need when writing a file (e.g. Suining ``BWT``).

    An adapter that needs a value the context lacks raises
    :class:`EncodeContextInvalid`; formats without a header ignore the context.
    """

    sender_bureau: str | None = None
    batch_id: str | None = None
    sent_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.sent_at is not None and self.sent_at.utcoffset() is None:
            raise EncodeContextInvalid("sent_at must be timezone-aware")

    @classmethod
    def from_batch(cls, batch: Batch) -> EncodeContext:
        """The context that writes ``batch`` back with the header it was read with."""
        return cls(
            sender_bureau=batch.sender_bureau, batch_id=batch.batch_id, sent_at=batch.sent_at
        )


@dataclass(frozen=True)
class CodeTable:
    """A local code table for one canonical field: local code → canonical value.

    The mapping must be one-to-one, so each canonical value has exactly one
    local code. ``default`` is the local code assumed when the field is absent
    or empty.
    """

    local_field: str
    record_type: RecordType
    canonical_field: str
    codes: Mapping[str, str]
    default: str | None = None
    _by_value: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_value = {value: code for code, value in self.codes.items()}
        if len(by_value) != len(self.codes):
            raise ValueError(f"code table {self.local_field} maps two codes to one value")
        if self.default is not None and self.default not in self.codes:
            raise ValueError(f"code table {self.local_field}: default {self.default} is no code")
        object.__setattr__(self, "_by_value", by_value)

    def to_canonical(self, code: str) -> str | None:
        return self.codes.get(code)

    def to_local(self, value: str) -> str | None:
        return self._by_value.get(value)


@dataclass(frozen=True, slots=True)
class Corruption:
    """A format-specific way to break a valid file, for the conformance kit.

    ``data`` must be refused by ``decode`` with :class:`LocalFileInvalid`;
    when ``rule`` is set, one of the problems must carry that rule.
    """

    description: str
    data: bytes
    rule: str | None = None


# ---------------------------------------------------------------------------
# The contract


class LocalAdapter(abc.ABC):
    """Converts one bureau's local file format to canonical records and back.

    Subclasses set the class attributes and implement :meth:`decode` and
    :meth:`encode`; both must be pure (bytes and records in, bytes and records
    out), deterministic, and safe on hostile input. Register the class under the
    ``chuanyu_gateway.adapters`` entry-point group; it is instantiated without
    arguments.
    """

    #: Name used on the command line and in the entry point (``tongliang``).
    name: ClassVar[str]
    #: IANA media type of the local file (``application/json``).
    media_type: ClassVar[str]
    #: Python codec name of the bytes the adapter reads and writes (``utf-8``).
    encoding: ClassVar[str]
    #: File-name suffix of local files, with the dot (``.json``).
    file_suffix: ClassVar[str]
    #: Division code of the bureau whose local systems use the format, if one.
    bureau: ClassVar[str | None] = None
    #: One line for ``chuanyu-gateway adapter list``.
    description: ClassVar[str] = ""
    #: Record types the format can carry; others are refused by ``encode``.
    record_types: ClassVar[frozenset[RecordType]] = frozenset(RecordType)
    #: Larger inputs are refused before any parsing.
    max_bytes: ClassVar[int] = DEFAULT_MAX_BYTES

    @abc.abstractmethod
    def decode(self, data: bytes) -> Batch:
        """Decode a whole local file into validated canonical records.

        Bad input of any kind — wrong encoding, broken syntax, unknown or
        missing fields, values that break a local or canonical rule, a batch
        header that disagrees with the body, input over :attr:`max_bytes` —
        raises :class:`LocalFileInvalid` naming every problem found (record
        position and own id, local field, canonical field, rule, value with
        personal information masked). No other exception type may escape, and a
        refused file yields no records at all.
        """

    @abc.abstractmethod
    def encode(self, records: Sequence[Record], context: EncodeContext) -> bytes:
        """Encode canonical records into one local file, in :attr:`encoding`.

        Decoding the result must give back equal records. A record the format
        cannot hold without losing a value (a code with no local counterpart, a
        time finer than the format's precision, a character the encoding or
        syntax cannot carry, a record type outside :attr:`record_types`) raises
        :class:`RecordNotEncodable` naming record and field. A header value the
        format needs but ``context`` lacks raises :class:`EncodeContextInvalid`.
        """

    def iter_decode(self, stream: BinaryIO) -> Iterator[Record]:
        """Decode a local file record by record, holding one record in memory at a time.

        For files too large to hold whole. Bad input raises :class:`LocalFileInvalid`
        as soon as it is met, naming the record — records before it have already been
        yielded, so a caller that must refuse a file whole reads it once to check and
        once more to use. Formats with a batch header check it (a record count, say)
        when the end of the file is reached. The default reads the whole file and
        calls :meth:`decode`; adapters override it to stream.
        """
        yield from self.decode(stream.read(self.max_bytes + 1)).records

    def code_tables(self) -> Mapping[str, CodeTable]:
        """Every code table the format uses, by name; the conformance kit checks each."""
        return {}

    def corruptions(self, sample: bytes) -> Sequence[Corruption]:
        """Format-specific ways to break ``sample`` that :meth:`decode` must refuse.

        Used only by the conformance kit, on top of the corruptions it makes
        itself; the default is none.
        """
        return ()

    def refuse_oversized(self, data: bytes) -> None:
        """Raise :class:`LocalFileInvalid` when ``data`` is over :attr:`max_bytes`."""
        if len(data) > self.max_bytes:
            raise LocalFileInvalid(
                [
                    LocalProblem(
                        rule="file.too_large",
                        message=f"file is {len(data)} bytes; the limit is {self.max_bytes}",
                    )
                ],
                adapter=self.name,
            )


# ---------------------------------------------------------------------------
# The built-in canonical pseudo-adapter


class CanonicalJsonAdapter(LocalAdapter):
    """Canonical JSON: a list of records, each with ``record_type`` (no batch header)."""

    name = CANONICAL
    media_type = "application/json"
    encoding = "utf-8"
    file_suffix = ".json"
    description = "canonical records as JSON (built in)"

    def decode(self, data: bytes) -> Batch:
        self.refuse_oversized(data)
        try:
            items = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise self._file_problem("encoding.utf8", f"not UTF-8: {exc.reason}") from exc
        except RecursionError as exc:
            raise self._file_problem("json.syntax", "JSON nested too deeply") from exc
        except ValueError as exc:
            raise self._file_problem("json.syntax", f"not JSON: {exc}") from exc
        if not isinstance(items, list):
            raise self._file_problem("json.structure", "must be a JSON array of records")
        records: list[Record] = []
        problems: list[LocalProblem] = []
        for position, item in enumerate(items, start=1):
            record_id = _canonical_id(item)
            try:
                records.append(parse_record(item))
            except RecordInvalid as exc:
                problems.extend(
                    localize_violations(
                        exc,
                        position=position,
                        record_type=item.get("record_type") if isinstance(item, dict) else None,
                        record_id=record_id,
                        local_field=lambda path: path,
                    )
                )
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise LocalFileInvalid(problems, adapter=self.name)
        return Batch(records=tuple(records))

    def encode(self, records: Sequence[Record], context: EncodeContext) -> bytes:
        return records_to_json(list(records)) + b"\n"

    def _file_problem(self, rule: str, message: str) -> LocalFileInvalid:
        return LocalFileInvalid([LocalProblem(rule=rule, message=message)], adapter=self.name)


def _canonical_id(item: object) -> str | None:
    if not isinstance(item, dict):
        return None
    for key in ("uscc", "complaint_number", "referral_number", "original_number"):
        value = item.get(key)
        if isinstance(value, str) and value:
            return value[:60]
    return None


# ---------------------------------------------------------------------------
# Discovery


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def available_adapters() -> tuple[str, ...]:
    """Names of every installed adapter, ``canonical`` included, sorted."""
    return tuple(sorted({CANONICAL, *(ep.name for ep in _entry_points())}))


def load_adapter(name: str) -> LocalAdapter:
    """An instance of the adapter registered as ``name``.

    Raises :class:`AdapterNotFound` (listing the installed names) for an
    unknown name, and :class:`AdapterBroken` when the entry point fails to load
    or does not name a :class:`LocalAdapter` subclass.
    """
    if name == CANONICAL:
        return CanonicalJsonAdapter()
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        raise AdapterNotFound(
            f"no adapter named {name!r}; installed: {', '.join(available_adapters())}"
        )
    targets = {ep.value for ep in matches}
    if len(targets) > 1:
        raise AdapterBroken(
            f"adapter name {name!r} is registered more than once: {', '.join(sorted(targets))}"
        )
    entry_point = matches[0]
    try:
        loaded = entry_point.load()
    except Exception as exc:  # any import-time failure of third-party code
        raise AdapterBroken(
            f"adapter {name!r} ({entry_point.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, LocalAdapter)):
        raise AdapterBroken(
            f"adapter {name!r} ({entry_point.value}) is not a gateway.adapter.LocalAdapter"
        )
    try:
        adapter = loaded()
    except Exception as exc:  # a constructor of third-party code
        raise AdapterBroken(
            f"adapter {name!r} ({entry_point.value}) cannot be created: {type(exc).__name__}: {exc}"
        ) from exc
    return adapter
