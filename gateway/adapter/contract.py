"""The adapter contract: the :class:`LocalAdapter` ABC and the values it takes and returns."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, ClassVar

from gateway.adapter.problems import (
    EncodeContextInvalid,
    LocalFileInvalid,
    LocalProblem,
)
from gateway.records import Record, RecordType

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


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
