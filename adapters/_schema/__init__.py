"""Field tables for the shipped adapters: where each canonical value lives locally.

Both shipped formats are trees of values (Tongliang's JSON objects; Suining's
XML elements, read into dicts first). A :class:`RecordSchema` lists, in the
local format's order, each local path, the canonical path it holds and the
:class:`Codec` that reads and writes its text. Decoding, encoding and the
translation of canonical validation errors into local field names all walk the
same table, so the three cannot drift apart.
"""

from __future__ import annotations

from adapters._schema.codecs import (
    Codec,
    CodeCodec,
    DateCodec,
    DateTimeCodec,
    FieldProblem,
    IntCodec,
    MoneyCodec,
    TextCodec,
)
from adapters._schema.fields import (
    Field,
    ListCodec,
    Style,
)
from adapters._schema.schema import RecordSchema

__all__ = [
    "CodeCodec",
    "Codec",
    "DateCodec",
    "DateTimeCodec",
    "Field",
    "FieldProblem",
    "IntCodec",
    "ListCodec",
    "MoneyCodec",
    "RecordSchema",
    "Style",
    "TextCodec",
]
