"""Retention: which stored payloads are past their agreement's retention, and what replaces them.

Pure planning. The node hands over what it has stored (one :class:`StoredItem` per inbox or
outbox row, payload already decoded), the :class:`~gateway.agreements.AgreementBook` and the
time; :func:`plan_purge` answers with one :class:`PurgeAction` per payload to rewrite, each
carrying the anonymised record. The node then rewrites the stored payload and appends a
purge event to the transfer log. Nothing here reads or writes storage.

Why purging never breaks the transfer log: log entries hold message ids, record types,
agreement ids and SHA-256 digests of the payload — never the content. Rewriting a stored
payload changes no log entry, so the hash chain stays intact, and the purge itself is one
more appended event. What a purge does end is the ability to re-verify the *original*
signature over the stored bytes; after the purge, proof of what was exchanged rests on the
logged payload digest and the partner's signed receipt, which names the same digest.

Anonymisation (:func:`anonymise`) removes personal information rather than masking it: a
masked value (``李*``, ``138****8000``) keeps a surname and digits that, beside the facts
of a complaint, can still identify a person — and the point of a retention period is that
the person can no longer be identified. Optional PI fields are removed; required ones take
:data:`PLACEHOLDER`, so the result is still a valid canonical record (stored payloads are
decoded with validation).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.agreements import AgreementBook, canonical_fields
from gateway.errors import GatewayFault, RecordInvalid
from gateway.records import IdType, Record, RecordType, parse_record

__all__ = [
    "PLACEHOLDER",
    "AnonymisationFailed",
    "PurgeAction",
    "PurgePlan",
    "StoredItem",
    "Unresolved",
    "anonymise",
    "is_anonymised",
    "plan_purge",
    "purge_due_at",
]

# What a required personal-information field holds after its retention ran out.
PLACEHOLDER = "（已删除）"

# An id number replaced by the placeholder is no longer a resident id number, and the
# canonical record checks GB 11643 on those: its type must change with it.
_ID_TYPE_OF = {"legal_representative_id_number": "legal_representative_id_type"}


class AnonymisationFailed(GatewayFault):
    """A record could not be anonymised into a valid canonical record (a bug to fix)."""

    reason = "ANONYMISATION_FAILED"


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One stored payload as the store sees it; ``key`` is the store's own handle."""

    key: str
    sender: str
    receiver: str
    agreement_id: str
    record_type: RecordType
    # When the payload reached the store: received at (inbox) or accepted from local (outbox).
    stored_at: dt.datetime
    record: Record


@dataclass(frozen=True, slots=True)
class PurgeAction:
    """Rewrite the payload under ``key`` to ``anonymised``; log ``purged_paths`` (no values)."""

    key: str
    agreement_id: str
    retention_days: int
    due_at: dt.datetime
    anonymised: Record
    purged_paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A stored item whose retention cannot be determined: left alone, shown to operators.

    An agreement file removed from the directory is the usual cause; expired agreements
    must stay in the directory for exactly this reason.
    """

    key: str
    agreement_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PurgePlan:
    actions: tuple[PurgeAction, ...]
    unresolved: tuple[Unresolved, ...]


def purge_due_at(
    book: AgreementBook,
    *,
    agreement_id: str,
    sender: str,
    receiver: str,
    record_type: RecordType,
    stored_at: dt.datetime,
) -> dt.datetime | None:
    """When a payload's retention ends, or ``None`` if the agreement does not say.

    Works on metadata alone, so the node can select candidates before decoding payloads.
    """
    if stored_at.tzinfo is None or stored_at.utcoffset() is None:
        raise ValueError("stored_at must be timezone-aware")
    terms = book.terms_for(agreement_id, sender, receiver, record_type)
    if terms is None:
        return None
    return stored_at + dt.timedelta(days=terms.retention_days)


def plan_purge(items: Iterable[StoredItem], book: AgreementBook, now: dt.datetime) -> PurgePlan:
    """The payloads past retention at ``now`` that still hold personal information."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    actions: list[PurgeAction] = []
    unresolved: list[Unresolved] = []
    for item in items:
        if item.stored_at.tzinfo is None or item.stored_at.utcoffset() is None:
            raise ValueError("stored_at must be timezone-aware")
        terms = book.terms_for(item.agreement_id, item.sender, item.receiver, item.record_type)
        if terms is None:
            unresolved.append(Unresolved(item.key, item.agreement_id, _why_unresolved(book, item)))
            continue
        due_at = item.stored_at + dt.timedelta(days=terms.retention_days)
        if now < due_at:
            continue
        purged = _pi_paths_with_value(item.record)
        if not purged:
            continue  # already anonymised, or never held any: nothing to rewrite
        actions.append(
            PurgeAction(
                key=item.key,
                agreement_id=item.agreement_id,
                retention_days=terms.retention_days,
                due_at=due_at,
                anonymised=anonymise(item.record),
                purged_paths=purged,
            )
        )
    actions.sort(key=lambda a: (a.due_at, a.key))
    return PurgePlan(tuple(actions), tuple(unresolved))


def _why_unresolved(book: AgreementBook, item: StoredItem) -> str:
    if item.agreement_id not in book.agreements:
        return f"agreement {item.agreement_id!r} is not in the agreement book"
    return (
        f"agreement {item.agreement_id} has no terms for {item.record_type.value} "
        f"from {item.sender} to {item.receiver}"
    )


# ---------------------------------------------------------------------------
# Anonymisation

_REMOVE: Any = object()


def _rewrite(data: Any, parts: list[str], replacement: Any) -> None:
    """Replace (or, with ``_REMOVE``, delete) every value at a dotted path of dumped data."""
    if isinstance(data, list | tuple):
        for element in data:
            _rewrite(element, parts, replacement)
        return
    if not isinstance(data, dict) or data.get(parts[0]) is None:
        return
    if len(parts) > 1:
        _rewrite(data[parts[0]], parts[1:], replacement)
        return
    if replacement is _REMOVE:
        del data[parts[0]]  # the model default (None, empty) takes its place
    else:
        data[parts[0]] = replacement


def _collect(data: Any, parts: list[str]) -> list[Any]:
    if isinstance(data, list | tuple):
        return [v for element in data for v in _collect(element, parts)]
    if not isinstance(data, dict) or data.get(parts[0]) is None:
        return []
    if len(parts) > 1:
        return _collect(data[parts[0]], parts[1:])
    return [data[parts[0]]]


def _pi_paths_with_value(record: Record) -> tuple[str, ...]:
    """PI paths still holding something other than nothing or the placeholder."""
    data = record.model_dump()
    return tuple(
        f.path
        for f in canonical_fields(record.record_type).values()
        if f.personal_info is not None
        and any(v not in ("", PLACEHOLDER) for v in _collect(data, f.path.split(".")))
    )


def is_anonymised(record: Record) -> bool:
    """True when no personal-information field holds a real value any more."""
    return not _pi_paths_with_value(record)


def anonymise(record: Record) -> Record:
    """The record with every PI value removed (optional fields) or replaced (required ones).

    Idempotent. A removal that breaks a cross-field rule (a natural-person party identified
    only by an id number) falls back to the placeholder, so the record stays valid.
    """
    pi_fields = [f for f in canonical_fields(record.record_type).values() if f.personal_info]
    last: RecordInvalid | None = None
    for remove_optional in (True, False):
        data = record.model_dump()
        for pi in pi_fields:
            remove = pi.optional and remove_optional
            _rewrite(data, pi.path.split("."), _REMOVE if remove else PLACEHOLDER)
            type_key = _ID_TYPE_OF.get(pi.path)
            if type_key is not None and not remove:
                data[type_key] = IdType.OTHER
        try:
            return parse_record(data, context=f"anonymised {record.record_type.value}")
        except RecordInvalid as exc:
            last = exc
    raise AnonymisationFailed(
        f"cannot anonymise a {record.record_type.value} into a valid record: "
        f"{last.message if last else 'unknown'}"
    )
