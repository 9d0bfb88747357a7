"""An agreement as data: its terms per direction and record type, and what it refuses with."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.clock import beijing_date
from gateway.errors import ConfigInvalid, PeerError
from gateway.privacy import PIKind
from gateway.records import (
    OriginalType,
    RecordType,
)


class SharingClass(enum.StrEnum):
    """国发〔2016〕51号: the sharing class a field belongs to."""

    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享: needs a legal basis
    NOT_SHARED = "not_shared"  # 不予共享: may never cross


class FieldAction(enum.StrEnum):
    ALLOW = "allow"  # crosses as it is
    DROP = "drop"  # removed by the sender before signing
    REFUSE = "refuse"  # a record carrying a value here is not sent at all


class RefusalReason(enum.StrEnum):
    AGREEMENT_UNKNOWN = "AGREEMENT_UNKNOWN"
    AGREEMENT_NOT_IN_FORCE = "AGREEMENT_NOT_IN_FORCE"
    AGREEMENT_PARTY_MISMATCH = "AGREEMENT_PARTY_MISMATCH"
    AGREEMENT_SUITE_REQUIRED = "AGREEMENT_SUITE_REQUIRED"
    AGREEMENT_RECORD_TYPE_NOT_ALLOWED = "AGREEMENT_RECORD_TYPE_NOT_ALLOWED"
    AGREEMENT_FIELD_REFUSED = "AGREEMENT_FIELD_REFUSED"
    # default_agreement only: no agreement, or more than one, covers the exchange.
    AGREEMENT_NONE_APPLIES = "AGREEMENT_NONE_APPLIES"
    AGREEMENT_AMBIGUOUS = "AGREEMENT_AMBIGUOUS"


class AgreementRefused(PeerError):
    """A record (or an envelope naming an agreement) falls outside that agreement.

    ``reason`` is one of :class:`RefusalReason`; ``fields`` names the offending field
    paths (never their values: they may be personal information).
    """

    reason = "AGREEMENT_REFUSED"

    def __init__(
        self,
        reason: RefusalReason,
        message: str,
        *,
        agreement_id: str = "",
        fields: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, reason=reason.value)
        self.agreement_id = agreement_id
        self.fields = fields


@dataclass(frozen=True, slots=True)
class AgreementProblem:
    """One broken rule in one agreement file."""

    file: str
    key: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message} [{self.rule}]"


class AgreementFileInvalid(ConfigInvalid):
    """One or more agreement files break a rule; the node must not start."""

    def __init__(self, problems: Iterable[AgreementProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n  ".join(str(p) for p in self.problems)
        super().__init__(f"agreements refused ({len(self.problems)} problems):\n  {lines}")


def beijing_today(now: dt.datetime) -> dt.date:
    """The Beijing calendar day of ``now`` (which must be timezone-aware)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return beijing_date(now)


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    path: str
    action: FieldAction
    sharing_class: SharingClass
    personal_info: PIKind | None


@dataclass(frozen=True, slots=True)
class RecordTerms:
    """What one agreement says about one record type in one direction."""

    record_type: RecordType
    purpose: str
    retention_days: int
    legal_basis: str
    fields: Mapping[str, FieldPolicy]
    # Feedback only: the record types it may answer (empty for the others).
    answers: frozenset[OriginalType] = frozenset()

    def paths(self, action: FieldAction) -> tuple[str, ...]:
        return tuple(p.path for p in self.fields.values() if p.action is action)


@dataclass(frozen=True, slots=True)
class DirectionTerms:
    sender: str
    receiver: str
    records: Mapping[RecordType, RecordTerms]


@dataclass(frozen=True, slots=True)
class Agreement:
    id: str
    title: str
    parties: tuple[str, ...]
    effective_from: dt.date
    effective_until: dt.date | None
    signature_suite: str | None
    directions: Mapping[tuple[str, str], DirectionTerms]
    source: str = field(default="<memory>", compare=False)

    def in_force(self, now: dt.datetime) -> bool:
        today = beijing_today(now)
        if today < self.effective_from:
            return False
        return self.effective_until is None or today <= self.effective_until

    def terms(self, sender: str, receiver: str, record_type: RecordType) -> RecordTerms | None:
        direction = self.directions.get((sender, receiver))
        return None if direction is None else direction.records.get(record_type)

    def period(self) -> str:
        """``2024-01-01 to 2028-12-31`` (Beijing days, inclusive)."""
        until = self.effective_until.isoformat() if self.effective_until else "open-ended"
        return f"{self.effective_from.isoformat()} to {until}"
