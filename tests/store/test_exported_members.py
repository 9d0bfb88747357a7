"""What the store packages say is public, each name importable and ``__all__`` sorted."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "gateway.store": {
        "ConsoleReads", "InboundAcceptance", "InboundRow", "NodeStore", "OfflineReader",
        "OperatorRecords", "OutboundRow", "OutboundState", "PostgresStore", "SqliteStore",
        "Store", "key_file_for", "open_offline", "open_store",
    },
    "gateway.store.sqlite": {
        "SqliteOfflineReader", "SqliteStore", "iter_log_file", "read_outbound_file",
    },
    "gateway.store.postgres": {
        "PostgresOfflineReader", "PostgresStore", "default_schema", "iter_log_postgres",
        "valid_schema_name",
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_exported_members(name: str) -> None:
    module = importlib.import_module(name)
    assert set(module.__all__) == PUBLIC[name]
    assert list(module.__all__) == sorted(module.__all__, key=lambda n: (not n[0].isupper(), n))
    for member in module.__all__:
        assert getattr(module, member) is not None


def test_both_engines_are_whole_node_stores() -> None:
    from gateway.store import NodeStore, PostgresStore, SqliteStore
    from gateway.store.reads import ConsoleReads, OperatorRecords

    for engine in (SqliteStore, PostgresStore):
        for protocol in (NodeStore, ConsoleReads, OperatorRecords):
            missing = [
                name
                for name in dir(protocol)
                if not name.startswith("_")
                and not callable(getattr(engine, name, None))
                and not isinstance(getattr(engine, name, None), property)
            ]
            assert missing == [], (engine.__name__, protocol.__name__, missing)
