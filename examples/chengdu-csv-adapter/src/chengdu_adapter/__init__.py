"""Chengdu (成都市, 510100) CSV format for Chuanyu Gateway — an example third-party adapter.

One UTF-8 CSV file holds records of any of the four types, one per row. The
header names every column of :data:`COLUMNS` (in any order); the ``类别``
column says which record a row is, and the cells of the other types' columns
must stay empty. Column names are canonical field paths, so errors name the
same field whichever way you read them. See README.md for the format.

It imports only public names of the gateway: ``gateway.adapter`` and
``gateway.records``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.adapter import (
    Batch,
    EncodeContext,
    LocalAdapter,
    LocalFileInvalid,
    LocalProblem,
    RecordNotEncodable,
    localize_violations,
)
from gateway.errors import RecordInvalid
from gateway.records import Record, RecordType, parse_record, record_key

__all__ = ["COLUMNS", "TYPE_COLUMN", "ChengduCsvAdapter"]

TYPE_COLUMN = "类别"
TYPE_WORDS: Mapping[str, RecordType] = {
    "登记": RecordType.BUSINESS_REGISTRATION,
    "投诉": RecordType.CONSUMER_COMPLAINT,
    "移送": RecordType.ENFORCEMENT_REFERRAL,
    "反馈": RecordType.FEEDBACK,
}
_WORD_OF = {record_type: word for word, record_type in TYPE_WORDS.items()}
# Cells holding a JSON array: the format keeps one row per record.
JSON_COLUMNS = frozenset({"evidence", "items"})
TYPE_FIELDS: Mapping[RecordType, tuple[str, ...]] = {
    RecordType.BUSINESS_REGISTRATION: (
        "uscc",
        "name",
        "entity_type",
        "legal_representative",
        "legal_representative_id_type",
        "legal_representative_id_number",
        "registered_capital",
        "registered_capital_currency",
        "established_on",
        "address",
        "address_division",
        "business_scope",
        "registration_authority",
        "status",
        "approved_on",
        "actual_business_address",
    ),
    RecordType.CONSUMER_COMPLAINT: (
        "complaint_number",
        "registered_at",
        "channel",
        "complainant.name",
        "complainant.phone",
        "complainant.id_number",
        "complainant.address",
        "respondent.name",
        "respondent.uscc",
        "respondent.address",
        "respondent.division",
        "subject",
        "category",
        "amount",
        "purchased_on",
        "facts",
        "request",
    ),
    RecordType.ENFORCEMENT_REFERRAL: (
        "referral_number",
        "referring_bureau",
        "receiving_bureau",
        "party.name",
        "party.uscc",
        "party.id_number",
        "party.address",
        "violation",
        "facts",
        "legal_basis",
        "found_on",
        "evidence",
        "items",
        "contact_name",
        "contact_phone",
    ),
    RecordType.FEEDBACK: (
        "original_number",
        "original_type",
        "status",
        "note",
        "handled_at",
        "officer",
    ),
}
COLUMNS: tuple[str, ...] = (
    TYPE_COLUMN,
    *dict.fromkeys(column for fields in TYPE_FIELDS.values() for column in fields),
)


class ChengduCsvAdapter(LocalAdapter):
    """成都市 CSV: one row per record, a type column, canonical field names as columns."""

    name = "chengdu"
    media_type = "text/csv"
    encoding = "utf-8"
    file_suffix = ".csv"
    bureau = "510100"
    description = "成都市 CSV: UTF-8, one row per record, 类别 column, canonical column names"

    def decode(self, data: bytes) -> Batch:
        self.refuse_oversized(data)
        rows = self._rows(data)
        header = rows[0]
        records: list[Record] = []
        problems: list[LocalProblem] = []
        for position, row in enumerate(rows[1:], start=1):
            cells = dict(zip(header, row, strict=False))
            record, found = self._record(cells, position, len(row) == len(header))
            problems.extend(found)
            if record is not None:
                records.append(record)
        if problems:
            raise LocalFileInvalid(problems, adapter=self.name)
        return Batch(records=tuple(records))

    def _refuse(self, rule: str, message: str) -> LocalFileInvalid:
        return LocalFileInvalid([LocalProblem(rule, message)], adapter=self.name)

    def _rows(self, data: bytes) -> list[list[str]]:
        try:
            text = data.decode("utf-8")
            rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        except UnicodeDecodeError as exc:
            raise self._refuse("encoding.utf8", f"not UTF-8 at byte {exc.start}") from exc
        except csv.Error as exc:
            raise self._refuse("csv.syntax", f"not CSV: {exc}") from exc
        if not rows:
            raise self._refuse("csv.header", "the file has no header row")
        header = rows[0]
        missing = [c for c in COLUMNS if c not in header]
        unknown = [c for c in header if c not in COLUMNS]
        if missing or unknown or len(set(header)) != len(header):
            raise self._refuse(
                "csv.header",
                "the header must name each column once; "
                f"missing: {' '.join(missing) or '-'}; unknown: {' '.join(unknown) or '-'}",
            )
        return rows

    def _record(
        self, cells: Mapping[str, str], position: int, complete_row: bool
    ) -> tuple[Record | None, list[LocalProblem]]:
        word = cells.get(TYPE_COLUMN, "")
        record_type = TYPE_WORDS.get(word)
        if not complete_row or record_type is None:
            message = (
                "the row has another number of cells than the header"
                if not complete_row
                else f"{TYPE_COLUMN} must be one of {' '.join(TYPE_WORDS)}"
            )
            return None, [LocalProblem("csv.row", message, position=position, field=TYPE_COLUMN)]
        fields = TYPE_FIELDS[record_type]
        record_id = cells.get(fields[0]) or None
        problems: list[LocalProblem] = []
        raw: dict[str, Any] = {"record_type": record_type.value}
        for column, cell in cells.items():
            if column == TYPE_COLUMN or cell == "":
                continue
            if column not in fields:
                problems.append(
                    LocalProblem(
                        "field.not_for_type",
                        f"must be empty in a {word} row",
                        position=position,
                        record_id=record_id,
                        record_type=word,
                        field=column,
                    )
                )
                continue
            value: Any = cell
            if column in JSON_COLUMNS:
                try:
                    value = json.loads(cell)
                except ValueError:
                    problems.append(
                        LocalProblem(
                            "cell.json",
                            "must hold a JSON array",
                            position=position,
                            record_id=record_id,
                            record_type=word,
                            field=column,
                            canonical_field=column,
                        )
                    )
                    continue
            _assign(raw, column, value)
        try:
            record = parse_record(raw)
        except RecordInvalid as exc:
            problems.extend(
                localize_violations(
                    exc,
                    position=position,
                    record_type=word,
                    record_id=record_id,
                    local_field=_column_of,
                )
            )
            return None, problems
        return (None, problems) if problems else (record, [])

    def encode(self, records: Sequence[Record], context: EncodeContext) -> bytes:
        out = io.StringIO(newline="")
        # RFC 4180 line ends: with a bare LF terminator the csv module would leave a
        # cell holding CR unquoted, and the reader would split the row there.
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        problems: list[LocalProblem] = []
        for position, record in enumerate(records, start=1):
            if record.record_type not in self.record_types:
                problems.append(
                    LocalProblem(
                        "record.type",
                        "not a Chengdu record type",
                        position=position,
                        record_id=record_key(record),
                    )
                )
                continue
            flat: dict[str, str] = {TYPE_COLUMN: _WORD_OF[record.record_type]}
            dumped = record.model_dump(mode="json", exclude={"record_type"})
            for column in TYPE_FIELDS[record.record_type]:
                value = _lookup(dumped, column)
                if column in JSON_COLUMNS:
                    flat[column] = json.dumps(value, ensure_ascii=False) if value else ""
                else:
                    flat[column] = "" if value is None else str(value)
            writer.writerow([flat.get(column, "") for column in COLUMNS])
        if problems:
            raise RecordNotEncodable(problems, adapter=self.name)
        return out.getvalue().encode("utf-8")


def _assign(raw: dict[str, Any], column: str, value: Any) -> None:
    head, _, tail = column.partition(".")
    if tail:
        raw.setdefault(head, {})[tail] = value
    else:
        raw[head] = value


def _lookup(dumped: Mapping[str, Any], column: str) -> Any:
    head, _, tail = column.partition(".")
    value = dumped.get(head)
    if tail:
        return value.get(tail) if isinstance(value, Mapping) else None
    return value


def _column_of(canonical: str) -> str | None:
    """The column holding canonical path ``canonical`` (``evidence.0.sha256`` → ``evidence``)."""
    parts = canonical.split(".")
    for length in (2, 1):
        candidate = ".".join(parts[:length])
        if candidate in COLUMNS:
            return candidate
    return None
