"""The Suining adapter: decode a message (whole or streamed), encode one, and its test hooks."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from lxml import etree

from adapters._schema import FieldProblem
from adapters.suining.stream import _MessageStream
from adapters.suining.tables import (
    _BY_RECORD_TYPE,
    _BY_TAG,
    _DATETIME,
    _NOT_XML,
    _STYLE,
    BODY,
    CATEGORIES,
    CHANNELS,
    CURRENCY_NUMBERS,
    FEEDBACK_STATUSES,
    HEADER,
    HEADER_FIELDS,
    ID_TYPES,
    REGISTRATION_STATUSES,
    ROOT,
)
from adapters.suining.xmltree import (
    _CHUNK,
    _DECLARATION,
    _PROLOG_DOCTYPE,
    _append_tree,
    _parser,
    _Reader,
)
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
from gateway.records import Record


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
        """Stream the records of ``BWTI`` in bounded memory (see :class:`_MessageStream`)."""
        head = stream.read(max(_CHUNK, 4096))  # the whole prolog, whatever the chunk size
        declaration = _DECLARATION.match(head)
        if declaration is None or declaration.group(1).decode("ascii").upper() != "GB18030":
            # Let the whole-file path produce its precise error for a bad prolog.
            self._parse(head)
            raise self._refuse("xml.declaration", "the file must declare GB18030")
        yield from _MessageStream(self, stream).records(head[declaration.end() :])

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
