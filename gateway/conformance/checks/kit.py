"""The kit: every check in order, and :func:`run_checks`."""

from __future__ import annotations

import codecs
import enum
import io
import re
import typing
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from gateway.adapter import (
    Batch,
    CodeTable,
    LocalAdapter,
    LocalFileInvalid,
    load_adapter,
)
from gateway.conformance.checks.common import (
    _MODELS,
    _CheckFailed,
    _compare,
    _label,
)
from gateway.conformance.checks.refusals import _Refusals
from gateway.conformance.report import CheckResult, ConformanceReport
from gateway.conformance.samples import example_record, first_status_for
from gateway.errors import GatewayError
from gateway.records import (
    FeedbackStatus,
    OriginalType,
    RecordType,
    parse_record,
)


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


class _Kit(_Refusals):
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
        try:
            from gateway.conformance.checks import properties
        except ModuleNotFoundError as exc:
            if exc.name != "hypothesis":
                raise
            # Hypothesis ships in the ``conformance`` extra; without it every other
            # check still runs, and the report says why these did not.
            self.results.append(
                CheckResult(
                    "canonical round trip",
                    "property-based round trips of generated records",
                    True,
                    "skipped: Hypothesis is not installed "
                    "(pip install 'chuanyu-gateway[conformance]')",
                    skipped=True,
                )
            )
            return
        properties.canonical_round_trips(self)

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
                update["status"] = first_status_for(OriginalType(value))
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


def _enum_of(annotation: Any) -> list[enum.Enum] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return list(candidate)
    return None
