"""Refusal checks: corrupted records and files must be refused, naming record and field."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from gateway.adapter import (
    LocalFileInvalid,
    LocalFormatError,
)
from gateway.conformance.checks.common import (
    _BOMB_SECONDS,
    _CheckFailed,
    _describe,
    _KitBase,
)
from gateway.records import (
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    IdType,
    Record,
    RecordType,
    record_key,
)

_REQUIRED_TEXT: Mapping[RecordType, str] = {
    RecordType.BUSINESS_REGISTRATION: "name",
    RecordType.CONSUMER_COMPLAINT: "subject",
    RecordType.ENFORCEMENT_REFERRAL: "violation",
    RecordType.FEEDBACK: "officer",
}
# A resident id with a real birth date and a wrong check character.
_BAD_RESIDENT_ID = "110105194912310021"


class _Refusals(_KitBase):
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
