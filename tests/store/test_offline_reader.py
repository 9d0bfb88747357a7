"""Reading a node's store without the node (:func:`gateway.store.open_offline`), both engines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from store_support import EPOCH, PEER, PG_DSN, Harness, envelope, event, inbound, outbound

from gateway.errors import ConfigInvalid, NotFound, StoreUnavailable
from gateway.store import OfflineReader, open_offline
from gateway.store.base import OutboundRow
from gateway.store.postgres import PostgresStore, iter_log_postgres
from gateway.store.reads import ExportedEnvelope
from gateway.store.sqlite import SqliteStore, iter_log_file, read_outbound_file
from gateway.translog import EventKind, LogEntry, verify_chain


def offline(h: Harness, key_file: Path | None) -> OfflineReader:
    store = h.store
    if isinstance(store, SqliteStore):
        return open_offline(path=store.path, key_file=key_file)
    assert isinstance(store, PostgresStore)
    return open_offline(dsn=PG_DSN, schema=store.schema, key_file=key_file)


async def _fill(h: Harness) -> None:
    store = h.store
    for n in range(3):
        row = outbound(f"out-{n}")
        await store.enqueue_outbound(row, [event(EventKind.SIGNED, row.message_id)])
    await store.mark_delivered("out-1", b"their-receipt", [], received_at=EPOCH)
    await store.accept_inbound(inbound("in-1"), [event(EventKind.RECEIVED, "in-1")], [])
    await store.store_issued_receipt(PEER, "in-1", b"our-receipt", [])


async def test_the_log_reads_offline_and_verifies(harness: Harness, tmp_path: Path) -> None:
    await _fill(harness)
    online = await harness.store.read_log(0, 100)

    def read() -> tuple[list[LogEntry], list[LogEntry], str]:
        with offline(harness, None) as reader:  # the log needs no key
            return list(reader.iter_log()), list(reader.iter_log(2)), reader.location

    entries, tail, location = await asyncio.to_thread(read)
    assert entries == online and verify_chain(online).ok
    assert tail == online[2:]
    assert location in (str(tmp_path / "node.db"), f"schema {getattr(harness.store, 'schema', '')}")


async def test_envelopes_come_back_decrypted_with_their_receipts(
    harness: Harness, tmp_path: Path
) -> None:
    await _fill(harness)

    def read() -> tuple[list[ExportedEnvelope], list[OutboundRow], list[OutboundRow]]:
        with offline(harness, tmp_path / "keys.json") as reader:
            found = [reader.envelope(m) for m in ("out-1", "out-2", "in-1")]
            with pytest.raises(NotFound):
                reader.envelope("missing")
            rows = reader.outbound_rows()
            named = reader.outbound_rows(["out-2", "out-0"])
            return found, rows, named

    found, rows, named = await asyncio.to_thread(read)
    assert [(e.direction, e.envelope, e.receipt) for e in found] == [
        ("outbound", envelope("out-1"), b"their-receipt"),
        ("outbound", envelope("out-2"), b""),
        ("inbound", envelope("in-1"), b"our-receipt"),
    ]
    assert [r.message_id for r in rows] == ["out-0", "out-1", "out-2"]
    assert rows[1].receipt == b"their-receipt"
    assert rows[0].envelope == envelope("out-0")
    assert [r.message_id for r in named] == ["out-0", "out-2"]


async def test_envelopes_need_the_key_file(harness: Harness, tmp_path: Path) -> None:
    await _fill(harness)

    def read(key_file: Path | None) -> None:
        with offline(harness, key_file) as reader:
            reader.envelope("out-1")

    with pytest.raises(ConfigInvalid):
        await asyncio.to_thread(read, tmp_path / "no-such-keys.json")
    with pytest.raises(ConfigInvalid):
        await asyncio.to_thread(read, None)


async def test_a_missing_store_is_unavailable(tmp_path: Path) -> None:
    def read_file() -> None:
        with open_offline(path=tmp_path / "nothing.db") as reader:
            list(reader.iter_log())

    def read_schema() -> None:
        with open_offline(dsn=PG_DSN, schema="no_such_schema_here") as reader:
            list(reader.iter_log())

    for read in (read_file, read_schema):
        with pytest.raises(StoreUnavailable):
            await asyncio.to_thread(read)
    with pytest.raises(ConfigInvalid):
        open_offline(dsn=PG_DSN)
    with pytest.raises(ConfigInvalid):
        open_offline(path=tmp_path / "a.db", dsn=PG_DSN, schema="x")
    with pytest.raises(StoreUnavailable):
        open_offline(dsn=PG_DSN, schema='x"; DROP TABLE y; --')


async def test_the_old_entry_points_still_read(harness: Harness, tmp_path: Path) -> None:
    await _fill(harness)
    online = await harness.store.read_log(0, 100)
    store = harness.store
    if isinstance(store, SqliteStore):
        entries = await asyncio.to_thread(lambda: list(iter_log_file(store.path)))
        rows = await asyncio.to_thread(read_outbound_file, store.path)
        assert [r.message_id for r in rows] == ["out-0", "out-1", "out-2"]
        assert rows[1].receipt == b"their-receipt"
        assert rows[0].envelope != envelope("out-0")  # without the vault: still sealed
    else:
        assert isinstance(store, PostgresStore)
        entries = await asyncio.to_thread(lambda: list(iter_log_postgres(PG_DSN, store.schema)))
    assert entries == online
