"""The checks of the conformance kit (imported only when a check runs: it loads Hypothesis)."""

from __future__ import annotations

import codecs
import datetime as dt
import enum
import io
import random
import re
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gateway.adapter import (
    Batch,
    CodeTable,
    EncodeContext,
    LocalAdapter,
    LocalFileInvalid,
    LocalFormatError,
    load_adapter,
)
from gateway.conformance.report import CheckResult, ConformanceReport
from gateway.conformance.strategies import example_record, record_strategy, records_strategy
from gateway.errors import GatewayError
from gateway.records import (
    BEIJING,
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    FeedbackStatus,
    IdType,
    OriginalType,
    Record,
    RecordType,
    parse_record,
    record_key,
)

__all__ = ["run_checks"]

_MODELS: Mapping[RecordType, type[BaseModel]] = {
    RecordType.BUSINESS_REGISTRATION: BusinessRegistration,
    RecordType.CONSUMER_COMPLAINT: ConsumerComplaint,
    RecordType.ENFORCEMENT_REFERRAL: EnforcementReferral,
    RecordType.FEEDBACK: Feedback,
}
_KIT_CONTEXT = EncodeContext(
    sender_bureau="510900",
    batch_id="CONFORMANCE0001",
    sent_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=BEIJING),
)
_BOMB_SECONDS = 2.0
# A required text field per record type, blanked to prove missing values are refused.
_REQUIRED_TEXT: Mapping[RecordType, str] = {
    RecordType.BUSINESS_REGISTRATION: "name",
    RecordType.CONSUMER_COMPLAINT: "subject",
    RecordType.ENFORCEMENT_REFERRAL: "violation",
    RecordType.FEEDBACK: "officer",
}
# A resident id with a real birth date and a wrong check character.
_BAD_RESIDENT_ID = "110105194912310021"


def run_checks(adapter: LocalAdapter | str, samples: Path, max_examples: int) -> ConformanceReport:
    """Every check on ``adapter``; see :func:`gateway.conformance.check_adapter`."""
    if isinstance(adapter, str):
        try:
            adapter = load_adapter(adapter)
        except GatewayError as exc:
            return ConformanceReport(
                str(adapter), (CheckResult("contract", "load the adapter", False, exc.message),)
            )
    kit = _Kit(adapter, samples, max_examples)
    return ConformanceReport(_label(adapter), tuple(kit.run()))


class _CheckFailed(Exception):
    pass


def _label(adapter: LocalAdapter) -> str:
    return str(getattr(adapter, "name", type(adapter).__name__))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GatewayError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _differences(expected: object, actual: object, path: str = "") -> list[str]:
    """Dotted paths whose values differ (names only: values may be personal information)."""
    if isinstance(expected, BaseModel) and isinstance(actual, BaseModel):
        if type(expected) is not type(actual):
            return [path or "record_type"]
        return _differences(expected.model_dump(), actual.model_dump(), path)
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        found: list[str] = []
        for key in sorted({*expected, *actual}, key=str):
            found += _differences(expected.get(key), actual.get(key), f"{path}{key}.")
        return found
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        if len(expected) != len(actual):
            return [f"{path}length".rstrip(".")]
        found = []
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            found += _differences(left, right, f"{path}{index}.")
        return found
    if type(expected) is not type(actual) and not (
        isinstance(expected, dt.datetime) and isinstance(actual, dt.datetime)
    ):
        return [path.rstrip(".") or "(value)"]
    return [] if expected == actual else [path.rstrip(".") or "(value)"]


def _compare(expected: Sequence[Record], actual: Sequence[Record]) -> None:
    if len(expected) != len(actual):
        raise _CheckFailed(f"{len(expected)} records went in, {len(actual)} came back")
    for position, (left, right) in enumerate(zip(expected, actual, strict=True), start=1):
        differing = _differences(left, right)
        if differing:
            raise _CheckFailed(
                f"record #{position} ({left.record_type.value}) changed in: {', '.join(differing)}"
            )


class _Kit:
    def __init__(self, adapter: LocalAdapter, samples: Path, max_examples: int) -> None:
        self.adapter = adapter
        self.samples_dir = samples
        self.max_examples = max_examples
        self.samples: dict[str, tuple[bytes, Batch]] = {}
        self.results: list[CheckResult] = []

    # -- plumbing -------------------------------------------------------------

    def check(self, check: str, subject: str, body: Callable[[], None]) -> bool:
        try:
            body()
        except _CheckFailed as exc:
            self.results.append(CheckResult(check, subject, False, str(exc)))
            return False
        except Exception as exc:  # a crashing adapter is a failed check, not a crashed kit
            self.results.append(CheckResult(check, subject, False, f"crashed: {_describe(exc)}"))
            return False
        self.results.append(CheckResult(check, subject, True))
        return True

    @property
    def record_types(self) -> tuple[RecordType, ...]:
        declared = getattr(self.adapter, "record_types", frozenset(RecordType))
        return tuple(t for t in RecordType if t in declared)

    def context(self, batch: Batch | None = None) -> EncodeContext:
        return EncodeContext(
            sender_bureau=(batch.sender_bureau if batch else None)
            or getattr(self.adapter, "bureau", None)
            or _KIT_CONTEXT.sender_bureau,
            batch_id=(batch.batch_id if batch else None) or _KIT_CONTEXT.batch_id,
            sent_at=(batch.sent_at if batch else None) or _KIT_CONTEXT.sent_at,
        )

    def round_trip(self, records: Sequence[Record], context: EncodeContext | None = None) -> Batch:
        data = self.adapter.encode(list(records), context or self.context())
        if not isinstance(data, bytes):
            raise _CheckFailed(f"encode returned {type(data).__name__}, not bytes")
        try:
            return self.adapter.decode(data)
        except LocalFileInvalid as exc:
            raise _CheckFailed(f"decode refused what encode wrote: {exc.message}") from exc

    def currencies(self) -> tuple[str, ...]:
        found = [
            value
            for table in self.adapter.code_tables().values()
            if table.canonical_field == "registered_capital_currency"
            for value in table.codes.values()
        ]
        return tuple(sorted(set(found))) or ("CNY",)

    def run(self) -> list[CheckResult]:
        if not self.check("contract", "class attributes and code tables", self.check_contract):
            return self.results
        self.load_samples()
        for name, (data, batch) in self.samples.items():
            self.check("local round trip", name, partial(self.local_round_trip, data, batch))
            self.check("streaming", name, partial(self.streamed_like_whole, data, batch))
        self.canonical_round_trips()
        self.code_tables()
        self.check("encoding", "text outside the BMP in the declared encoding", self.encoding)
        self.refusals()
        return self.results

    # -- checks ---------------------------------------------------------------

    def check_contract(self) -> None:
        adapter = self.adapter
        problems: list[str] = []
        for attribute in ("name", "media_type", "encoding", "file_suffix"):
            value = getattr(adapter, attribute, None)
            if not isinstance(value, str) or not value:
                problems.append(f"{attribute} must be a non-empty string")
        if not problems:
            if "/" not in adapter.media_type:
                problems.append(f"media_type {adapter.media_type!r} is not a media type")
            try:
                codecs.lookup(adapter.encoding)
            except LookupError:
                problems.append(f"encoding {adapter.encoding!r} is not a Python codec")
            if not adapter.file_suffix.startswith("."):
                problems.append(f"file_suffix {adapter.file_suffix!r} must start with a dot")
        if not self.record_types:
            problems.append("record_types names no canonical record type")
        tables = adapter.code_tables()
        if not isinstance(tables, Mapping) or not all(
            isinstance(t, CodeTable) for t in tables.values()
        ):
            problems.append("code_tables() must map names to gateway.adapter.CodeTable")
        if problems:
            raise _CheckFailed("; ".join(problems))

    def load_samples(self) -> None:
        def load() -> None:
            if not self.samples_dir.is_dir():
                raise _CheckFailed(f"{self.samples_dir} is not a directory")
            paths = sorted(self.samples_dir.glob(f"*{self.adapter.file_suffix}"))
            if not paths:
                raise _CheckFailed(f"no *{self.adapter.file_suffix} files in {self.samples_dir}")
            refused: list[str] = []
            for path in paths:
                data = path.read_bytes()
                try:
                    self.samples[path.name] = (data, self.adapter.decode(data))
                except LocalFileInvalid as exc:
                    refused.append(f"{path.name}: {exc.message}")
            if refused:
                raise _CheckFailed("samples refused:\n" + "\n".join(refused))

        if not self.check("samples", f"decode every sample in {self.samples_dir}", load):
            return

        def coverage() -> None:
            seen = {r.record_type for _, batch in self.samples.values() for r in batch.records}
            missing = [t.value for t in self.record_types if t not in seen]
            if missing:
                raise _CheckFailed(f"no sample holds a {', '.join(missing)}")

        self.check("samples", "every supported record type appears", coverage)

    def local_round_trip(self, data: bytes, batch: Batch) -> None:
        context = self.context(batch)
        written = self.adapter.encode(list(batch.records), context)
        try:
            written.decode(self.adapter.encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise _CheckFailed(f"encode wrote bytes that are not {self.adapter.encoding}") from exc
        try:
            again = self.adapter.decode(written)
        except LocalFileInvalid as exc:
            raise _CheckFailed(f"decode refused what encode wrote: {exc.message}") from exc
        _compare(batch.records, again.records)
        for attribute in ("batch_id", "sender_bureau", "sent_at"):
            before = getattr(batch, attribute)
            if before is not None and getattr(again, attribute) != before:
                raise _CheckFailed(f"batch header value {attribute} changed")

    def streamed_like_whole(self, data: bytes, batch: Batch) -> None:
        """iter_decode (large files) must give exactly what decode gives."""
        try:
            streamed = list(self.adapter.iter_decode(io.BytesIO(data)))
        except LocalFileInvalid as exc:
            raise _CheckFailed(
                f"iter_decode refused a sample decode accepts: {exc.message}"
            ) from exc
        _compare(batch.records, streamed)

    def canonical_round_trips(self) -> None:
        currencies = self.currencies()
        for record_type in self.record_types:
            strategy = record_strategy(record_type, currencies=currencies).map(lambda r: [r])
            self.check(
                "canonical round trip",
                f"{record_type.value} ({self.max_examples} generated records)",
                partial(self.property, strategy),
            )
        mixed = records_strategy(self.record_types, currencies=currencies)
        self.check(
            "canonical round trip",
            f"mixed batches ({self.max_examples} generated batches)",
            lambda: self.property(mixed),
        )

    def property(self, strategy: st.SearchStrategy[list[Record]]) -> None:
        last_failure: list[str] = []

        @settings(
            max_examples=self.max_examples,
            database=None,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            verbosity=Verbosity.quiet,
            report_multiple_bugs=False,
            print_blob=False,
        )
        @given(strategy)
        def round_trip(records: list[Record]) -> None:
            try:
                _compare(records, self.round_trip(records).records)
            except Exception as exc:
                last_failure[:] = [
                    _describe(exc) if not isinstance(exc, _CheckFailed) else str(exc)
                ]
                raise

        try:
            round_trip()
        except Exception as exc:
            raise _CheckFailed(last_failure[0] if last_failure else _describe(exc)) from exc

    def code_tables(self) -> None:
        tables = self.adapter.code_tables()
        by_field: dict[tuple[RecordType, str], list[tuple[str, CodeTable]]] = {}
        for name, table in tables.items():
            by_field.setdefault((table.record_type, table.canonical_field), []).append(
                (name, table)
            )
        for (record_type, field_name), named in by_field.items():
            names = ", ".join(name for name, _ in named)
            self.check(
                "code tables",
                f"{names} covers {record_type.value}.{field_name} one-to-one",
                partial(self.table_coverage, record_type, field_name, named),
            )
        for name, table in tables.items():
            self.check(
                "code tables",
                f"{name}: every code survives encode and decode",
                partial(self.table_round_trip, table),
            )

    def table_coverage(
        self, record_type: RecordType, field_name: str, named: list[tuple[str, CodeTable]]
    ) -> None:
        model = _MODELS[record_type]
        if field_name not in model.model_fields:
            raise _CheckFailed(f"{model.__name__} has no field {field_name}")
        values = [value for _, table in named for value in table.codes.values()]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise _CheckFailed(f"canonical values with more than one code: {', '.join(repeated)}")
        members = _enum_of(model.model_fields[field_name].annotation)
        if members is not None:
            allowed = {member.value for member in members}
            unknown = sorted(set(values) - allowed)
            missing = sorted(allowed - set(values))
            if unknown:
                raise _CheckFailed(f"codes map to values the field lacks: {', '.join(unknown)}")
            if missing:
                raise _CheckFailed(f"values with no local code: {', '.join(missing)}")
        else:
            bad = [v for v in values if not re.fullmatch(r"[A-Z]{3}", v)]
            if field_name == "registered_capital_currency" and bad:
                raise _CheckFailed(f"not ISO 4217 alphabetic codes: {', '.join(bad)}")

    def table_round_trip(self, table: CodeTable) -> None:
        if table.record_type not in self.record_types:
            raise _CheckFailed(f"the adapter does not carry {table.record_type.value}")
        base = example_record(table.record_type)
        failures: list[str] = []
        for code, value in table.codes.items():
            update: dict[str, Any] = {table.canonical_field: value}
            if table.record_type is RecordType.FEEDBACK and table.canonical_field == "status":
                update["original_type"] = FeedbackStatus(value).answers
            if (
                table.record_type is RecordType.FEEDBACK
                and table.canonical_field == "original_type"
            ):
                update["status"] = _first_status_for(OriginalType(value))
            record = parse_record({**base.model_dump(), **update})
            written = self.adapter.encode([record], self.context())
            if code not in written.decode(self.adapter.encoding):
                failures.append(f"{code} ({value}) does not appear in the encoded file")
                continue
            back = self.adapter.decode(written).records
            if [getattr(r, table.canonical_field) for r in back] != [
                getattr(record, table.canonical_field)
            ]:
                failures.append(f"{code} ({value}) came back changed")
        if failures:
            raise _CheckFailed("\n".join(failures))

    def encoding(self) -> None:
        rare = "𠮷𪚥"
        record_type = self.record_types[0]
        base = example_record(record_type)
        field_name = {
            RecordType.BUSINESS_REGISTRATION: "name",
            RecordType.CONSUMER_COMPLAINT: "subject",
            RecordType.ENFORCEMENT_REFERRAL: "violation",
            RecordType.FEEDBACK: "officer",
        }[record_type]
        record = parse_record({**base.model_dump(), field_name: f"遂宁{rare}铜梁"})
        written = self.adapter.encode([record], self.context())
        if rare.encode(self.adapter.encoding) not in written:
            raise _CheckFailed(f"{rare} is not written as {self.adapter.encoding} bytes")
        if "xml" in self.adapter.media_type:
            declared = re.match(
                rb"""<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""", written
            )
            if declared is None:
                raise _CheckFailed("the XML declaration names no encoding")
            name = declared.group(1).decode("ascii")
            if codecs.lookup(name).name != codecs.lookup(self.adapter.encoding).name:
                raise _CheckFailed(
                    f"the XML declaration says {name}, the adapter {self.adapter.encoding}"
                )
        _compare([record], self.adapter.decode(written).records)

    # -- refusals -------------------------------------------------------------

    def refusals(self) -> None:
        for record_type in self.record_types:
            record = self.sample_record(record_type)
            for description, corrupted, expect in _canonical_corruptions(record):
                self.check(
                    "refusal",
                    f"{record_type.value}: {description}",
                    partial(self.refused_record, record, corrupted, expect),
                )
        self.check("refusal", "personal information is masked in errors", self.pi_masked)
        sample = next(iter(self.samples.values()), None)
        data = sample[0] if sample else None
        for description, garbage in self.garbage(data):
            self.check("refusal", description, partial(self.refused_bytes, garbage))
        if data is not None:
            self.check(
                "refusal", "truncated sample does not crash decode", lambda: self.no_crash(data)
            )
            self.check("refusal", "input over max_bytes", lambda: self.oversized(data))
            for corruption in self.adapter.corruptions(data):
                self.check(
                    "refusal",
                    f"adapter corruption: {corruption.description}",
                    partial(self.refused_bytes, corruption.data, rule=corruption.rule),
                )
        if "xml" in self.adapter.media_type:
            self.check("refusal", "entity-expansion bomb (billion laughs)", self.bomb)

    def sample_record(self, record_type: RecordType) -> Record:
        for _, batch in self.samples.values():
            for record in batch.records:
                if record.record_type is record_type:
                    return record
        return example_record(record_type)

    def refused_record(self, original: Record, corrupted: Record, expect: Expect) -> None:
        # The corrupted record goes second so the error must say which record it was.
        companion = self.sample_record(self.record_types[0])
        written = self.adapter.encode([companion, corrupted], self.context())
        try:
            self.adapter.decode(written)
        except LocalFileInvalid as exc:
            _require_located(exc, position=2, record=original, expect=expect)
            return
        except Exception as exc:
            raise _CheckFailed(f"raised {_describe(exc)} instead of LocalFileInvalid") from exc
        raise _CheckFailed("the corrupted file was accepted")

    def pi_masked(self) -> None:
        if RecordType.BUSINESS_REGISTRATION not in self.record_types:
            return
        base = self.sample_record(RecordType.BUSINESS_REGISTRATION)
        corrupted = base.model_copy(
            update={
                "legal_representative_id_type": IdType.RESIDENT_ID,
                "legal_representative_id_number": _BAD_RESIDENT_ID,
            }
        )
        written = self.adapter.encode([corrupted], self.context())
        try:
            self.adapter.decode(written)
        except LocalFileInvalid as exc:
            shown = "\n".join([exc.message, str(exc), *(str(p) for p in exc.problems)])
            if _BAD_RESIDENT_ID in shown:
                raise _CheckFailed("the error repeats a resident id number unmasked") from exc
            _require_located(
                exc,
                position=1,
                record=base,
                expect=Expect("legal_representative_id_number", ("resident_id.",)),
            )
            return
        raise _CheckFailed("a resident id with a wrong check character was accepted")

    def garbage(self, data: bytes | None) -> Iterator[tuple[str, bytes]]:
        noise = random.Random(20261127).randbytes(512)  # noqa: S311 - test noise, not secrets
        yield "random bytes", noise
        yield "empty file", b""
        if data:
            middle = len(data) // 2
            broken = data[:middle] + b"\xff\xfe\x80" + data[middle:]
            try:
                broken.decode(self.adapter.encoding)
            except UnicodeDecodeError:
                yield f"bytes that are not {self.adapter.encoding}", broken

    def refused_bytes(self, data: bytes, rule: str | None = None) -> None:
        try:
            self.adapter.decode(data)
        except LocalFileInvalid as exc:
            if rule is not None and all(p.rule != rule for p in exc.problems):
                raise _CheckFailed(f"refused, but not for rule {rule}: {exc.message}") from exc
            return
        except Exception as exc:
            raise _CheckFailed(f"raised {_describe(exc)} instead of LocalFileInvalid") from exc
        raise _CheckFailed("the file was accepted")

    def no_crash(self, data: bytes) -> None:
        for cut in (len(data) // 3, len(data) // 2, len(data) - 1):
            try:
                self.adapter.decode(data[:cut])
            except LocalFileInvalid:
                continue
            except Exception as exc:
                raise _CheckFailed(f"cut at byte {cut}: raised {_describe(exc)}") from exc

    def oversized(self, data: bytes) -> None:
        probe = type(self.adapter)()
        # An instance attribute shadows the class limit for this probe only.
        setattr(probe, "max_bytes", len(data) - 1)  # noqa: B010
        try:
            probe.decode(data)
        except LocalFileInvalid as exc:
            if all(p.rule != "file.too_large" for p in exc.problems):
                raise _CheckFailed(f"refused, but not as too large: {exc.message}") from exc
            return
        raise _CheckFailed("a file over max_bytes was decoded")

    def bomb(self) -> None:
        entities = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
        text = (
            f'<?xml version="1.0" encoding="{self.adapter.encoding.upper()}"?>\n'
            f'<!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]>\n<lolz>&lol9;</lolz>\n'
        )
        started = time.monotonic()
        self.refused_bytes(text.encode(self.adapter.encoding))
        elapsed = time.monotonic() - started
        if elapsed > _BOMB_SECONDS:
            raise _CheckFailed(f"refused, but only after {elapsed:.1f} s")


@dataclass(frozen=True, slots=True)
class Expect:
    """What the refusal of a corrupted record must name: canonical field and rule prefixes."""

    canonical_field: str
    rules: tuple[str, ...]


def _require_located(
    exc: LocalFormatError, *, position: int, record: Record, expect: Expect
) -> None:
    matching = [
        p
        for p in exc.problems
        if p.position == position
        and (p.canonical_field == expect.canonical_field or p.canonical_field is None)
        and p.rule.startswith(expect.rules)
    ]
    if not matching:
        raise _CheckFailed(
            f"no problem names record #{position}, field {expect.canonical_field}, "
            f"rule {'|'.join(expect.rules)}*: {exc.message}"
        )
    problem = matching[0]
    if not problem.field:
        raise _CheckFailed(f"the problem does not name the local field: {problem}")
    own_id = record_key(record)
    if expect.canonical_field != "uscc" and problem.record_id != own_id:
        raise _CheckFailed(f"the problem does not name the record's own id {own_id}: {problem}")


def _enum_of(annotation: Any) -> list[enum.Enum] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return list(candidate)
    return None


def _first_status_for(original: OriginalType) -> FeedbackStatus:
    return next(status for status in FeedbackStatus if status.answers is original)


def _break_uscc(code: str) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return code[:17] + alphabet[(alphabet.index(code[17]) + 1) % len(alphabet)]


def _canonical_corruptions(record: Record) -> Iterator[tuple[str, Record, Expect]]:
    """Records that break one rule each; built without validation on purpose."""
    blank = _REQUIRED_TEXT[record.record_type]
    yield (
        f"required {blank} left empty",
        record.model_copy(update={blank: ""}),
        Expect(blank, ("text.blank", "field.missing", "missing", "string_too_short")),
    )
    uscc_rules = ("uscc.",)
    if isinstance(record, BusinessRegistration):
        yield (
            "USCC check character broken",
            record.model_copy(update={"uscc": _break_uscc(record.uscc)}),
            Expect("uscc", uscc_rules),
        )
        yield (
            "negative registered capital",
            record.model_copy(update={"registered_capital": Decimal("-1.00")}),
            Expect("registered_capital", ("money.", "greater_than_equal")),
        )
    elif isinstance(record, ConsumerComplaint):
        respondent = record.respondent.model_copy(
            update={"uscc": _break_uscc(record.respondent.uscc or "92510903MA6AB7Q52D")}
        )
        yield (
            "respondent USCC check character broken",
            record.model_copy(update={"respondent": respondent}),
            Expect("respondent.uscc", uscc_rules),
        )
        yield (
            "negative amount",
            record.model_copy(update={"amount": Decimal("-1.00")}),
            Expect("amount", ("money.", "greater_than_equal")),
        )
    elif isinstance(record, EnforcementReferral):
        party = record.party.model_copy(
            update={"uscc": _break_uscc(record.party.uscc or "91500151MA60K3C286")}
        )
        yield (
            "party USCC check character broken",
            record.model_copy(update={"party": party}),
            Expect("party.uscc", uscc_rules),
        )
