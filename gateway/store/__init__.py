"""Durable storage: the :class:`Store` interface, the read protocols, and both engines.

The composition root builds a node's store with :func:`open_store` (the engine the
configuration names, as a :class:`NodeStore`); the command line and the demo read
a store offline with :func:`open_offline`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gateway.config import NodeConfig
from gateway.errors import ConfigInvalid
from gateway.store.at_rest import default_key_file
from gateway.store.base import InboundAcceptance, InboundRow, OutboundRow, OutboundState, Store
from gateway.store.postgres import PostgresOfflineReader, PostgresStore, default_schema
from gateway.store.reads import ConsoleReads, OfflineReader, OperatorRecords
from gateway.store.sqlite import SqliteOfflineReader, SqliteStore
from gateway.vault import Vault

__all__ = [
    "ConsoleReads",
    "InboundAcceptance",
    "InboundRow",
    "NodeStore",
    "OfflineReader",
    "OperatorRecords",
    "OutboundRow",
    "OutboundState",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "key_file_for",
    "open_offline",
    "open_store",
]


class NodeStore(Store, ConsoleReads, OperatorRecords, Protocol):
    """Everything a running node keeps: the exchange's store, the console's reads and the
    operator records, on one engine. An async context manager (opens, then closes)."""

    async def __aenter__(self) -> NodeStore: ...

    async def __aexit__(self, *exc: object) -> None: ...


def key_file_for(config: NodeConfig) -> Path:
    """The at-rest key file of a node: as configured, or beside its database."""
    return config.storage.key_file or default_key_file(config.node.database)


def open_store(config: NodeConfig, vault: Vault | None) -> NodeStore:
    """The store of the node ``config`` describes, on the engine it names; not opened yet
    (``await store.open()``, or ``async with``). ``vault`` seals envelopes at rest."""
    storage = config.storage
    if storage.engine == "postgresql" and storage.dsn is not None:
        return PostgresStore(
            storage.dsn,
            bureau=config.bureau,
            schema=storage.schema_name,
            vault=vault,
            lock_timeout_ms=storage.busy_timeout_ms,
            lease_seconds=storage.lease_seconds,
        )
    return SqliteStore(
        config.node.database,
        bureau=config.bureau,
        busy_timeout_ms=storage.busy_timeout_ms,
        vault=vault,
    )


def open_offline(
    *,
    config: NodeConfig | None = None,
    path: Path | None = None,
    dsn: str | None = None,
    schema: str | None = None,
    key_file: Path | None = None,
) -> OfflineReader:
    """A reader of a node's store that need not be running; use it as a context manager.

    Name the store by one of: the node's ``config``; a SQLite ``path``; or a PostgreSQL
    ``dsn`` with its ``schema``. ``key_file`` (the at-rest key, needed for envelopes only)
    defaults to the configuration's, or to the one beside a SQLite file.
    """
    if sum(x is not None for x in (config, path, dsn)) != 1:
        raise ConfigInvalid("name a node's store by one of: its configuration, a file, a DSN")
    if dsn is not None and schema is None:
        raise ConfigInvalid("a PostgreSQL DSN and the node's schema go together")
    if config is not None:
        storage = config.storage
        key_file = key_file or key_file_for(config)
        if storage.engine == "postgresql" and storage.dsn is not None:
            schema = storage.schema_name or default_schema(config.bureau)
            return PostgresOfflineReader(storage.dsn, schema, key_file)
        return SqliteOfflineReader(config.node.database, key_file)
    if path is not None:
        return SqliteOfflineReader(path, key_file or default_key_file(path))
    assert dsn is not None and schema is not None  # checked above
    return PostgresOfflineReader(dsn, schema, key_file)
