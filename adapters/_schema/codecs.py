"""Codecs: one local value ⇄ one canonical value, and the problem they raise."""

from __future__ import annotations

import abc
import datetime as dt
import decimal
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.adapter import CodeTable
from gateway.clock import BEIJING

# Money passes through this context only: any rounding raises instead of
# silently changing an amount.
_EXACT = decimal.Context(
    prec=60,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow],
)
_CENT = Decimal("0.01")
_TEN_THOUSAND = Decimal(10000)
_SURROGATES = re.compile("[\ud800-\udfff]")


class FieldProblem(Exception):
    """A local value that cannot become a canonical one, or back. Never leaves adapters."""

    def __init__(self, rule: str, message: str, *, show_value: bool = True) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.show_value = show_value


# ---------------------------------------------------------------------------
# Codecs: one local value ⇄ one canonical value


class Codec(abc.ABC):
    @abc.abstractmethod
    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        """The canonical value of ``raw``; ``record`` is the whole local record."""

    @abc.abstractmethod
    def encode(self, value: Any) -> object:
        """The local value of canonical ``value``."""


class TextCodec(Codec):
    """Free text, kept exactly (no trimming: whitespace is part of the value)."""

    def __init__(self, *, unencodable: re.Pattern[str] = _SURROGATES, medium: str = "") -> None:
        self._unencodable = unencodable
        self._medium = medium or "the local format"

    def _check(self, text: str) -> str:
        bad = self._unencodable.search(text)
        if bad is not None:
            raise FieldProblem(
                "text.character",
                f"contains U+{ord(bad.group()):04X}, which {self._medium} cannot carry",
                show_value=False,
            )
        return text

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        return self._check(raw)

    def encode(self, value: Any) -> object:
        return self._check(str(value))


class MoneyCodec(Codec):
    """Exact money as decimal text; canonical money is yuan with at most 2 decimals.

    ``scale`` is the local unit in yuan (10000 for 万元) and ``places`` the
    number of decimals the local text has.
    """

    def __init__(self, *, scale: Decimal = Decimal(1), places: int = 2, unit: str = "元") -> None:
        self._scale = scale
        self._places = places
        self._quantum = Decimal(1).scaleb(-places)
        self._unit = unit
        self._pattern = re.compile(rf"[0-9]{{1,24}}(\.[0-9]{{1,{places}}})?")

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
            raise FieldProblem(
                "money.json_number",
                'money must be a JSON string like "2999.00", never a JSON number',
            )
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text", show_value=False)
        if not self._pattern.fullmatch(raw):
            raise FieldProblem(
                "money.format",
                f"must be a non-negative amount in {self._unit} with at most "
                f"{self._places} decimals",
            )
        try:
            yuan = _EXACT.multiply(Decimal(raw), self._scale)
            return _EXACT.quantize(yuan, _CENT)
        except decimal.DecimalException as exc:
            raise FieldProblem("money.precision", "is not a whole number of fen (0.01 元)") from exc

    def encode(self, value: Any) -> object:
        try:
            local = _EXACT.divide(Decimal(value), self._scale)
            return f"{_EXACT.quantize(local, self._quantum):f}"
        except decimal.DecimalException as exc:
            raise FieldProblem(
                "money.precision",
                f"cannot be written in {self._unit} with {self._places} decimals without rounding",
            ) from exc


class DateCodec(Codec):
    """A calendar date as ``YYYY-MM-DD`` (``separator="-"``) or ``YYYYMMDD``."""

    def __init__(self, *, separator: str) -> None:
        self._separator = separator
        sep = re.escape(separator)
        self._pattern = re.compile(rf"([0-9]{{4}}){sep}([0-9]{{2}}){sep}([0-9]{{2}})")
        self._shape = separator.join(("YYYY", "MM", "DD"))

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        match = self._pattern.fullmatch(raw)
        if match is None:
            raise FieldProblem("date.format", f"must be a date {self._shape}")
        try:
            return dt.date(*(int(part) for part in match.groups()))
        except ValueError as exc:
            raise FieldProblem("date.invalid", "is not a calendar date") from exc

    def encode(self, value: Any) -> object:
        day: dt.date = value
        return f"{day.year:04d}{self._separator}{day.month:02d}{self._separator}{day.day:02d}"


class DateTimeCodec(Codec):
    """Beijing wall-clock time to the second; canonical datetimes are aware."""

    def __init__(self, *, compact: bool) -> None:
        self._compact = compact
        if compact:
            self._pattern = re.compile(
                r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})"
            )
            self._shape = "YYYYMMDDHHMMSS"
        else:
            self._pattern = re.compile(
                r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
            )
            self._shape = "YYYY-MM-DD HH:MM:SS"

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        match = self._pattern.fullmatch(raw)
        if match is None:
            raise FieldProblem("datetime.format", f"must be Beijing time {self._shape}")
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            return dt.datetime(year, month, day, hour, minute, second, tzinfo=BEIJING)
        except ValueError as exc:
            raise FieldProblem("datetime.invalid", "is not a real date and time") from exc

    def encode(self, value: Any) -> object:
        moment: dt.datetime = value
        try:
            local = moment.astimezone(BEIJING)
        except (OverflowError, ValueError) as exc:
            raise FieldProblem("datetime.range", "cannot be shown in Beijing time") from exc
        if local.microsecond:
            raise FieldProblem(
                "datetime.precision",
                "has fractions of a second; the local format keeps whole seconds",
            )
        if self._compact:
            return (
                f"{local.year:04d}{local.month:02d}{local.day:02d}"
                f"{local.hour:02d}{local.minute:02d}{local.second:02d}"
            )
        return (
            f"{local.year:04d}-{local.month:02d}-{local.day:02d} "
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        )


class CodeCodec(Codec):
    """A value from a code table; one table serves both directions."""

    def __init__(self, table: CodeTable) -> None:
        self.table = table

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        value = self.table.to_canonical(raw)
        if value is None:
            raise FieldProblem(
                "code.unknown", f"is not a code of the table; allowed: {' '.join(self.table.codes)}"
            )
        return value

    def encode(self, value: Any) -> object:
        code = self.table.to_local(str(value))
        if code is None:
            raise FieldProblem(
                "code.unmapped",
                f"{value} has no code in the local {self.table.local_field} table",
                show_value=False,
            )
        return code


class IntCodec(Codec):
    """A non-negative integer: a JSON number (``as_text=False``) or digits."""

    def __init__(self, *, as_text: bool) -> None:
        self._as_text = as_text

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if self._as_text:
            if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,9}", raw):
                raise FieldProblem("integer.format", "must be a whole number of up to 9 digits")
            return int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise FieldProblem("integer.type", "must be a JSON integer")
        return raw

    def encode(self, value: Any) -> object:
        return str(value) if self._as_text else int(value)
