"""Queueing a batch in one transaction, and re-drive restarting the dead-letter age clock."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3

import asyncpg
import pytest
from store_support import EPOCH, PEER, PG_DSN, Harness, event, outbound

from gateway.errors import StoreUnavailable
from gateway.store.base import OutboundState
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from gateway.translog import EventKind, verify_chain

AGE = dt.timedelta(days=3)


async def kinds(h: Harness) -> list[tuple[str, str]]:
    return [(e.kind, e.message_id) for e in await h.store.read_log(0, 10_000)]


async def test_a_batch_commits_its_new_rows_and_skips_known_keys(harness: Harness) -> None:
    store = harness.store
    known = outbound(idempotency_key="file:abc:0")
    await store.enqueue_outbound(known, [event(EventKind.SIGNED, known.message_id)])
    fresh = [outbound(idempotency_key=f"file:abc:{n}") for n in (1, 2)]
    repeat = outbound(idempotency_key="file:abc:0", record_key="another")
    twice = outbound(idempotency_key="file:abc:1")  # the same key twice in one batch
    results = await store.enqueue_outbound_batch(
        [(row, [event(EventKind.SIGNED, row.message_id)]) for row in (fresh[0], repeat, twice)]
        + [(fresh[1], [event(EventKind.SIGNED, fresh[1].message_id)])]
    )
    assert [(row.message_id, created) for row, created in results] == [
        (fresh[0].message_id, True),
        (known.message_id, False),
        (fresh[0].message_id, False),
        (fresh[1].message_id, True),
    ]
    assert await kinds(harness) == [
        ("signed", known.message_id),
        ("signed", fresh[0].message_id),
        ("signed", fresh[1].message_id),
    ]
    assert await store.get_outbound(repeat.message_id) is None
    assert await store.get_outbound(twice.message_id) is None
    assert await store.enqueue_outbound_batch([]) == []


async def test_a_failing_row_leaves_the_whole_batch_unqueued(harness: Harness) -> None:
    store = harness.store
    taken = outbound()
    await store.enqueue_outbound(taken, [event(EventKind.SIGNED, taken.message_id)])
    first, last = outbound(), outbound()
    clash = outbound(taken.message_id)  # a message id already queued: the insert fails
    with pytest.raises(StoreUnavailable):
        await store.enqueue_outbound_batch(
            [(row, [event(EventKind.SIGNED, row.message_id)]) for row in (first, clash, last)]
        )
    assert await store.get_outbound(first.message_id) is None
    assert await store.get_outbound(last.message_id) is None
    entries = await store.read_log(0, 100)
    assert [e.message_id for e in entries] == [taken.message_id]
    # The chain continues from the entries that did commit.
    await store.enqueue_outbound(first, [event(EventKind.SIGNED, first.message_id)])
    assert verify_chain(await store.read_log(0, 100)).ok


async def test_a_redriven_old_message_gets_the_full_age_again(harness: Harness) -> None:
    store = harness.store
    old = outbound(created_at=EPOCH - dt.timedelta(days=30))
    await store.enqueue_outbound(old, [])
    assert await store.dead_letter_expired(PEER, EPOCH - AGE) == [old.message_id]

    redriven_at = EPOCH
    assert await store.redrive(
        old.message_id, [event(EventKind.REDRIVEN, old.message_id)], now=redriven_at
    )
    got = await store.get_outbound(old.message_id)
    assert got is not None and got.state is OutboundState.PENDING and got.attempts == 0
    assert got.next_attempt_at == redriven_at  # due at once
    assert got.created_at == old.created_at  # its creation is history and stays
    # The sweep a few seconds later leaves it alone: its age counts from the re-drive.
    soon = redriven_at + dt.timedelta(seconds=5)
    assert await store.dead_letter_expired(PEER, soon - AGE) == []
    assert [r.message_id for r in await store.due_outbound(PEER, soon, 10)] == [old.message_id]
    # Once the age has passed again without a delivery, it is dead-lettered again.
    assert await store.dead_letter_expired(PEER, redriven_at) == []
    later = redriven_at + AGE + dt.timedelta(seconds=1)
    assert await store.dead_letter_expired(PEER, later - AGE) == [old.message_id]
    assert [k for k, _ in await kinds(harness)] == ["dead_lettered", "redriven", "dead_lettered"]


async def test_redrive_without_a_time_counts_from_now(harness: Harness) -> None:
    store = harness.store
    old = outbound(created_at=EPOCH - dt.timedelta(days=30))
    await store.enqueue_outbound(old, [])
    await store.dead_letter_expired(PEER, EPOCH)
    before = dt.datetime.now(dt.UTC)
    assert await store.redrive(old.message_id, [])
    assert await store.dead_letter_expired(PEER, before - dt.timedelta(seconds=1)) == []
    assert await store.dead_letter_expired(PEER, dt.datetime.now(dt.UTC)) == [old.message_id]


async def _drop_age_column(h: Harness) -> None:
    """Make the database look like one written before the age clock had its own column."""
    store = h.store
    if isinstance(store, SqliteStore):
        with contextlib.closing(sqlite3.connect(store.path)) as lite:
            lite.execute("ALTER TABLE outbox DROP COLUMN age_from")
            lite.commit()
    else:
        assert isinstance(store, PostgresStore)
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f"ALTER TABLE {store.schema}.outbox DROP COLUMN age_from")
        finally:
            await conn.close()


async def test_an_older_database_gains_the_age_clock_from_creation(harness: Harness) -> None:
    old = outbound(created_at=EPOCH - dt.timedelta(days=5))
    young = outbound(created_at=EPOCH)
    for row in (old, young):
        await harness.store.enqueue_outbound(row, [])
    await harness.store.close()
    await _drop_age_column(harness)
    store = await harness.replica()
    assert await store.dead_letter_expired(PEER, EPOCH - AGE) == [old.message_id]
    assert await store.redrive(old.message_id, [], now=EPOCH)
    assert await store.dead_letter_expired(PEER, EPOCH - AGE) == []
