"""Reading one agreement from its TOML table, collecting every broken rule."""

from __future__ import annotations

import datetime as dt
import re
import types
from collections.abc import Mapping
from typing import Any

from gateway.agreements.fields import canonical_fields
from gateway.agreements.model import (
    Agreement,
    AgreementFileInvalid,
    DirectionTerms,
    FieldAction,
    FieldPolicy,
    RecordTerms,
    SharingClass,
)
from gateway.agreements.problems import (
    _DIRECTION_KEYS,
    _POLICY_KEYS,
    _TERMS_KEYS,
    _TOP_KEYS,
    _choice,
    _flatten_fields,
    _Problems,
)
from gateway.records import (
    OriginalType,
    RecordType,
)

# Suites an agreement may require; names as in gateway.signing (SM2 is announced in
# DESIGN.md, so an agreement may already require it before this node can sign with it).
KNOWN_SUITES = frozenset({"ed25519", "sm2-sm3"})

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_MAX_RETENTION_DAYS = 36_500


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
    agreement_id = _parse_id(data, problems)
    title = problems.text(data, "title", "", required=True)
    parties = _parse_parties(data, problems)
    effective_from, effective_until = _parse_dates(data, problems)
    suite = _parse_suite(data, problems)
    directions = _parse_directions(data, parties, problems)
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


def _parse_id(data: Mapping[str, Any], problems: _Problems) -> str | None:
    agreement_id = problems.text(data, "id", "", required=True)
    if agreement_id is not None and not _ID.fullmatch(agreement_id):
        problems.add(
            "id", "id.format", "must be letters, digits, '.', '_' or '-' (at most 100 characters)"
        )
    return agreement_id


def _parse_parties(data: Mapping[str, Any], problems: _Problems) -> tuple[str, ...]:
    raw_parties = data.get("parties")
    if raw_parties is None:
        problems.add("parties", "key.missing", "required key is missing")
        return ()
    if not isinstance(raw_parties, list) or len(raw_parties) < 2:
        problems.add("parties", "parties.count", "must list at least two bureau ids")
        return ()
    checked = [problems.bureau(v, f"parties[{i}]") for i, v in enumerate(raw_parties)]
    parties = tuple(b for b in checked if b is not None)
    if len(set(parties)) != len(parties):
        problems.add("parties", "parties.duplicate", "a bureau is listed twice")
    return parties


def _parse_dates(
    data: Mapping[str, Any], problems: _Problems
) -> tuple[dt.date | None, dt.date | None]:
    effective_from = problems.date(data, "effective_from", required=True)
    effective_until = problems.date(data, "effective_until", required=False)
    if effective_from and effective_until and effective_until < effective_from:
        problems.add(
            "effective_until",
            "dates.order",
            f"{effective_until.isoformat()} is before effective_from {effective_from.isoformat()}",
        )
    return effective_from, effective_until


def _parse_suite(data: Mapping[str, Any], problems: _Problems) -> str | None:
    suite = problems.text(data, "signature_suite", "", required=False)
    if suite is not None and suite not in KNOWN_SUITES:
        problems.add(
            "signature_suite",
            "suite.unknown",
            f"unknown suite {suite!r} (known: {', '.join(sorted(KNOWN_SUITES))})",
        )
    return suite


def _parse_directions(
    data: Mapping[str, Any], parties: tuple[str, ...], problems: _Problems
) -> dict[tuple[str, str], DirectionTerms]:
    directions: dict[tuple[str, str], DirectionTerms] = {}
    raw_directions = data.get("directions")
    if raw_directions is None:
        problems.add("directions", "key.missing", "required key is missing ([[directions]])")
        return directions
    if not isinstance(raw_directions, list) or not raw_directions:
        problems.add("directions", "type.array", "must be one or more [[directions]] tables")
        return directions
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
    return directions


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
