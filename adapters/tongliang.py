"""Tongliang District (500151) local format: a JSON array of records with Chinese keys.

The format is fixed by the bureau's local systems; the specification is
``formats/tongliang.md``. UTF-8 with an optional BOM; money is a decimal string
in yuan (a JSON number is refused: it may have passed through a float); dates
``YYYY-MM-DD``; times ``YYYY-MM-DD HH:MM:SS`` in Beijing time; codes are words.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, BinaryIO

from adapters._schema import (
    Codec,
    CodeCodec,
    DateCodec,
    DateTimeCodec,
    Field,
    FieldProblem,
    IntCodec,
    ListCodec,
    MoneyCodec,
    RecordSchema,
    Style,
    TextCodec,
)
from adapters.currencies import CURRENCIES
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
from gateway.records import (
    BusinessRegistration,
    Channel,
    ConsumerComplaint,
    ConsumptionCategory,
    EnforcementReferral,
    Feedback,
    FeedbackStatus,
    IdType,
    OriginalType,
    Record,
    RecordType,
    RegistrationStatus,
)

__all__ = ["TongliangAdapter"]

RECORD_TYPE_KEY = "记录类型"

# ---------------------------------------------------------------------------
# Code tables: local word → canonical value, used for both directions.

ID_TYPES = CodeTable(
    "法定代表人证件类型",
    RecordType.BUSINESS_REGISTRATION,
    "legal_representative_id_type",
    {
        "居民身份证": IdType.RESIDENT_ID,
        "护照": IdType.PASSPORT,
        "港澳居民来往内地通行证": IdType.HK_MACAO_PERMIT,
        "台湾居民来往大陆通行证": IdType.TAIWAN_PERMIT,
        "其他": IdType.OTHER,
    },
)
CURRENCY_NAMES = CodeTable(
    "注册资本币种",
    RecordType.BUSINESS_REGISTRATION,
    "registered_capital_currency",
    {currency.name_zh: currency.alpha for currency in CURRENCIES},
    default="人民币",
)
REGISTRATION_STATUSES = CodeTable(
    "登记状态",
    RecordType.BUSINESS_REGISTRATION,
    "status",
    {
        "存续": RegistrationStatus.ACTIVE,
        "吊销": RegistrationStatus.REVOKED,
        "注销": RegistrationStatus.DEREGISTERED,
        "撤销": RegistrationStatus.CANCELLED,
        "迁出": RegistrationStatus.MOVED_OUT,
    },
)
CHANNELS = CodeTable(
    "来源渠道",
    RecordType.CONSUMER_COMPLAINT,
    "channel",
    {
        "12315热线": Channel.HOTLINE_12315,
        "12315平台": Channel.PLATFORM_12315,
        "来信": Channel.LETTER,
        "来访": Channel.VISIT,
        "转办": Channel.TRANSFERRED,
        "其他": Channel.OTHER,
    },
)
CATEGORIES = CodeTable(
    "消费类别",
    RecordType.CONSUMER_COMPLAINT,
    "category",
    {"商品": ConsumptionCategory.GOODS, "服务": ConsumptionCategory.SERVICE},
)
ORIGINAL_TYPES = CodeTable(
    "原记录类型",
    RecordType.FEEDBACK,
    "original_type",
    {
        "消费投诉": OriginalType.CONSUMER_COMPLAINT,
        "案件线索移送": OriginalType.ENFORCEMENT_REFERRAL,
    },
)
# 已办结 closes both a complaint and a referral: the word alone is ambiguous, so
# the status table depends on 原记录类型.
COMPLAINT_STATUSES = CodeTable(
    "办理状态",
    RecordType.FEEDBACK,
    "status",
    {
        "已受理": FeedbackStatus.COMPLAINT_ACCEPTED,
        "不予受理": FeedbackStatus.COMPLAINT_NOT_ACCEPTED,
        "调解中": FeedbackStatus.COMPLAINT_MEDIATING,
        "调解成功": FeedbackStatus.COMPLAINT_MEDIATED,
        "终止调解": FeedbackStatus.COMPLAINT_MEDIATION_TERMINATED,
        "已办结": FeedbackStatus.COMPLAINT_CLOSED,
    },
)
REFERRAL_STATUSES = CodeTable(
    "办理状态",
    RecordType.FEEDBACK,
    "status",
    {
        "已接收": FeedbackStatus.REFERRAL_RECEIVED,
        "已立案": FeedbackStatus.REFERRAL_FILED,
        "不予立案": FeedbackStatus.REFERRAL_NOT_FILED,
        "异议": FeedbackStatus.REFERRAL_OBJECTION,
        "已办结": FeedbackStatus.REFERRAL_CLOSED,
    },
)
_STATUS_TABLES: Mapping[OriginalType, CodeTable] = {
    OriginalType.CONSUMER_COMPLAINT: COMPLAINT_STATUSES,
    OriginalType.ENFORCEMENT_REFERRAL: REFERRAL_STATUSES,
}


class _FeedbackStatusWords(Codec):
    """办理状态, read with the table of the 原记录类型 it answers."""

    def decode(self, raw: object, record: Mapping[str, object]) -> object:
        if not isinstance(raw, str):
            raise FieldProblem("field.type", "must be text")
        original_word = record.get(ORIGINAL_TYPES.local_field)
        original = (
            ORIGINAL_TYPES.to_canonical(original_word) if isinstance(original_word, str) else None
        )
        if original is None:
            # 原记录类型 reports its own problem; here only an unknown word is news.
            for table in _STATUS_TABLES.values():
                value = table.to_canonical(raw)
                if value is not None:
                    return value
            allowed = " ".join(dict.fromkeys(w for t in _STATUS_TABLES.values() for w in t.codes))
            raise FieldProblem("code.unknown", f"is not a 办理状态; allowed: {allowed}")
        table = _STATUS_TABLES[OriginalType(original)]
        value = table.to_canonical(raw)
        if value is None:
            raise FieldProblem(
                "code.unknown",
                f"is not a 办理状态 of a {original_word}; allowed: {' '.join(table.codes)}",
            )
        return value

    def encode(self, value: Any) -> object:
        status = FeedbackStatus(value)
        code = _STATUS_TABLES[status.answers].to_local(status.value)
        if code is None:  # every status is in one of the two tables
            raise FieldProblem("code.unmapped", f"{status.value} has no 办理状态 word")
        return code


# ---------------------------------------------------------------------------
# Field tables, in the order of the specification.

_TEXT = TextCodec(medium="UTF-8 JSON")
_MONEY = MoneyCodec()
_DATE = DateCodec(separator="-")
_DATETIME = DateTimeCodec(compact=False)


def _field(local: str, canonical: str, codec: Codec | ListCodec = _TEXT, **kw: bool) -> Field:
    return Field(tuple(local.split(".")), canonical, codec, **kw)


_SCHEMAS: tuple[RecordSchema, ...] = (
    RecordSchema(
        "市场主体登记",
        RecordType.BUSINESS_REGISTRATION,
        BusinessRegistration,
        ("统一社会信用代码",),
        (
            _field("统一社会信用代码", "uscc"),
            _field("名称", "name"),
            _field("市场主体类型", "entity_type"),
            _field("法定代表人", "legal_representative"),
            _field("法定代表人证件类型", "legal_representative_id_type", CodeCodec(ID_TYPES)),
            _field("法定代表人证件号码", "legal_representative_id_number"),
            _field("注册资本", "registered_capital", _MONEY),
            _field(
                "注册资本币种",
                "registered_capital_currency",
                CodeCodec(CURRENCY_NAMES),
                optional=True,
            ),
            _field("成立日期", "established_on", _DATE),
            _field("住所", "address"),
            _field("住所行政区划代码", "address_division"),
            _field("经营范围", "business_scope"),
            _field("登记机关", "registration_authority"),
            _field("登记状态", "status", CodeCodec(REGISTRATION_STATUSES)),
            _field("核准日期", "approved_on", _DATE),
            _field("实际经营地址", "actual_business_address", optional=True),
        ),
    ),
    RecordSchema(
        "消费投诉",
        RecordType.CONSUMER_COMPLAINT,
        ConsumerComplaint,
        ("投诉编号",),
        (
            _field("投诉编号", "complaint_number"),
            _field("登记时间", "registered_at", _DATETIME),
            _field("来源渠道", "channel", CodeCodec(CHANNELS)),
            _field("投诉人.姓名", "complainant.name"),
            _field("投诉人.联系电话", "complainant.phone"),
            _field("投诉人.证件号码", "complainant.id_number", optional=True),
            _field("投诉人.地址", "complainant.address", optional=True),
            _field("被投诉人.名称", "respondent.name"),
            _field("被投诉人.统一社会信用代码", "respondent.uscc", optional=True),
            _field("被投诉人.地址", "respondent.address"),
            _field("被投诉人.行政区划代码", "respondent.division"),
            _field("商品或服务名称", "subject"),
            _field("消费类别", "category", CodeCodec(CATEGORIES)),
            _field("涉案金额", "amount", _MONEY),
            _field("消费日期", "purchased_on", _DATE),
            _field("投诉事由", "facts"),
            _field("诉求", "request"),
        ),
    ),
    RecordSchema(
        "案件线索移送",
        RecordType.ENFORCEMENT_REFERRAL,
        EnforcementReferral,
        ("移送文号",),
        (
            _field("移送文号", "referral_number"),
            _field("移送单位", "referring_bureau"),
            _field("接收单位", "receiving_bureau"),
            _field("当事人.名称", "party.name"),
            _field("当事人.统一社会信用代码", "party.uscc", optional=True),
            _field("当事人.证件号码", "party.id_number", optional=True),
            _field("当事人.地址", "party.address"),
            _field("案由", "violation"),
            _field("违法事实", "facts"),
            _field("移送依据", "legal_basis"),
            _field("发现日期", "found_on", _DATE),
            _field(
                "证据材料",
                "evidence",
                ListCodec(
                    item_fields=(
                        _field("名称", "name"),
                        _field("页数", "pages", IntCodec(as_text=False)),
                        _field("SHA256", "sha256"),
                    )
                ),
            ),
            _field("涉案物品", "items", ListCodec(item_codec=_TEXT), optional=True),
            _field("联系人", "contact_name"),
            _field("联系电话", "contact_phone"),
        ),
    ),
    RecordSchema(
        "办理反馈",
        RecordType.FEEDBACK,
        Feedback,
        ("原记录编号",),
        (
            _field("原记录编号", "original_number"),
            _field("原记录类型", "original_type", CodeCodec(ORIGINAL_TYPES)),
            _field("办理状态", "status", _FeedbackStatusWords()),
            _field("说明", "note", optional=True),
            _field("办理时间", "handled_at", _DATETIME),
            _field("承办人", "officer"),
        ),
    ),
)
_BY_LOCAL_TYPE = {schema.local_type: schema for schema in _SCHEMAS}
_BY_RECORD_TYPE = {schema.record_type: schema for schema in _SCHEMAS}
_STYLE = Style(separator=".", omit_empty_optional=True)
_IGNORED = frozenset({RECORD_TYPE_KEY})


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
        """The elements of a top-level JSON array, one at a time (stdlib only).

        ``raw_decode`` parses one element from a text buffer that is refilled as it
        runs dry, so a file of any length holds one record (and one chunk) in memory.
        """
        decoder = json.JSONDecoder(
            object_pairs_hook=_refuse_duplicates,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
        )
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        buffer, eof = "", False

        def fill() -> bool:
            nonlocal buffer, eof
            try:
                chunk = text.read(_CHUNK)
            except UnicodeDecodeError as exc:
                raise self._refuse("encoding.utf8", f"not UTF-8: {exc.reason}") from exc
            eof = not chunk
            buffer += chunk
            return not eof

        def skip_space() -> str:
            nonlocal buffer
            while True:
                buffer = buffer.lstrip(" \t\r\n")
                if buffer or not fill():
                    return buffer[:1]

        try:
            if skip_space() != "[":
                raise self._refuse("json.structure", "the file must be a JSON array of records")
            buffer = buffer[1:]
            if skip_space() == "]":
                buffer = buffer[1:]
            else:
                while True:
                    skip_space()
                    while True:
                        try:
                            item, end = decoder.raw_decode(buffer)
                            break
                        except json.JSONDecodeError:
                            # Incomplete (the buffer ran dry) unless it is already huge.
                            if len(buffer) > _MAX_RECORD_TEXT or not fill():
                                raise
                    buffer = buffer[end:]
                    yield item
                    separator = skip_space()
                    buffer = buffer[1:]
                    if separator == "]":
                        break
                    if separator != ",":
                        raise self._refuse(
                            "json.syntax", "records must be separated by commas and end with ]"
                        )
            if skip_space():
                raise self._refuse("json.syntax", "text after the closing ] of the array")
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
