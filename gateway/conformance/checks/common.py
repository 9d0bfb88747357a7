"""What every check shares: the kit's plumbing, failure, and record comparison."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

from gateway.adapter import (
    Batch,
    EncodeContext,
    LocalAdapter,
    LocalFileInvalid,
)
from gateway.clock import BEIJING
from gateway.conformance.report import CheckResult
from gateway.conformance.samples import example_record
from gateway.errors import GatewayError
from gateway.records import (
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    Record,
    RecordType,
)

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


class _KitBase:
    """The adapter under test, its samples, and how a check records its result."""

    def __init__(self, adapter: LocalAdapter, samples: Path, max_examples: int) -> None:
        self.adapter = adapter
        self.samples_dir = samples
        self.max_examples = max_examples
        self.samples: dict[str, tuple[bytes, Batch]] = {}
        self.results: list[CheckResult] = []

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

    def sample_record(self, record_type: RecordType) -> Record:
        for _, batch in self.samples.values():
            for record in batch.records:
                if record.record_type is record_type:
                    return record
        return example_record(record_type)
