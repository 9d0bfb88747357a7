"""The built-in ``canonical`` pseudo-adapter: the canonical JSON of :mod:`gateway.records`."""

from __future__ import annotations

import json
from collections.abc import Sequence

from gateway.adapter.contract import (
    Batch,
    EncodeContext,
    LocalAdapter,
)
from gateway.adapter.problems import (
    MAX_PROBLEMS,
    LocalFileInvalid,
    LocalProblem,
    localize_violations,
)
from gateway.errors import RecordInvalid
from gateway.records import Record, parse_record, records_to_json

CANONICAL = "canonical"


class CanonicalJsonAdapter(LocalAdapter):
    """Canonical JSON: a list of records, each with ``record_type`` (no batch header)."""

    name = CANONICAL
    media_type = "application/json"
    encoding = "utf-8"
    file_suffix = ".json"
    description = "canonical records as JSON (built in)"

    def decode(self, data: bytes) -> Batch:
        self.refuse_oversized(data)
        try:
            items = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise self._file_problem("encoding.utf8", f"not UTF-8: {exc.reason}") from exc
        except RecursionError as exc:
            raise self._file_problem("json.syntax", "JSON nested too deeply") from exc
        except ValueError as exc:
            raise self._file_problem("json.syntax", f"not JSON: {exc}") from exc
        if not isinstance(items, list):
            raise self._file_problem("json.structure", "must be a JSON array of records")
        records: list[Record] = []
        problems: list[LocalProblem] = []
        for position, item in enumerate(items, start=1):
            record_id = _canonical_id(item)
            try:
                records.append(parse_record(item))
            except RecordInvalid as exc:
                problems.extend(
                    localize_violations(
                        exc,
                        position=position,
                        record_type=item.get("record_type") if isinstance(item, dict) else None,
                        record_id=record_id,
                        local_field=lambda path: path,
                    )
                )
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise LocalFileInvalid(problems, adapter=self.name)
        return Batch(records=tuple(records))

    def encode(self, records: Sequence[Record], context: EncodeContext) -> bytes:
        return records_to_json(list(records)) + b"\n"

    def _file_problem(self, rule: str, message: str) -> LocalFileInvalid:
        return LocalFileInvalid([LocalProblem(rule=rule, message=message)], adapter=self.name)


def _canonical_id(item: object) -> str | None:
    if not isinstance(item, dict):
        return None
    for key in ("uscc", "complaint_number", "referral_number", "original_number"):
        value = item.get(key)
        if isinstance(value, str) and value:
            return value[:60]
    return None
