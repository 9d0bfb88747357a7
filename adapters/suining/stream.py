"""The pull-parser loop behind ``SuiningAdapter.iter_decode``: one handler per event."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

from lxml import etree

from adapters.suining.tables import BODY, HEADER, ROOT
from adapters.suining.xmltree import _CHUNK, _HARDENED, _PROLOG_DOCTYPE, _Reader
from gateway.adapter import MAX_PROBLEMS, LocalFileInvalid
from gateway.records import Record


class _Decoder(Protocol):
    """What the stream needs of the adapter that drives it (the adapter satisfies it)."""

    @property
    def name(self) -> str: ...

    def _refuse(self, rule: str, message: str, field: str | None = None) -> LocalFileInvalid: ...

    def _header(self, reader: _Reader, element: Any) -> dict[str, Any]: ...

    def _stream_record(self, reader: _Reader, element: Any, position: int) -> Record: ...


class _MessageStream:
    """Reads one message from a stream past its declaration.

    GB18030 is decoded chunk by chunk and fed to lxml's pull parser; each record
    element is dropped once read, so memory holds one chunk and one record.
    """

    def __init__(self, adapter: _Decoder, stream: BinaryIO) -> None:
        self._adapter = adapter
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("gb18030")()
        self._parser = etree.XMLPullParser(events=("start", "end"), encoding="utf-8", **_HARDENED)
        self._reader = _Reader()
        self._first = True
        self._depth = 0
        self._header: dict[str, Any] = {}
        self._count = 0

    def records(self, chunk: bytes) -> Iterator[Record]:
        """The records, starting from ``chunk`` (what follows the declaration)."""
        while True:
            for event, element in self._events(chunk):
                if event == "start":
                    self._start(element)
                    continue
                yield from self._end(element)
                if self._reader.problems:
                    raise LocalFileInvalid(
                        self._reader.problems[:MAX_PROBLEMS], adapter=self._adapter.name
                    )
            if not chunk:
                break
            chunk = self._stream.read(_CHUNK)
        self._finish()

    def _events(self, chunk: bytes) -> list[Any]:
        """Decode and parse one chunk (an empty one ends the document)."""
        refuse = self._adapter._refuse
        try:
            text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise refuse("encoding.gb18030", f"not GB18030: {exc.reason}") from exc
        if self._first and _PROLOG_DOCTYPE.match(text):
            raise refuse(
                "xml.doctype",
                "a DOCTYPE (and with it any entity declaration) is refused outright",
            )
        self._first = self._first and not text.strip()
        try:
            self._parser.feed(text.encode("utf-8"))
            events: list[Any] = list(self._parser.read_events()) if chunk else []
            if not chunk:
                self._parser.close()
                events = list(self._parser.read_events())
        except etree.XMLSyntaxError as exc:
            raise refuse("xml.syntax", f"not well-formed XML: {exc.msg}") from exc
        return events

    def _start(self, element: Any) -> None:
        self._depth += 1
        if self._depth == 1 and element.tag != ROOT:
            raise self._adapter._refuse(
                "xml.structure", f"the root element must be {ROOT}", str(element.tag)
            )

    def _end(self, element: Any) -> Iterator[Record]:
        self._depth -= 1
        if self._depth == 1 and element.tag == HEADER:
            self._header = self._adapter._header(self._reader, element)
        elif self._depth == 2 and element.getparent().tag == BODY:
            self._count += 1
            yield self._adapter._stream_record(self._reader, element, self._count)
            element.clear()
            body = element.getparent()
            while len(body) and body[0] is not element:
                del body[0]
        elif self._depth == 1 and element.tag != BODY:
            raise self._adapter._refuse(
                "xml.structure", f"{ROOT} must hold {HEADER} then {BODY}", ROOT
            )

    def _finish(self) -> None:
        """The checks that need the whole message: a header, and its count."""
        if not self._header:
            raise self._adapter._refuse(
                "xml.structure", f"{ROOT} must hold {HEADER} then {BODY}", ROOT
            )
        declared = self._header.get("JLS")
        if isinstance(declared, int) and declared != self._count:
            raise self._adapter._refuse(
                "batch.count_mismatch",
                f"JLS says {declared} records but {BODY} holds {self._count}",
                f"{HEADER}/JLS",
            )
