"""Cooperation agreements as data: which records and fields may cross, and for how long.

One TOML file per agreement (format: ``agreements/README.md``). :func:`load_agreements`
reads a directory once, at start, and refuses the whole set if any file breaks a rule —
a node must never run with an agreement it misread. Everything after loading is pure:
:class:`AgreementBook` takes records and times and returns records or decisions.

::

    PeerError
    └── AgreementRefused      a record outside the agreement (reason says which rule)
    ConfigInvalid
    └── AgreementFileInvalid  an agreement file breaks a rule (problems name file, key, rule)

Unlisted fields: every canonical field path of every record type an agreement allows must
be listed with a policy and a sharing class. There is no default policy, so a field added
to the canonical model later cannot cross (nor be silently dropped) until the agreement
is amended to say so: loading fails and names the missing paths.

Dates are Beijing calendar days: an agreement is in force on ``effective_from`` through
``effective_until`` inclusive, judged on ``now`` converted to UTC+8.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.errors import ConfigInvalid, PeerError, RecordInvalid
from gateway.identifiers import check_division_code
from gateway.privacy import PIKind
from gateway.records import (
    BusinessRegistration,
    ConsumerComplaint,
    EnforcementReferral,
    Feedback,
    OriginalType,
    Record,
    RecordType,
    parse_record,
    personal_info_paths,
)

__all__ = [
    "KNOWN_SUITES",
    "Agreement",
    "AgreementBook",
    "AgreementFileInvalid",
    "AgreementProblem",
    "AgreementRefused",
    "CanonicalField",
    "DirectionTerms",
    "FieldAction",
    "FieldPolicy",
    "RecordTerms",
    "RefusalReason",
    "SharingClass",
    "beijing_today",
    "canonical_fields",
    "load_agreements",
    "parse_agreement",
]

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")

# Suites an agreement may require; names as in gateway.signing (SM2 is announced in
# DESIGN.md, so an agreement may already require it before this node can sign with it).
KNOWN_SUITES = frozenset({"ed25519", "sm2-sm3"})

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_MAX_RETENTION_DAYS = 36_500


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


# ---------------------------------------------------------------------------
# The canonical field catalogue


@dataclass(frozen=True, slots=True)
class CanonicalField:
    """A leaf field of a canonical record, as an agreement names it (dotted path)."""

    path: str
    # May be absent: its default is None or an empty sequence, so dropping it removes data.
    optional: bool
    personal_info: PIKind | None
    # Inside a sequence of nested models (``evidence.name``): the path names every element.
    in_sequence: bool


_MODELS: dict[RecordType, type[BaseModel]] = {
    RecordType.BUSINESS_REGISTRATION: BusinessRegistration,
    RecordType.CONSUMER_COMPLAINT: ConsumerComplaint,
    RecordType.ENFORCEMENT_REFERRAL: EnforcementReferral,
    RecordType.FEEDBACK: Feedback,
}


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _walk(
    model: type[BaseModel], prefix: str, pi: Mapping[str, PIKind], in_sequence: bool
) -> Iterator[CanonicalField]:
    for name, info in model.model_fields.items():
        if not prefix and name == "record_type":
            continue  # the discriminator: always present, never a policy question
        path = f"{prefix}{name}"
        nested = _nested_model(info.annotation)
        if nested is not None:
            sequence = typing.get_origin(info.annotation) in (tuple, list)
            yield from _walk(nested, f"{path}.", pi, in_sequence or sequence)
            continue
        # A default like "CNY" is not absence: dropping it would not remove anything.
        optional = not info.is_required() and info.default in (None, ())
        yield CanonicalField(path, optional, pi.get(path), in_sequence)


def canonical_fields(record_type: RecordType) -> Mapping[str, CanonicalField]:
    """Every leaf field path of ``record_type``'s canonical model, in model order."""
    return _CATALOGUE[record_type]


def _catalogue(record_type: RecordType) -> Mapping[str, CanonicalField]:
    model = _MODELS[record_type]
    fields = {f.path: f for f in _walk(model, "", personal_info_paths(model), False)}
    return types.MappingProxyType(fields)


_CATALOGUE = {rt: _catalogue(rt) for rt in RecordType}


def _values_at(obj: Any, parts: tuple[str, ...]) -> list[Any]:
    """The values at a dotted path; a sequence of models contributes one value per element."""
    value = getattr(obj, parts[0], None)
    rest = parts[1:]
    if not rest:
        return [value]
    if isinstance(value, tuple | list):
        return [v for element in value for v in _values_at(element, rest)]
    if value is None:
        return []
    return _values_at(value, rest)


def _has_value(value: Any) -> bool:
    return value is not None and value not in ("", ())


def _carries(record: Record, path: str) -> bool:
    return any(_has_value(v) for v in _values_at(record, tuple(path.split("."))))


def _delete_at(data: Any, parts: list[str]) -> None:
    if isinstance(data, list | tuple):
        for element in data:
            _delete_at(element, parts)
        return
    if not isinstance(data, dict) or parts[0] not in data:
        return
    if len(parts) == 1:
        del data[parts[0]]  # the model's default (None or empty) takes its place
    else:
        _delete_at(data[parts[0]], parts[1:])


def beijing_today(now: dt.datetime) -> dt.date:
    """The Beijing calendar day of ``now`` (which must be timezone-aware)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(BEIJING).date()


# ---------------------------------------------------------------------------
# The parsed agreement


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


# ---------------------------------------------------------------------------
# Decisions


class AgreementBook:
    """Every agreement a node knows, in force or not (expired ones still set retention)."""

    def __init__(self, agreements: Iterable[Agreement]) -> None:
        by_id: dict[str, Agreement] = {}
        problems: list[AgreementProblem] = []
        for agreement in agreements:
            first = by_id.get(agreement.id)
            if first is not None:
                problems.append(
                    AgreementProblem(
                        agreement.source,
                        "id",
                        "id.duplicate",
                        f"agreement id {agreement.id!r} is already used by {first.source}",
                    )
                )
                continue
            by_id[agreement.id] = agreement
        if problems:
            raise AgreementFileInvalid(problems)
        self.agreements: Mapping[str, Agreement] = types.MappingProxyType(by_id)

    def __len__(self) -> int:
        return len(self.agreements)

    def get(self, agreement_id: str) -> Agreement:
        agreement = self.agreements.get(agreement_id)
        if agreement is None:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_UNKNOWN,
                f"agreement {agreement_id!r} is not known to this node",
                agreement_id=agreement_id,
            )
        return agreement

    def terms_for(
        self, agreement_id: str, sender: str, receiver: str, record_type: RecordType
    ) -> RecordTerms | None:
        """The terms (retention, purpose) an exchange was made under, in force or not."""
        agreement = self.agreements.get(agreement_id)
        return None if agreement is None else agreement.terms(sender, receiver, record_type)

    def _admit(
        self,
        *,
        agreement_id: str,
        sender: str,
        receiver: str,
        record_type: RecordType,
        record: Record,
        now: dt.datetime,
        suite: str,
    ) -> tuple[Agreement, RecordTerms]:
        agreement = self.get(agreement_id)

        def refuse(reason: RefusalReason, message: str) -> AgreementRefused:
            return AgreementRefused(reason, message, agreement_id=agreement_id)

        if not agreement.in_force(now):
            raise refuse(
                RefusalReason.AGREEMENT_NOT_IN_FORCE,
                f"agreement {agreement_id} is in force {agreement.period()}, "
                f"not on {beijing_today(now).isoformat()} (Beijing)",
            )
        direction = agreement.directions.get((sender, receiver))
        if direction is None:
            outsiders = [b for b in (sender, receiver) if b not in agreement.parties]
            if outsiders:
                detail = f"bureau {', '.join(outsiders)} is not a party"
            else:
                detail = f"it allows nothing from {sender} to {receiver}"
            raise refuse(
                RefusalReason.AGREEMENT_PARTY_MISMATCH,
                f"agreement {agreement_id} does not cover {sender} → {receiver}: {detail} "
                f"(parties {', '.join(agreement.parties)})",
            )
        if agreement.signature_suite is not None and suite != agreement.signature_suite:
            raise refuse(
                RefusalReason.AGREEMENT_SUITE_REQUIRED,
                f"agreement {agreement_id} requires signature suite "
                f"{agreement.signature_suite}, not {suite}",
            )
        if record.record_type is not record_type:
            raise refuse(
                RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
                f"record type {record_type.value} named, but the record is a "
                f"{record.record_type.value}",
            )
        terms = direction.records.get(record_type)
        if terms is None:
            allowed = ", ".join(rt.value for rt in direction.records) or "nothing"
            raise refuse(
                RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
                f"agreement {agreement_id} does not allow {record_type.value} from {sender} "
                f"to {receiver} (allowed: {allowed})",
            )
        if isinstance(record, Feedback) and record.original_type not in terms.answers:
            answered = ", ".join(sorted(t.value for t in terms.answers))
            raise refuse(
                RefusalReason.AGREEMENT_RECORD_TYPE_NOT_ALLOWED,
                f"agreement {agreement_id} allows feedback from {sender} to {receiver} only "
                f"on {answered}, not on {record.original_type.value}",
            )
        return agreement, terms

    def for_outbound(
        self,
        agreement_id: str,
        sender: str,
        receiver: str,
        record: Record,
        *,
        now: dt.datetime,
        suite: str,
    ) -> Record:
        """The record as it may be sent: ``drop`` fields removed, or :class:`AgreementRefused`.

        Returns ``record`` itself when nothing is dropped, else a new validated record.
        ``suite`` is the signature suite the sender will sign with.
        """
        record_type = record.record_type
        _, terms = self._admit(
            agreement_id=agreement_id,
            sender=sender,
            receiver=receiver,
            record_type=record_type,
            record=record,
            now=now,
            suite=suite,
        )
        refused = tuple(p for p in terms.paths(FieldAction.REFUSE) if _carries(record, p))
        if refused:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_FIELD_REFUSED,
                f"agreement {agreement_id} refuses {record_type.value} records from {sender} "
                f"to {receiver} that carry {', '.join(refused)}: remove the value(s) or send "
                "under another agreement",
                agreement_id=agreement_id,
                fields=refused,
            )
        dropped = tuple(p for p in terms.paths(FieldAction.DROP) if _carries(record, p))
        if not dropped:
            return record
        data = record.model_dump()
        for path in dropped:
            _delete_at(data, path.split("."))
        try:
            return parse_record(data, context=f"{record_type.value} minimised under {agreement_id}")
        except RecordInvalid as exc:
            # A drop the model allows field by field may still break a cross-field rule
            # (a party needs a USCC or an id number): such a record cannot cross at all.
            raise AgreementRefused(
                RefusalReason.AGREEMENT_FIELD_REFUSED,
                f"agreement {agreement_id} drops {', '.join(dropped)}, which leaves this "
                f"{record_type.value} invalid: {exc.message}",
                agreement_id=agreement_id,
                fields=dropped,
            ) from None

    def check_inbound(
        self,
        agreement_id: str,
        sender: str,
        receiver: str,
        record_type: RecordType,
        record: Record,
        *,
        now: dt.datetime,
        suite: str,
    ) -> Agreement:
        """Accept a received record under its named agreement, or :class:`AgreementRefused`.

        ``now`` is the time of receipt; ``suite`` the suite the envelope was signed with.
        A field the agreement drops or refuses must arrive without a value: a sender that
        failed to minimise is refused, not silently cleaned up.
        """
        agreement, terms = self._admit(
            agreement_id=agreement_id,
            sender=sender,
            receiver=receiver,
            record_type=record_type,
            record=record,
            now=now,
            suite=suite,
        )
        barred = tuple(
            p.path
            for p in terms.fields.values()
            if p.action is not FieldAction.ALLOW and _carries(record, p.path)
        )
        if barred:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_FIELD_REFUSED,
                f"agreement {agreement_id} does not let {', '.join(barred)} cross in "
                f"{record_type.value} records from {sender} to {receiver}",
                agreement_id=agreement_id,
                fields=barred,
            )
        return agreement

    def default_agreement(
        self,
        sender: str,
        receiver: str,
        record_type: RecordType,
        now: dt.datetime,
        *,
        answers: OriginalType | None = None,
    ) -> Agreement:
        """The one agreement in force that covers this exchange, when the caller names none.

        For feedback pass ``answers`` (the original's type): a complaint's feedback and a
        referral's feedback usually travel under different agreements. More than one
        candidate is refused rather than guessed — the purpose differs between agreements.
        """
        covering = [
            a
            for a in self.agreements.values()
            if (terms := a.terms(sender, receiver, record_type)) is not None
            and (answers is None or answers in terms.answers)
        ]
        what = record_type.value + (f" on {answers.value}" if answers else "")
        in_force = sorted((a for a in covering if a.in_force(now)), key=lambda a: a.id)
        if len(in_force) == 1:
            return in_force[0]
        if len(in_force) > 1:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_AMBIGUOUS,
                f"{len(in_force)} agreements in force cover {what} from {sender} to "
                f"{receiver} ({', '.join(a.id for a in in_force)}): name one",
            )
        if covering:
            raise AgreementRefused(
                RefusalReason.AGREEMENT_NOT_IN_FORCE,
                f"no agreement covering {what} from {sender} to {receiver} is in force on "
                f"{beijing_today(now).isoformat()} (Beijing): "
                + ", ".join(f"{a.id} {a.period()}" for a in covering),
            )
        raise AgreementRefused(
            RefusalReason.AGREEMENT_NONE_APPLIES,
            f"no agreement covers {what} from {sender} to {receiver}",
        )


# ---------------------------------------------------------------------------
# Parsing and validation

_TOP_KEYS = frozenset(
    {"id", "title", "parties", "effective_from", "effective_until", "signature_suite", "directions"}
)
_DIRECTION_KEYS = frozenset({"from", "to", "records"})
_TERMS_KEYS = frozenset({"purpose", "retention_days", "legal_basis", "answers", "fields"})
_POLICY_KEYS = frozenset({"policy", "class"})


class _Problems:
    """Collects every problem of one file, so an operator fixes them in one pass."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[AgreementProblem] = []

    def add(self, key: str, rule: str, message: str) -> None:
        self.found.append(AgreementProblem(self.source, key, rule, message))

    def unknown_keys(self, table: Mapping[str, Any], allowed: frozenset[str], at: str) -> None:
        for key in sorted(set(table) - allowed):
            self.add(
                f"{at}.{key}" if at else key,
                "key.unknown",
                f"unknown key (expected one of: {', '.join(sorted(allowed))})",
            )

    def text(self, table: Mapping[str, Any], key: str, at: str, *, required: bool) -> str | None:
        where = f"{at}.{key}" if at else key
        value = table.get(key)
        if value is None:
            if required:
                self.add(where, "key.missing", "required key is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(where, "type.text", "must be a non-empty string")
            return None
        return value.strip()

    def date(self, table: Mapping[str, Any], key: str, *, required: bool) -> dt.date | None:
        value = table.get(key)
        if value is None:
            if required:
                self.add(key, "key.missing", "required key is missing")
            return None
        # tomllib gives datetime for 2024-01-01T00:00: a subclass of date, so test it first.
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            self.add(key, "type.date", "must be a TOML local date such as 2024-01-01 (no quotes)")
            return None
        return value

    def table(self, value: Any, where: str) -> Mapping[str, Any] | None:
        if not isinstance(value, dict):
            self.add(where, "type.table", "must be a table")
            return None
        return value

    def bureau(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str):
            self.add(where, "parties.bureau", "a bureau id must be a string of 6 digits")
            return None
        problem = check_division_code(value)
        if problem is not None:
            self.add(where, "parties.bureau", f"bureau id {value!r}: {problem.message}")
            return None
        return value


def _flatten_fields(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``complainant.phone = {…}`` (a TOML dotted key) and ``"complainant.phone" = {…}``
    mean the same field: both end up as the dotted path."""
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and not (set(value) & _POLICY_KEYS):
            yield from _flatten_fields(value, f"{path}.")
        else:
            yield path, value


_E = typing.TypeVar("_E", bound=enum.StrEnum)


def _choice(
    kind: type[_E], entry: Mapping[str, Any], key: str, where: str, problems: _Problems
) -> _E | None:
    value = entry.get(key)
    if value is None:
        problems.add(f"{where}.{key}", "key.missing", "required key is missing")
        return None
    try:
        return kind(value)
    except ValueError:
        problems.add(
            f"{where}.{key}",
            f"{key}.unknown",
            f"{value!r} is not one of {', '.join(m.value for m in kind)}",
        )
        return None


def _parse_fields(
    fields_table: Mapping[str, Any], record_type: RecordType, at: str, problems: _Problems
) -> dict[str, FieldPolicy]:
    catalogue = canonical_fields(record_type)
    policies: dict[str, FieldPolicy] = {}
    for path, entry in _flatten_fields(fields_table):
        where = f"{at}.{path}"
        if path in policies:
            # "a.b" (quoted) and a.b (dotted) are different TOML keys for the same field.
            problems.add(where, "field.duplicate", f"{path} is listed twice")
            continue
        known = catalogue.get(path)
        if known is None:
            problems.add(
                where,
                "field.unknown",
                f"{path!r} is not a field of the canonical {record_type.value} record",
            )
            continue
        if not isinstance(entry, dict):
            problems.add(
                where,
                "field.entry",
                'must be a table like { policy = "allow", class = "conditional" }',
            )
            continue
        problems.unknown_keys(entry, _POLICY_KEYS, where)
        action = _choice(FieldAction, entry, "policy", where, problems)
        sharing = _choice(SharingClass, entry, "class", where, problems)
        if action is None or sharing is None:
            continue
        if action is FieldAction.DROP and not known.optional:
            problems.add(
                f"{where}.policy",
                "drop.required_field",
                f"{path} is required in the canonical record, so it cannot be dropped "
                "(allow it, or leave the record type out of this direction)",
            )
        if action is FieldAction.REFUSE and not known.optional:
            problems.add(
                f"{where}.policy",
                "refuse.required_field",
                f"{path} always has a value, so refusing it would refuse every record "
                "(leave the record type out of this direction instead)",
            )
        if known.personal_info is not None and sharing is SharingClass.UNCONDITIONAL:
            problems.add(
                f"{where}.class",
                "class.pi_unconditional",
                f"{path} is personal information ({known.personal_info.value}): "
                "it can be shared on conditions at most",
            )
        if sharing is SharingClass.NOT_SHARED and action is FieldAction.ALLOW:
            problems.add(
                f"{where}.policy",
                "class.not_shared_allowed",
                f"{path} is in class not_shared, so it must be dropped or refused",
            )
        policies[path] = FieldPolicy(path, action, sharing, known.personal_info)
    missing = [p for p in catalogue if p not in policies]
    # Unknown or malformed entries already produced a problem; "missing" would repeat it.
    listed = {path for path, _ in _flatten_fields(fields_table)}
    missing = [p for p in missing if p not in listed]
    if missing:
        problems.add(
            at,
            "field.missing",
            f"every field of {record_type.value} must be listed; missing: {', '.join(missing)}",
        )
    return policies


def _parse_terms(
    raw: Any, record_type: RecordType, at: str, problems: _Problems
) -> RecordTerms | None:
    table = problems.table(raw, at)
    if table is None:
        return None
    problems.unknown_keys(table, _TERMS_KEYS, at)
    purpose = problems.text(table, "purpose", at, required=True)
    legal_basis = problems.text(table, "legal_basis", at, required=False) or ""
    retention = table.get("retention_days")
    if retention is None:
        problems.add(f"{at}.retention_days", "key.missing", "required key is missing")
    elif (
        isinstance(retention, bool)
        or not isinstance(retention, int)
        or not 1 <= retention <= _MAX_RETENTION_DAYS
    ):
        problems.add(
            f"{at}.retention_days",
            "retention.range",
            f"must be a whole number of days from 1 to {_MAX_RETENTION_DAYS}",
        )
        retention = None

    answers: set[OriginalType] = set()
    raw_answers = table.get("answers")
    if record_type is RecordType.FEEDBACK:
        if not isinstance(raw_answers, list) or not raw_answers:
            problems.add(
                f"{at}.answers",
                "feedback.answers",
                "feedback must list the record types it answers, e.g. "
                'answers = ["consumer_complaint"]',
            )
        else:
            for value in raw_answers:
                try:
                    answers.add(OriginalType(value))
                except ValueError:
                    problems.add(
                        f"{at}.answers",
                        "feedback.answers",
                        f"{value!r} is not a record type feedback can answer "
                        f"({', '.join(t.value for t in OriginalType)})",
                    )
    elif raw_answers is not None:
        problems.add(f"{at}.answers", "feedback.answers", "only feedback answers other records")

    fields_raw = table.get("fields")
    policies: dict[str, FieldPolicy] = {}
    if fields_raw is None:
        problems.add(f"{at}.fields", "key.missing", "required key is missing")
    elif (fields_table := problems.table(fields_raw, f"{at}.fields")) is not None:
        policies = _parse_fields(fields_table, record_type, f"{at}.fields", problems)

    conditional = [
        p.path
        for p in policies.values()
        if p.action is FieldAction.ALLOW and p.sharing_class is SharingClass.CONDITIONAL
    ]
    if conditional and not legal_basis:
        # 国发〔2016〕51号: conditional sharing needs a basis the receiving bureau can cite.
        problems.add(
            f"{at}.legal_basis",
            "legal_basis.missing",
            f"conditional fields are allowed ({', '.join(conditional[:3])}"
            f"{', …' if len(conditional) > 3 else ''}): name the legal basis",
        )
    if purpose is None or not isinstance(retention, int):
        return None
    return RecordTerms(
        record_type=record_type,
        purpose=purpose,
        retention_days=retention,
        legal_basis=legal_basis,
        fields=types.MappingProxyType(policies),
        answers=frozenset(answers),
    )


def _parse_direction(
    raw: Any, index: int, parties: tuple[str, ...], problems: _Problems
) -> DirectionTerms | None:
    at = f"directions[{index}]"
    table = problems.table(raw, at)
    if table is None:
        return None
    problems.unknown_keys(table, _DIRECTION_KEYS, at)
    ends: list[str | None] = []
    for key in ("from", "to"):
        value = table.get(key)
        if value is None:
            problems.add(f"{at}.{key}", "key.missing", "required key is missing")
            ends.append(None)
            continue
        bureau = problems.bureau(value, f"{at}.{key}")
        if bureau is not None and parties and bureau not in parties:
            problems.add(
                f"{at}.{key}",
                "direction.party",
                f"bureau {bureau} is not one of the parties ({', '.join(parties)})",
            )
        ends.append(bureau)
    sender, receiver = ends
    if sender is not None and sender == receiver:
        problems.add(f"{at}.to", "direction.party", "a direction needs two different bureaus")
    records_raw = table.get("records")
    records: dict[RecordType, RecordTerms] = {}
    if records_raw is None:
        problems.add(f"{at}.records", "key.missing", "required key is missing")
    elif (records_table := problems.table(records_raw, f"{at}.records")) is not None:
        if not records_table:
            problems.add(f"{at}.records", "record_type.none", "a direction allows no records")
        for name, raw_terms in records_table.items():
            where = f"{at}.records.{name}"
            try:
                record_type = RecordType(name)
            except ValueError:
                problems.add(
                    where,
                    "record_type.unknown",
                    f"unknown record type {name!r} "
                    f"(known: {', '.join(rt.value for rt in RecordType)})",
                )
                continue
            terms = _parse_terms(raw_terms, record_type, where, problems)
            if terms is not None:
                records[record_type] = terms
    if sender is None or receiver is None:
        return None
    return DirectionTerms(sender, receiver, types.MappingProxyType(records))


def parse_agreement(data: Mapping[str, Any], source: str = "<memory>") -> Agreement:
    """Validate one parsed agreement file; :class:`AgreementFileInvalid` lists every problem."""
    problems = _Problems(source)
    problems.unknown_keys(data, _TOP_KEYS, "")
    agreement_id = problems.text(data, "id", "", required=True)
    if agreement_id is not None and not _ID.fullmatch(agreement_id):
        problems.add(
            "id", "id.format", "must be letters, digits, '.', '_' or '-' (at most 100 characters)"
        )
    title = problems.text(data, "title", "", required=True)

    parties: tuple[str, ...] = ()
    raw_parties = data.get("parties")
    if raw_parties is None:
        problems.add("parties", "key.missing", "required key is missing")
    elif not isinstance(raw_parties, list) or len(raw_parties) < 2:
        problems.add("parties", "parties.count", "must list at least two bureau ids")
    else:
        checked = [problems.bureau(v, f"parties[{i}]") for i, v in enumerate(raw_parties)]
        parties = tuple(b for b in checked if b is not None)
        if len(set(parties)) != len(parties):
            problems.add("parties", "parties.duplicate", "a bureau is listed twice")

    effective_from = problems.date(data, "effective_from", required=True)
    effective_until = problems.date(data, "effective_until", required=False)
    if effective_from and effective_until and effective_until < effective_from:
        problems.add(
            "effective_until",
            "dates.order",
            f"{effective_until.isoformat()} is before effective_from {effective_from.isoformat()}",
        )

    suite = problems.text(data, "signature_suite", "", required=False)
    if suite is not None and suite not in KNOWN_SUITES:
        problems.add(
            "signature_suite",
            "suite.unknown",
            f"unknown suite {suite!r} (known: {', '.join(sorted(KNOWN_SUITES))})",
        )

    directions: dict[tuple[str, str], DirectionTerms] = {}
    raw_directions = data.get("directions")
    if raw_directions is None:
        problems.add("directions", "key.missing", "required key is missing ([[directions]])")
    elif not isinstance(raw_directions, list) or not raw_directions:
        problems.add("directions", "type.array", "must be one or more [[directions]] tables")
    else:
        for index, raw in enumerate(raw_directions):
            direction = _parse_direction(raw, index, parties, problems)
            if direction is None:
                continue
            pair = (direction.sender, direction.receiver)
            if pair in directions:
                problems.add(
                    f"directions[{index}]",
                    "direction.duplicate",
                    f"{pair[0]} → {pair[1]} is already described by an earlier [[directions]]",
                )
                continue
            directions[pair] = direction
        _check_feedback_answers(directions, raw_directions, problems)

    if problems.found:
        raise AgreementFileInvalid(problems.found)
    assert agreement_id is not None and title is not None and effective_from is not None
    return Agreement(
        id=agreement_id,
        title=title,
        parties=parties,
        effective_from=effective_from,
        effective_until=effective_until,
        signature_suite=suite,
        directions=types.MappingProxyType(directions),
        source=source,
    )


def _check_feedback_answers(
    directions: Mapping[tuple[str, str], DirectionTerms],
    raw_directions: list[Any],
    problems: _Problems,
) -> None:
    """Feedback from B to A answers records A sent to B under the same agreement."""
    index_of = {
        (raw.get("from"), raw.get("to")): i
        for i, raw in enumerate(raw_directions)
        if isinstance(raw, dict)
        and isinstance(raw.get("from"), str)
        and isinstance(raw.get("to"), str)
    }
    for (sender, receiver), direction in directions.items():
        feedback = direction.records.get(RecordType.FEEDBACK)
        if feedback is None:
            continue
        back = directions.get((receiver, sender))
        for original in sorted(feedback.answers):
            if back is None or RecordType(original.value) not in back.records:
                problems.add(
                    f"directions[{index_of.get((sender, receiver), '?')}].records.feedback.answers",
                    "feedback.answers_unmatched",
                    f"feedback from {sender} to {receiver} answers {original.value}, but this "
                    f"agreement allows no {original.value} from {receiver} to {sender}",
                )


def load_agreements(directory: Path) -> AgreementBook:
    """Read and validate every ``*.toml`` in ``directory``; refuse all if one is wrong."""
    if not directory.is_dir():
        raise ConfigInvalid(f"{directory}: agreements directory does not exist")
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ConfigInvalid(
            f"{directory}: no agreement files (*.toml): without an agreement nothing may cross"
        )
    agreements: list[Agreement] = []
    problems: list[AgreementProblem] = []
    for path in files:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(AgreementProblem(source, "(file)", "file.unreadable", str(exc)))
            continue
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(AgreementProblem(source, "(file)", "toml.syntax", str(exc)))
            continue
        try:
            agreements.append(parse_agreement(data, source))
        except AgreementFileInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise AgreementFileInvalid(problems)
    return AgreementBook(agreements)
