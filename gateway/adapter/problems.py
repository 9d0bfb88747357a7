"""What an adapter reports: one :class:`LocalProblem` per broken rule, and its errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.errors import (
    FieldViolation,
    GatewayFault,
    NotFound,
    PeerError,
    RecordInvalid,
)

# A broken file can hold one problem per field of millions of records; past this
# many the report says "and more" instead of growing without bound.
MAX_PROBLEMS = 200


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
