"""The XML of a Suining message: read safely (GB18030 decoded by Python, no DOCTYPE, no
entities), and written from a record's local tree."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypedDict

from lxml import etree

from adapters._schema import (
    ListCodec,
    RecordSchema,
)
from adapters.suining.tables import _SCHEMAS
from gateway.adapter import LocalProblem

_DECLARATION = re.compile(
    rb"""<\?xml\s+version\s*=\s*["']1\.[0-9]["']\s+encoding\s*=\s*["']([A-Za-z0-9._-]+)["']"""
    rb"""(?:\s+standalone\s*=\s*["'](?:yes|no)["'])?\s*\?>"""
)
# Only the prolog may declare a DOCTYPE; looking there is enough and costs nothing.
_PROLOG_DOCTYPE = re.compile(r"(?:\s|<!--.*?-->|<\?.*?\?>)*<!DOCTYPE", re.DOTALL)
_XML_SPACE = " \t\r\n"
_CHUNK = 1 << 16


# The hardening both parsers share (the whole-file one here, the pull parser of
# ``stream.py``): no entities, no network, no DTD, no comments or processing instructions.
class _Hardening(TypedDict):
    resolve_entities: bool
    no_network: bool
    load_dtd: bool
    dtd_validation: bool
    huge_tree: bool
    remove_comments: bool
    remove_pis: bool
    collect_ids: bool


_HARDENED: _Hardening = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
}


def _parser() -> etree.XMLParser:
    return etree.XMLParser(encoding="utf-8", **_HARDENED)


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
