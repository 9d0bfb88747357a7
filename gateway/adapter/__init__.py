"""The region-adapter contract: local file bytes ⇄ canonical records, and nothing else.

A region adapter knows one bureau's local file format. It decodes a file into
canonical records (:mod:`gateway.records`) and encodes canonical records into a
file. It never signs, stores or sends: the node does that with what the adapter
returns. Adapters are found through the ``chuanyu_gateway.adapters`` entry-point
group (:func:`load_adapter`); ``canonical`` is built in and reads and writes the
canonical JSON of :func:`gateway.records.records_to_json`.

Errors added here, under the root of :mod:`gateway.errors`::

    GatewayError
    ├── PeerError
    │   ├── RecordInvalid
    │   │   └── LocalFormatError        a local file or record breaks its local format
    │   │       ├── LocalFileInvalid      decode refused the file as a whole
    │   │       └── RecordNotEncodable    encode cannot write a record in the local format
    │   ├── NotFound
    │   │   └── AdapterNotFound         no adapter of that name is installed
    │   └── EncodeContextInvalid        the batch header values needed by encode are missing
    └── GatewayFault
        └── AdapterBroken               an installed adapter fails to load

A :class:`LocalFormatError` carries one :class:`LocalProblem` per broken rule,
each naming the record (1-based position and its own id), the local field, the
canonical field, the rule, and the offending value with personal information
masked.
"""

from __future__ import annotations

from gateway.adapter.canonical import (
    CANONICAL,
    CanonicalJsonAdapter,
)
from gateway.adapter.contract import (
    DEFAULT_MAX_BYTES,
    Batch,
    CodeTable,
    Corruption,
    EncodeContext,
    LocalAdapter,
)
from gateway.adapter.problems import (
    MAX_PROBLEMS,
    AdapterBroken,
    AdapterNotFound,
    EncodeContextInvalid,
    LocalFileInvalid,
    LocalFormatError,
    LocalProblem,
    RecordNotEncodable,
    localize_violations,
)
from gateway.adapter.registry import (
    ENTRY_POINT_GROUP,
    available_adapters,
    load_adapter,
)

__all__ = [
    "CANONICAL",
    "DEFAULT_MAX_BYTES",
    "ENTRY_POINT_GROUP",
    "MAX_PROBLEMS",
    "AdapterBroken",
    "AdapterNotFound",
    "Batch",
    "CanonicalJsonAdapter",
    "CodeTable",
    "Corruption",
    "EncodeContext",
    "EncodeContextInvalid",
    "LocalAdapter",
    "LocalFileInvalid",
    "LocalFormatError",
    "LocalProblem",
    "RecordNotEncodable",
    "available_adapters",
    "load_adapter",
    "localize_violations",
]
