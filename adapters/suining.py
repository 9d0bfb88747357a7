"""Suining City (510900) local format: one GB18030 XML message with a counted batch header.

The format is fixed by the bureau's local systems; the specification is
``formats/suining.md``. Root ``SJBW`` holds the header ``BWT`` (batch id, sender
division, sent-at, record count ``JLS``) and the body ``BWTI``. Tags are pinyin
initials, codes are numeric, registered capital is in 万元 with six decimals,
dates ``YYYYMMDD`` and times ``YYYYMMDDHHMMSS`` in Beijing time.

Reading is deliberately defensive: the bytes are decoded as GB18030 by Python
(libxml2's iconv tables and expat disagree on parts of GB18030), any DOCTYPE is
refused before parsing so no entity can be declared, and lxml runs with
entities, DTDs and the network off.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, BinaryIO

from lxml import etree

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
    EncodeContextInvalid,
    LocalAdapter,
    LocalFileInvalid,
    LocalProblem,
    RecordNotEncodable,
)
from gateway.identifiers import check_division_code
from gateway.records import (
    BusinessRegistration,
    Channel,
    ConsumerComplaint,
    ConsumptionCategory,
    EnforcementReferral,
    Feedback,
    FeedbackStatus,
    IdType,
    Record,
    RecordType,
    RegistrationStatus,
)

__all__ = ["SuiningAdapter"]

ROOT, HEADER, BODY = "SJBW", "BWT", "BWTI"
HEADER_FIELDS = ("BWBH", "FSDW", "FSSJ", "JLS")

# ---------------------------------------------------------------------------
# Code tables: local numeric code → canonical value, used for both directions.

ID_TYPES = CodeTable(
    "ZJLX",
    RecordType.BUSINESS_REGISTRATION,
    "legal_representative_id_type",
    {
        "1": IdType.RESIDENT_ID,
        "2": IdType.PASSPORT,
        "3": IdType.HK_MACAO_PERMIT,
        "4": IdType.TAIWAN_PERMIT,
        "9": IdType.OTHER,
    },
)
CURRENCY_NUMBERS = CodeTable(
    "BZ",
    RecordType.BUSINESS_REGISTRATION,
    "registered_capital_currency",
    {currency.numeric: currency.alpha for currency in CURRENCIES},
    default="156",
)
REGISTRATION_STATUSES = CodeTable(
    "DJZT",
    RecordType.BUSINESS_REGISTRATION,
    "status",
    {
        "1": RegistrationStatus.ACTIVE,
        "2": RegistrationStatus.REVOKED,
        "3": RegistrationStatus.DEREGISTERED,
        "4": RegistrationStatus.CANCELLED,
        "5": RegistrationStatus.MOVED_OUT,
    },
)
CHANNELS = CodeTable(
    "LYQD",
    RecordType.CONSUMER_COMPLAINT,
    "channel",
    {
        "1": Channel.HOTLINE_12315,
        "2": Channel.PLATFORM_12315,
        "3": Channel.LETTER,
        "4": Channel.VISIT,
        "5": Channel.TRANSFERRED,
        "9": Channel.OTHER,
    },
)
CATEGORIES = CodeTable(
    "XFLB",
    RecordType.CONSUMER_COMPLAINT,
    "category",
    {"1": ConsumptionCategory.GOODS, "2": ConsumptionCategory.SERVICE},
)
# 1x codes answer a complaint, 2x a referral: BLFK has no original-type tag.
FEEDBACK_STATUSES = CodeTable(
    "BLZT",
    RecordType.FEEDBACK,
    "status",
    {
        "11": FeedbackStatus.COMPLAINT_ACCEPTED,
        "12": FeedbackStatus.COMPLAINT_NOT_ACCEPTED,
        "13": FeedbackStatus.COMPLAINT_MEDIATING,
        "14": FeedbackStatus.COMPLAINT_MEDIATED,
        "15": FeedbackStatus.COMPLAINT_MEDIATION_TERMINATED,
        "19": FeedbackStatus.COMPLAINT_CLOSED,
        "21": FeedbackStatus.REFERRAL_RECEIVED,
        "22": FeedbackStatus.REFERRAL_FILED,
        "23": FeedbackStatus.REFERRAL_NOT_FILED,
        "24": FeedbackStatus.REFERRAL_OBJECTION,
        "29": FeedbackStatus.REFERRAL_CLOSED,
    },
)


def _original_type_from_status(canonical: dict[str, Any]) -> None:
    status = canonical.get("status")
    if status is not None:
        canonical["original_type"] = FeedbackStatus(status).answers


# ---------------------------------------------------------------------------
# Field tables, in the order of the specification.

# XML 1.0 cannot carry these characters at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT = TextCodec(unencodable=_NOT_XML, medium="XML 1.0")
_DATE = DateCodec(separator="")
_DATETIME = DateTimeCodec(compact=True)


def _field(local: str, canonical: str, codec: Codec | ListCodec = _TEXT, **kw: bool) -> Field:
    return Field((local,), canonical, codec, **kw)


_SCHEMAS: tuple[RecordSchema, ...] = (
    RecordSchema(
        "SCZTDJ",
        RecordType.BUSINESS_REGISTRATION,
        BusinessRegistration,
        ("TYSHXYDM",),
        (
            _field("TYSHXYDM", "uscc"),
            _field("ZTMC", "name"),
            _field("ZTLX", "entity_type"),
            _field("FDDBR", "legal_representative"),
            _field("ZJLX", "legal_representative_id_type", CodeCodec(ID_TYPES)),
            _field("ZJHM", "legal_representative_id_number"),
            _field(
                "ZCZB",
                "registered_capital",
                MoneyCodec(scale=Decimal(10000), places=6, unit="万元"),
            ),
            _field("BZ", "registered_capital_currency", CodeCodec(CURRENCY_NUMBERS), optional=True),
            _field("CLRQ", "established_on", _DATE),
            _field("ZS", "address"),
            _field("ZSXZQH", "address_division"),
            _field("JYFW", "business_scope"),
            _field("DJJG", "registration_authority"),
            _field("DJZT", "status", CodeCodec(REGISTRATION_STATUSES)),
            _field("HZRQ", "approved_on", _DATE),
            _field("SJJYDZ", "actual_business_address", optional=True),
        ),
    ),
    RecordSchema(
        "XFTS",
        RecordType.CONSUMER_COMPLAINT,
        ConsumerComplaint,
        ("TSBH",),
        (
            _field("TSBH", "complaint_number"),
            _field("DJSJ", "registered_at", _DATETIME),
            _field("LYQD", "channel", CodeCodec(CHANNELS)),
            _field("TSRXM", "complainant.name"),
            _field("TSRDH", "complainant.phone"),
            _field("TSRZJHM", "complainant.id_number", optional=True),
            _field("TSRDZ", "complainant.address", optional=True),
            _field("BTSRMC", "respondent.name"),
            _field("BTSRTYDM", "respondent.uscc", optional=True),
            _field("BTSRDZ", "respondent.address"),
            _field("BTSRXZQH", "respondent.division"),
            _field("SPFWMC", "subject"),
            _field("XFLB", "category", CodeCodec(CATEGORIES)),
            _field("SAJE", "amount", MoneyCodec()),
            _field("XFRQ", "purchased_on", _DATE),
            _field("TSSY", "facts"),
            _field("SQ", "request"),
        ),
    ),
    RecordSchema(
        "AJYS",
        RecordType.ENFORCEMENT_REFERRAL,
        EnforcementReferral,
        ("YSWH",),
        (
            _field("YSWH", "referral_number"),
            _field("YSDW", "referring_bureau"),
            _field("JSDW", "receiving_bureau"),
            _field("DSRMC", "party.name"),
            _field("DSRTYDM", "party.uscc", optional=True),
            _field("DSRZJHM", "party.id_number", optional=True),
            _field("DSRDZ", "party.address"),
            _field("AY", "violation"),
            _field("WFSS", "facts"),
            _field("YSYJ", "legal_basis"),
            _field("FXRQ", "found_on", _DATE),
            _field(
                "ZJCL",
                "evidence",
                ListCodec(
                    item_tag="CL",
                    item_fields=(
                        _field("MC", "name"),
                        _field("YS", "pages", IntCodec(as_text=True)),
                        _field("SHA256", "sha256"),
                    ),
                ),
            ),
            _field("SAWP", "items", ListCodec(item_tag="WP", item_codec=_TEXT), optional=True),
            _field("LXR", "contact_name"),
            _field("LXDH", "contact_phone"),
        ),
    ),
    RecordSchema(
        "BLFK",
        RecordType.FEEDBACK,
        Feedback,
        ("YJLBH",),
        (
            _field("YJLBH", "original_number"),
            _field("BLZT", "status", CodeCodec(FEEDBACK_STATUSES)),
            _field("SM", "note", optional=True),
            _field("BLSJ", "handled_at", _DATETIME),
            _field("CBR", "officer"),
        ),
        complete=_original_type_from_status,
    ),
)
_BY_TAG = {schema.local_type: schema for schema in _SCHEMAS}
_BY_RECORD_TYPE = {schema.record_type: schema for schema in _SCHEMAS}
_STYLE = Style(separator="/", omit_empty_optional=False)

# ---------------------------------------------------------------------------
# Safe reading

_DECLARATION = re.compile(
    rb"""<\?xml\s+version\s*=\s*["']1\.[0-9]["']\s+encoding\s*=\s*["']([A-Za-z0-9._-]+)["']"""
    rb"""(?:\s+standalone\s*=\s*["'](?:yes|no)["'])?\s*\?>"""
)
# Only the prolog may declare a DOCTYPE; looking there is enough and costs nothing.
_PROLOG_DOCTYPE = re.compile(r"(?:\s|<!--.*?-->|<\?.*?\?>)*<!DOCTYPE", re.DOTALL)
_XML_SPACE = " \t\r\n"
_CHUNK = 1 << 16


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


class _Reader:
    """Reads one parsed message into header values and record trees, collecting problems."""

    def __init__(self) -> None:
        self.problems: list[LocalProblem] = []

    def file_problem(self, rule: str, message: str, field: str | None = None) -> None:
        self.problems.append(LocalProblem(rule, message, field=field))

    def children(self, element: Any, path: str, where: LocalProblem | None = None) -> list[Any]:
        """Child elements of a container, refusing text between them and attributes."""
        position = where.position if where else None
        record_type = where.record_type if where else None
        if element.attrib:
            self.problems.append(
                LocalProblem(
                    "xml.attribute",
                    "attributes are not part of the format",
                    position=position,
                    record_type=record_type,
                    field=path,
                )
            )
        stray = (element.text or "").strip(_XML_SPACE) or any(
            (child.tail or "").strip(_XML_SPACE) for child in element
        )
        if stray:
            self.problems.append(
                LocalProblem(
                    "xml.structure",
                    "text is not allowed between elements",
                    position=position,
                    record_type=record_type,
                    field=path,
                )
            )
        return [child for child in element if isinstance(child.tag, str)]

    def text(
        self, element: Any, path: str, problems: list[LocalProblem], where: LocalProblem
    ) -> str:
        if len(element) or element.attrib:
            problems.append(
                LocalProblem(
                    "xml.structure",
                    "must hold text only (no elements, entities or attributes)",
                    position=where.position,
                    record_type=where.record_type,
                    field=path,
                )
            )
        return str(element.text or "")

    def record_tree(
        self, element: Any, schema: RecordSchema, position: int
    ) -> tuple[dict[str, object], list[LocalProblem]]:
        where = LocalProblem("", "", position=position, record_type=schema.local_type)
        problems: list[LocalProblem] = []
        lists = {
            spec.local[0]: spec.codec for spec in schema.fields if isinstance(spec.codec, ListCodec)
        }
        tree: dict[str, object] = {}
        for child in self.children(element, schema.local_type, where):
            tag = str(child.tag)
            if tag in tree:
                problems.append(
                    LocalProblem(
                        "field.duplicate",
                        "appears twice in one record",
                        position=position,
                        record_type=schema.local_type,
                        field=tag,
                    )
                )
                continue
            codec = lists.get(tag)
            if codec is None:
                tree[tag] = self.text(child, tag, problems, where)
                continue
            items: list[object] = []
            for number, item in enumerate(self.children(child, tag, where), start=1):
                item_path = f"{tag}/{item.tag}[{number}]"
                if item.tag != codec.item_tag:
                    problems.append(
                        LocalProblem(
                            "field.unknown",
                            f"{tag} holds only {codec.item_tag} elements",
                            position=position,
                            record_type=schema.local_type,
                            field=item_path,
                        )
                    )
                elif codec.item_codec is not None:
                    items.append(self.text(item, item_path, problems, where))
                else:
                    leaves: dict[str, object] = {}
                    for leaf in self.children(item, item_path, where):
                        leaves[str(leaf.tag)] = self.text(
                            leaf, f"{item_path}/{leaf.tag}", problems, where
                        )
                    items.append(leaves)
            tree[tag] = items
        record_id = schema.record_id(tree)
        return tree, [
            LocalProblem(
                p.rule,
                p.message,
                position=p.position,
                record_id=record_id,
                record_type=p.record_type,
                field=p.field,
            )
            for p in problems
        ]


class SuiningAdapter(LocalAdapter):
    """遂宁市市场监管局 数据报文 (XML, GB18030, pinyin-initial tags, counted header)."""

    name = "suining"
    media_type = "application/xml"
    encoding = "gb18030"
    file_suffix = ".xml"
    bureau = "510900"
    description = "遂宁市 data message: XML in GB18030, pinyin tags, header BWT with count JLS"

    def decode(self, data: bytes) -> Batch:
        self.refuse_oversized(data)
        root = self._parse(data)
        reader = _Reader()
        if root.tag != ROOT:
            raise self._refuse("xml.structure", f"the root element must be {ROOT}", str(root.tag))
        parts = reader.children(root, ROOT)
        if [str(part.tag) for part in parts] != [HEADER, BODY]:
            raise self._refuse(
                "xml.structure", f"{ROOT} must hold {HEADER} then {BODY}, nothing else", ROOT
            )
        header = self._header(reader, parts[0])
        records: list[Record] = []
        elements = reader.children(parts[1], BODY)
        for position, element in enumerate(elements, start=1):
            if len(reader.problems) >= MAX_PROBLEMS:
                break
            schema = _BY_TAG.get(str(element.tag))
            if schema is None:
                reader.problems.append(
                    LocalProblem(
                        "record.type",
                        f"{element.tag} is not a record element; allowed: {' '.join(_BY_TAG)}",
                        position=position,
                        field=f"{BODY}/{element.tag}",
                    )
                )
                continue
            tree, problems = reader.record_tree(element, schema, position)
            record, found = schema.decode(tree, position=position, style=_STYLE, ignore=frozenset())
            reader.problems.extend(problems)
            if not problems:
                reader.problems.extend(found)
            if record is not None and not problems:
                records.append(record)
        declared = header.get("JLS")
        if isinstance(declared, int) and declared != len(elements):
            reader.file_problem(
                "batch.count_mismatch",
                f"JLS says {declared} records but {BODY} holds {len(elements)}",
                f"{HEADER}/JLS",
            )
        if reader.problems:
            raise LocalFileInvalid(reader.problems[:MAX_PROBLEMS], adapter=self.name)
        return Batch(
            records=tuple(records),
            batch_id=header.get("BWBH"),
            sender_bureau=header.get("FSDW"),
            sent_at=header.get("FSSJ"),
        )

    def iter_decode(self, stream: BinaryIO) -> Iterator[Record]:
        """Stream the records of ``BWTI``: GB18030 is decoded chunk by chunk and fed to
        lxml's pull parser; each record element is dropped once read."""
        head = stream.read(max(_CHUNK, 4096))  # the whole prolog, whatever the chunk size
        declaration = _DECLARATION.match(head)
        if declaration is None or declaration.group(1).decode("ascii").upper() != "GB18030":
            # Let the whole-file path produce its precise error for a bad prolog.
            self._parse(head)
            raise self._refuse("xml.declaration", "the file must declare GB18030")
        decoder = codecs.getincrementaldecoder("gb18030")()
        parser = etree.XMLPullParser(
            events=("start", "end"),
            encoding="utf-8",
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        reader = _Reader()
        first = True
        depth = 0
        header: dict[str, Any] = {}
        count = 0
        chunk = head[declaration.end() :]
        while True:
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise self._refuse("encoding.gb18030", f"not GB18030: {exc.reason}") from exc
            if first and _PROLOG_DOCTYPE.match(text):
                raise self._refuse(
                    "xml.doctype",
                    "a DOCTYPE (and with it any entity declaration) is refused outright",
                )
            first = first and not text.strip()
            try:
                parser.feed(text.encode("utf-8"))
                events: list[Any] = list(parser.read_events()) if chunk else []
                if not chunk:
                    parser.close()
                    events = list(parser.read_events())
            except etree.XMLSyntaxError as exc:
                raise self._refuse("xml.syntax", f"not well-formed XML: {exc.msg}") from exc
            for event, element in events:
                if event == "start":
                    depth += 1
                    if depth == 1 and element.tag != ROOT:
                        raise self._refuse(
                            "xml.structure", f"the root element must be {ROOT}", str(element.tag)
                        )
                    continue
                depth -= 1
                if depth == 1 and element.tag == HEADER:
                    header = self._header(reader, element)
                elif depth == 2 and element.getparent().tag == BODY:
                    count += 1
                    yield self._stream_record(reader, element, count)
                    element.clear()
                    body = element.getparent()
                    while len(body) and body[0] is not element:
                        del body[0]
                elif depth == 1 and element.tag != BODY:
                    raise self._refuse(
                        "xml.structure", f"{ROOT} must hold {HEADER} then {BODY}", ROOT
                    )
                if reader.problems:
                    raise LocalFileInvalid(reader.problems[:MAX_PROBLEMS], adapter=self.name)
            if not chunk:
                break
            chunk = stream.read(_CHUNK)
        if not header:
            raise self._refuse("xml.structure", f"{ROOT} must hold {HEADER} then {BODY}", ROOT)
        declared = header.get("JLS")
        if isinstance(declared, int) and declared != count:
            raise self._refuse(
                "batch.count_mismatch",
                f"JLS says {declared} records but {BODY} holds {count}",
                f"{HEADER}/JLS",
            )

    def _stream_record(self, reader: _Reader, element: Any, position: int) -> Record:
        schema = _BY_TAG.get(str(element.tag))
        if schema is None:
            raise LocalFileInvalid(
                [
                    LocalProblem(
                        "record.type",
                        f"{element.tag} is not a record element; allowed: {' '.join(_BY_TAG)}",
                        position=position,
                        field=f"{BODY}/{element.tag}",
                    )
                ],
                adapter=self.name,
            )
        tree, problems = reader.record_tree(element, schema, position)
        record, found = schema.decode(tree, position=position, style=_STYLE, ignore=frozenset())
        problems = problems or found
        if problems or record is None:
            raise LocalFileInvalid(problems[:MAX_PROBLEMS], adapter=self.name)
        return record

    def _parse(self, data: bytes) -> Any:
        declaration = _DECLARATION.match(data)
        if declaration is None:
            raise self._refuse(
                "xml.declaration",
                'the file must start with <?xml version="1.0" encoding="GB18030"?>',
            )
        declared = declaration.group(1).decode("ascii")
        if declared.upper() != "GB18030":
            raise self._refuse(
                "encoding.declared", f"the declaration names {declared}; the format is GB18030"
            )
        try:
            text = data[declaration.end() :].decode("gb18030")
        except UnicodeDecodeError as exc:
            raise self._refuse(
                "encoding.gb18030",
                f"not GB18030 at byte {exc.start + declaration.end()}: {exc.reason}",
            ) from exc
        if _PROLOG_DOCTYPE.match(text):
            raise self._refuse(
                "xml.doctype",
                "a DOCTYPE (and with it any entity declaration) is refused outright",
            )
        try:
            root = etree.fromstring(text.encode("utf-8"), _parser())
        except etree.XMLSyntaxError as exc:
            raise self._refuse("xml.syntax", f"not well-formed XML: {exc.msg}") from exc
        if root.getroottree().docinfo.internalDTD is not None:
            raise self._refuse("xml.doctype", "a DOCTYPE is refused outright")
        return root

    def _header(self, reader: _Reader, element: Any) -> dict[str, Any]:
        values: dict[str, str] = {}
        for child in reader.children(element, HEADER):
            tag = str(child.tag)
            path = f"{HEADER}/{tag}"
            if tag not in HEADER_FIELDS or tag in values:
                reader.file_problem("field.unknown", "is not (again) a header field", path)
                continue
            if len(child) or child.attrib:
                reader.file_problem("xml.structure", "must hold text only", path)
            values[tag] = child.text or ""
        header: dict[str, Any] = {}
        for tag in HEADER_FIELDS:
            path = f"{HEADER}/{tag}"
            text = values.get(tag, "")
            if not text.strip():
                reader.file_problem("field.missing", "is required", path)
                continue
            if tag == "BWBH":
                header[tag] = text
            elif tag == "FSDW":
                problem = check_division_code(text)
                if problem is not None:
                    reader.file_problem(
                        problem.rule, f"{problem.message} (value {text[:20]})", path
                    )
                header[tag] = text
            elif tag == "FSSJ":
                try:
                    header[tag] = _DATETIME.decode(text, {})
                except FieldProblem as exc:
                    reader.file_problem(exc.rule, f"{exc.message} (value {text[:20]})", path)
            elif re.fullmatch(r"[0-9]{1,9}", text):
                header[tag] = int(text)
            else:
                reader.file_problem(
                    "integer.format", f"must be a record count (value {text[:20]})", path
                )
        return header

    def _refuse(self, rule: str, message: str, field: str | None = None) -> LocalFileInvalid:
        return LocalFileInvalid([LocalProblem(rule, message, field=field)], adapter=self.name)

    def encode(self, records: Sequence[Record], context: EncodeContext) -> bytes:
        header = self._header_values(context, len(records))
        root = etree.Element(ROOT)
        head = etree.SubElement(root, HEADER)
        for tag, value in header.items():
            etree.SubElement(head, tag).text = value
        body = etree.SubElement(root, BODY)
        problems: list[LocalProblem] = []
        for position, record in enumerate(records, start=1):
            schema = _BY_RECORD_TYPE[record.record_type]
            tree, found = schema.encode(record, position=position, style=_STYLE)
            problems.extend(found)
            if not found:
                _append_tree(etree.SubElement(body, schema.local_type), tree)
        if problems:
            raise RecordNotEncodable(problems[:MAX_PROBLEMS], adapter=self.name)
        text = etree.tostring(root, encoding="unicode", pretty_print=True)
        return ('<?xml version="1.0" encoding="GB18030"?>\n' + text).encode("gb18030")

    def _header_values(self, context: EncodeContext, count: int) -> dict[str, str]:
        missing = [
            label
            for label, value in (
                ("FSDW (sender bureau)", context.sender_bureau),
                ("BWBH (batch id)", context.batch_id),
                ("FSSJ (sent at)", context.sent_at),
            )
            if value is None
        ]
        if missing:
            raise EncodeContextInvalid(
                f"{self.name} writes a batch header and needs {', '.join(missing)}; "
                "give them in the encode context (convert --sender/--batch-id/--sent-at)"
            )
        assert context.sender_bureau is not None
        assert context.batch_id is not None
        problem = check_division_code(context.sender_bureau)
        if problem is not None:
            raise EncodeContextInvalid(f"sender bureau for FSDW: {problem.message}")
        if not context.batch_id.strip() or _NOT_XML.search(context.batch_id):
            raise EncodeContextInvalid("batch id for BWBH must be non-blank XML text")
        assert context.sent_at is not None
        try:
            # FSSJ keeps whole seconds; the moment of sending needs no finer grain.
            sent_at = str(_DATETIME.encode(context.sent_at.replace(microsecond=0)))
        except FieldProblem as exc:
            raise EncodeContextInvalid(f"sent-at for FSSJ: {exc.message}") from exc
        return {
            "BWBH": context.batch_id,
            "FSDW": context.sender_bureau,
            "FSSJ": sent_at,
            "JLS": str(count),
        }

    def code_tables(self) -> Mapping[str, CodeTable]:
        tables = (
            ID_TYPES,
            CURRENCY_NUMBERS,
            REGISTRATION_STATUSES,
            CHANNELS,
            CATEGORIES,
            FEEDBACK_STATUSES,
        )
        return {table.local_field: table for table in tables}

    def corruptions(self, sample: bytes) -> Sequence[Corruption]:
        found: list[Corruption] = []
        count = re.search(rb"<JLS>([0-9]+)</JLS>", sample)
        if count is not None:
            wrong = str(int(count.group(1)) + 1).encode()
            found.append(
                Corruption(
                    "JLS one more than the records in BWTI",
                    sample[: count.start(1)] + wrong + sample[count.end(1) :],
                    rule="batch.count_mismatch",
                )
            )
        declaration = _DECLARATION.match(sample)
        if declaration is not None:
            found.append(
                Corruption(
                    "declaration names UTF-8 for GB18030 bytes",
                    sample[: declaration.start(1)] + b"UTF-8" + sample[declaration.end(1) :],
                    rule="encoding.declared",
                )
            )
        return found


def _append_tree(element: Any, tree: Mapping[str, object]) -> None:
    for tag, value in tree.items():
        child = etree.SubElement(element, tag)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    _append_tree(etree.SubElement(child, _item_tag(tag)), item)
                else:
                    etree.SubElement(child, _item_tag(tag)).text = str(item) or None
        else:
            child.text = str(value) or None


def _item_tag(container: str) -> str:
    for schema in _SCHEMAS:
        for spec in schema.fields:
            if spec.local == (container,) and isinstance(spec.codec, ListCodec):
                return spec.codec.item_tag or container
    raise KeyError(container)
