"""Collecting every broken rule of an agreement file, and reading its choices and field tables."""

from __future__ import annotations

import datetime as dt
import enum
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from gateway.agreements.model import AgreementProblem
from gateway.identifiers import check_division_code

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
