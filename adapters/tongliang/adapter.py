"""The Tongliang adapter: decode a file (whole or streamed), encode one, and its test hooks."""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, BinaryIO, TextIO

from adapters.tongliang.tables import (
    _BY_LOCAL_TYPE,
    _BY_RECORD_TYPE,
    _IGNORED,
    _STYLE,
    CATEGORIES,
    CHANNELS,
    COMPLAINT_STATUSES,
    CURRENCY_NAMES,
    ID_TYPES,
    ORIGINAL_TYPES,
    RECORD_TYPE_KEY,
    REFERRAL_STATUSES,
    REGISTRATION_STATUSES,
)
from gateway.adapter import (
    MAX_PROBLEMS,
    Batch,
    CodeTable,
    Corruption,
    EncodeContext,
    LocalAdapter,
    LocalFileInvalid,
    LocalProblem,
    RecordNotEncodable,
)
from gateway.records import Record

_CHUNK = 1 << 16
_MAX_RECORD_TEXT = 16 << 20  # no single record is this large: past it, the JSON is broken


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key would let two readers of one file see different values.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class _ArrayReader:
    """Reads a top-level JSON array from text, one element at a time.

    ``raw_decode`` parses one element from a text buffer that is refilled as it
    runs dry, so a file of any length holds one record (and one chunk) in memory.
    """

    def __init__(self, text: TextIO, refuse: Callable[[str, str], LocalFileInvalid]) -> None:
        self._text = text
        self._refuse = refuse
        self._buffer = ""
        self._decoder = json.JSONDecoder(
            object_pairs_hook=_refuse_duplicates,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
        )

    def items(self) -> Iterator[Any]:
        if self._skip_space() != "[":
            raise self._refuse("json.structure", "the file must be a JSON array of records")
        self._buffer = self._buffer[1:]
        if self._skip_space() == "]":
            self._buffer = self._buffer[1:]
        else:
            yield from self._elements()
        if self._skip_space():
            raise self._refuse("json.syntax", "text after the closing ] of the array")

    def _elements(self) -> Iterator[Any]:
        while True:
            yield self._element()
            separator = self._skip_space()
            self._buffer = self._buffer[1:]
            if separator == "]":
                return
            if separator != ",":
                raise self._refuse(
                    "json.syntax", "records must be separated by commas and end with ]"
                )

    def _element(self) -> Any:
        self._skip_space()
        while True:
            try:
                item, end = self._decoder.raw_decode(self._buffer)
            except json.JSONDecodeError:
                # Incomplete (the buffer ran dry) unless it is already huge.
                if len(self._buffer) > _MAX_RECORD_TEXT or not self._fill():
                    raise
                continue
            self._buffer = self._buffer[end:]
            return item

    def _fill(self) -> bool:
        try:
            chunk = self._text.read(_CHUNK)
        except UnicodeDecodeError as exc:
            raise self._refuse("encoding.utf8", f"not UTF-8: {exc.reason}") from exc
        self._buffer += chunk
        return bool(chunk)

    def _skip_space(self) -> str:
        while True:
            self._buffer = self._buffer.lstrip(" \t\r\n")
            if self._buffer or not self._fill():
                return self._buffer[:1]


class TongliangAdapter(LocalAdapter):
    """铜梁区市场监管局 业务系统交换文件 (JSON, UTF-8, Chinese keys)."""

    name = "tongliang"
    media_type = "application/json"
    encoding = "utf-8"
    file_suffix = ".json"
    bureau = "500151"
    description = "铜梁区 exchange file: JSON array, UTF-8, Chinese keys, money in 元"

    def decode(self, data: bytes) -> Batch:
        self.refuse_oversized(data)
        items = self._load(data)
        records: list[Record] = []
        problems: list[LocalProblem] = []
        for position, item in enumerate(items, start=1):
            if len(problems) >= MAX_PROBLEMS:
                break
            record, found = self._decode_item(position, item)
            problems.extend(found)
            if record is not None:
                records.append(record)
        if problems:
            raise LocalFileInvalid(problems[:MAX_PROBLEMS], adapter=self.name)
        return Batch(records=tuple(records))

    def iter_decode(self, stream: BinaryIO) -> Iterator[Record]:
        for position, item in enumerate(self._stream_items(stream), start=1):
            record, problems = self._decode_item(position, item)
            if problems or record is None:
                raise LocalFileInvalid(problems[:MAX_PROBLEMS], adapter=self.name)
            yield record

    def _decode_item(self, position: int, item: Any) -> tuple[Record | None, list[LocalProblem]]:
        if not isinstance(item, dict):
            return None, [
                LocalProblem("record.type", "a record must be a JSON object", position=position)
            ]
        local_type = item.get(RECORD_TYPE_KEY)
        schema = _BY_LOCAL_TYPE.get(local_type) if isinstance(local_type, str) else None
        if schema is None:
            return None, [
                LocalProblem(
                    "code.unknown",
                    f"{RECORD_TYPE_KEY} must be one of {' '.join(_BY_LOCAL_TYPE)}"
                    + (f" (value {local_type})" if isinstance(local_type, str) else ""),
                    position=position,
                    field=RECORD_TYPE_KEY,
                )
            ]
        return schema.decode(item, position=position, style=_STYLE, ignore=_IGNORED)

    def _stream_items(self, stream: BinaryIO) -> Iterator[Any]:
        """The elements of a top-level JSON array, one at a time (stdlib only)."""
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            yield from _ArrayReader(text, self._refuse).items()
        except _DuplicateKey as exc:
            raise self._refuse(
                "json.duplicate_key", f"key {exc} appears twice in one object"
            ) from exc
        except json.JSONDecodeError as exc:
            raise self._refuse("json.syntax", f"not JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise self._refuse("json.syntax", "JSON nested too deeply") from exc
        finally:
            text.detach()

    def _load(self, data: bytes) -> list[Any]:
        bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
        try:
            text = data[bom:].decode("utf-8")
            loaded = json.loads(
                text,
                object_pairs_hook=_refuse_duplicates,
                parse_float=Decimal,
                parse_constant=_refuse_constant,
            )
        except UnicodeDecodeError as exc:
            raise self._refuse(
                "encoding.utf8", f"not UTF-8 at byte {exc.start + bom}: {exc.reason}"
            ) from exc
        except _DuplicateKey as exc:
            raise self._refuse(
                "json.duplicate_key", f"key {exc} appears twice in one object"
            ) from exc
        except json.JSONDecodeError as exc:
            raise self._refuse(
                "json.syntax", f"not JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from exc
        except RecursionError as exc:
            raise self._refuse("json.syntax", "JSON nested too deeply") from exc
        except ValueError as exc:
            raise self._refuse("json.syntax", f"not JSON: {exc}") from exc
        if not isinstance(loaded, list):
            raise self._refuse("json.structure", "the file must be a JSON array of records")
        return loaded

    def _refuse(self, rule: str, message: str) -> LocalFileInvalid:
        return LocalFileInvalid([LocalProblem(rule, message)], adapter=self.name)

    def encode(self, records: Sequence[Record], context: EncodeContext) -> bytes:
        out: list[dict[str, object]] = []
        problems: list[LocalProblem] = []
        for position, record in enumerate(records, start=1):
            schema = _BY_RECORD_TYPE[record.record_type]
            tree, found = schema.encode(record, position=position, style=_STYLE)
            problems.extend(found)
            out.append({RECORD_TYPE_KEY: schema.local_type, **tree})
        if problems:
            raise RecordNotEncodable(problems[:MAX_PROBLEMS], adapter=self.name)
        return (json.dumps(out, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    def code_tables(self) -> Mapping[str, CodeTable]:
        return {
            ID_TYPES.local_field: ID_TYPES,
            CURRENCY_NAMES.local_field: CURRENCY_NAMES,
            REGISTRATION_STATUSES.local_field: REGISTRATION_STATUSES,
            CHANNELS.local_field: CHANNELS,
            CATEGORIES.local_field: CATEGORIES,
            ORIGINAL_TYPES.local_field: ORIGINAL_TYPES,
            "办理状态(消费投诉)": COMPLAINT_STATUSES,
            "办理状态(案件线索移送)": REFERRAL_STATUSES,
        }

    def corruptions(self, sample: bytes) -> Sequence[Corruption]:
        try:
            items = self._load(sample)
        except LocalFileInvalid:
            return ()
        found: list[Corruption] = []
        money_at = next(
            (
                (index, key)
                for index, item in enumerate(items)
                if isinstance(item, dict)
                for key in ("注册资本", "涉案金额")
                if isinstance(item.get(key), str)
            ),
            None,
        )
        if money_at is not None:
            index, key = money_at
            marked = [dict(item) for item in items]
            marked[index][key] = "\x00MONEY\x00"
            text = json.dumps(marked, ensure_ascii=False, default=str)
            found.append(
                Corruption(
                    f"{key} of record #{index + 1} written as a JSON number",
                    text.replace('"\\u0000MONEY\\u0000"', str(items[index][key])).encode(),
                    rule="money.json_number",
                )
            )
        if items and isinstance(items[0], dict):
            extra = [{**items[0], "备注": "不在规范中的字段"}, *items[1:]]
            found.append(
                Corruption(
                    "record #1 carries a key the specification does not define",
                    json.dumps(extra, ensure_ascii=False, default=str).encode(),
                    rule="field.unknown",
                )
            )
            text = json.dumps(items, ensure_ascii=False, default=str)
            found.append(
                Corruption(
                    "record #1 repeats 记录类型 with another value",
                    text.replace(
                        '"记录类型": ', '"记录类型": "办理反馈", "记录类型": ', 1
                    ).encode(),
                    rule="json.duplicate_key",
                )
            )
        return found
