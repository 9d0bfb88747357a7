"""A record type's field table, walked once each to decode, encode and translate errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from adapters._schema.codecs import FieldProblem
from adapters._schema.fields import (
    _ABSENT,
    Field,
    ListCodec,
    Style,
    _assign,
    _attribute,
    _common_prefix,
    _local_parts,
    _lookup,
    _PathProblem,
    _shown,
    _strip_indices,
)
from gateway.adapter import LocalProblem, localize_violations
from gateway.errors import RecordInvalid
from gateway.privacy import PIKind
from gateway.records import (
    Record,
    RecordType,
    parse_record,
    personal_info_paths,
    record_key,
)


@dataclass(frozen=True)
class RecordSchema:
    """One record type of a local format."""

    local_type: str
    record_type: RecordType
    model: type[BaseModel]
    id_field: tuple[str, ...]
    fields: tuple[Field, ...]
    # Fills canonical values the local format does not carry but implies
    # (Suining BLFK has no original-record type: the status code implies it).
    complete: Callable[[dict[str, Any]], None] | None = None

    @cached_property
    def _pi(self) -> Mapping[str, PIKind]:
        return personal_info_paths(self.model)

    # -- decoding -------------------------------------------------------------

    def decode(
        self, tree: Mapping[str, object], *, position: int, style: Style, ignore: frozenset[str]
    ) -> tuple[Record | None, list[LocalProblem]]:
        """A validated record from one local record tree, or the problems found."""
        record_id = self.record_id(tree)
        path_problems: list[_PathProblem] = []
        canonical = self._decode_fields(
            self.fields, tree, (), "", style=style, problems=path_problems, ignore=ignore
        )
        if self.complete is not None:
            self.complete(canonical)

        def located(problem: _PathProblem) -> LocalProblem:
            return LocalProblem(
                rule=problem.rule,
                message=problem.message,
                position=position,
                record_id=record_id,
                record_type=self.local_type,
                field=problem.local,
                canonical_field=problem.canonical or None,
            )

        problems = [located(p) for p in path_problems]
        try:
            record = parse_record({"record_type": self.record_type.value, **canonical})
        except RecordInvalid as exc:
            broken = [p.canonical for p in path_problems]
            for problem in localize_violations(
                exc,
                position=position,
                record_type=self.local_type,
                record_id=record_id,
                local_field=lambda path: self.local_path(path, style),
            ):
                # A value the adapter already refused is missing here; say so once.
                path = problem.canonical_field or ""
                if path_problems and problem.rule == "missing":
                    continue
                if any(path == b or path.startswith(b + ".") for b in broken if b):
                    continue
                problems.append(problem)
            return None, problems
        if problems:
            return None, problems
        return record, []

    def record_id(self, tree: Mapping[str, object]) -> str | None:
        raw = tree.get(self.id_field[0])
        if isinstance(raw, str) and raw:
            return raw if len(raw) <= 60 else raw[:57] + "..."
        return None

    def _decode_fields(
        self,
        fields: Sequence[Field],
        tree: Mapping[str, object],
        local_prefix: tuple[str, ...],
        canonical_prefix: str,
        *,
        style: Style,
        problems: list[_PathProblem],
        ignore: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        canonical: dict[str, Any] = {}
        self._refuse_unknown(
            fields, tree, local_prefix, style=style, problems=problems, ignore=ignore
        )
        reported: set[tuple[str, ...]] = set()
        for spec in fields:
            canonical_path = canonical_prefix + spec.canonical
            raw, container_problem = _lookup(tree, spec.local)
            if container_problem is not None:
                container, rule, message = container_problem
                if container not in reported:
                    reported.add(container)
                    problems.append(
                        _PathProblem(
                            style.show((*local_prefix, *container)),
                            canonical_path.rpartition(".")[0],
                            rule,
                            message,
                        )
                    )
                continue
            local_path = (*local_prefix, *spec.local)
            if raw is _ABSENT or (spec.optional and raw in ("", None, [])):
                if not spec.optional:
                    problems.append(
                        _PathProblem(
                            style.show(local_path), canonical_path, "field.missing", "is required"
                        )
                    )
                continue
            if isinstance(spec.codec, ListCodec):
                value: object = self._decode_list(
                    spec.codec, raw, local_path, canonical_path, style=style, problems=problems
                )
            else:
                try:
                    value = spec.codec.decode(raw, tree)
                except FieldProblem as problem:
                    message = problem.message
                    if problem.show_value:
                        kind = self._pi.get(_strip_indices(canonical_path))
                        message += f" (value {_shown(raw, kind)})"
                    problems.append(
                        _PathProblem(style.show(local_path), canonical_path, problem.rule, message)
                    )
                    continue
            _assign(canonical, spec.canonical.split("."), value)
        return canonical

    def _decode_list(
        self,
        codec: ListCodec,
        raw: object,
        local_path: tuple[str, ...],
        canonical_path: str,
        *,
        style: Style,
        problems: list[_PathProblem],
    ) -> list[object]:
        if not isinstance(raw, list):
            problems.append(
                _PathProblem(style.show(local_path), canonical_path, "field.type", "must be a list")
            )
            return []
        items: list[object] = []
        for number, item in enumerate(raw, start=1):
            item_path = style.index(local_path, codec.item_tag, number)
            item_canonical = f"{canonical_path}.{number - 1}"
            if codec.item_codec is not None:
                try:
                    items.append(codec.item_codec.decode(item, {}))
                except FieldProblem as problem:
                    problems.append(
                        _PathProblem(
                            style.show(item_path), item_canonical, problem.rule, problem.message
                        )
                    )
            elif not isinstance(item, Mapping):
                problems.append(
                    _PathProblem(
                        style.show(item_path), item_canonical, "field.type", "must be an object"
                    )
                )
            else:
                items.append(
                    self._decode_fields(
                        codec.item_fields,
                        item,
                        item_path,
                        item_canonical + ".",
                        style=style,
                        problems=problems,
                    )
                )
        return items

    def _refuse_unknown(
        self,
        fields: Sequence[Field],
        tree: Mapping[str, object],
        local_prefix: tuple[str, ...],
        *,
        style: Style,
        problems: list[_PathProblem],
        ignore: frozenset[str],
    ) -> None:
        known: dict[tuple[str, ...], set[str]] = {(): set(ignore)}
        for spec in fields:
            for depth in range(len(spec.local)):
                known.setdefault(spec.local[:depth], set()).add(spec.local[depth])
        for container, names in known.items():
            node, problem = _lookup(tree, container) if container else (tree, None)
            if problem is not None or not isinstance(node, Mapping):
                continue
            for key in node:
                if key not in names:
                    problems.append(
                        _PathProblem(
                            style.show((*local_prefix, *container, str(key))),
                            "",
                            "field.unknown",
                            "is not a field of this record type",
                        )
                    )

    # -- encoding -------------------------------------------------------------

    def encode(
        self, record: Record, *, position: int, style: Style
    ) -> tuple[dict[str, object], list[LocalProblem]]:
        """The local record tree of ``record``, or the problems writing it."""
        path_problems: list[_PathProblem] = []
        tree = self._encode_fields(self.fields, record, (), "", style=style, problems=path_problems)
        record_id = record_key(record)
        problems = [
            LocalProblem(
                rule=p.rule,
                message=p.message,
                position=position,
                record_id=record_id,
                record_type=self.local_type,
                field=p.local,
                canonical_field=p.canonical,
            )
            for p in path_problems
        ]
        return tree, problems

    def _encode_fields(
        self,
        fields: Sequence[Field],
        model: BaseModel,
        local_prefix: tuple[str, ...],
        canonical_prefix: str,
        *,
        style: Style,
        problems: list[_PathProblem],
    ) -> dict[str, object]:
        tree: dict[str, object] = {}
        for spec in fields:
            value = _attribute(model, spec.canonical)
            local_path = (*local_prefix, *spec.local)
            canonical_path = canonical_prefix + spec.canonical
            if spec.optional and value in (None, ()):
                if not style.omit_empty_optional:
                    _assign(tree, list(spec.local), [] if isinstance(spec.codec, ListCodec) else "")
                continue
            if isinstance(spec.codec, ListCodec):
                local: object = self._encode_list(
                    spec.codec, value, local_path, canonical_path, style=style, problems=problems
                )
            else:
                try:
                    local = spec.codec.encode(value)
                except FieldProblem as problem:
                    problems.append(
                        _PathProblem(
                            style.show(local_path), canonical_path, problem.rule, problem.message
                        )
                    )
                    continue
            _assign(tree, list(spec.local), local)
        return tree

    def _encode_list(
        self,
        codec: ListCodec,
        values: Sequence[Any],
        local_path: tuple[str, ...],
        canonical_path: str,
        *,
        style: Style,
        problems: list[_PathProblem],
    ) -> list[object]:
        items: list[object] = []
        for number, value in enumerate(values, start=1):
            item_path = style.index(local_path, codec.item_tag, number)
            item_canonical = f"{canonical_path}.{number - 1}"
            if codec.item_codec is not None:
                try:
                    items.append(codec.item_codec.encode(value))
                except FieldProblem as problem:
                    problems.append(
                        _PathProblem(
                            style.show(item_path), item_canonical, problem.rule, problem.message
                        )
                    )
            else:
                items.append(
                    self._encode_fields(
                        codec.item_fields,
                        value,
                        item_path,
                        item_canonical + ".",
                        style=style,
                        problems=problems,
                    )
                )
        return items

    # -- error translation ----------------------------------------------------

    def local_path(self, canonical: str, style: Style) -> str | None:
        """The local field holding canonical path ``canonical`` (``evidence.0.sha256``)."""
        found = _local_parts(self.fields, canonical.split("."), style)
        if found:
            return style.show(found)
        # A rule about a whole object (a party needs one of two ids): name its fields.
        prefix = canonical + "."
        under = [spec.local for spec in self.fields if spec.canonical.startswith(prefix)]
        if not under:
            return None
        common = _common_prefix(under)
        if common:
            return style.show(common)
        return "/".join(style.show(path) for path in under)
