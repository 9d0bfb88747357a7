"""The storage contract: every :class:`~gateway.store.Store` method, on both real engines.

Each test runs against a fresh SQLite file and a fresh PostgreSQL schema; the tests
at the end (``pg`` fixture) cover what only a shared database has: replicas.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from store_support import (
    EPOCH,
    ME,
    OTHER,
    PEER,
    PG_DSN,
    AnyStore,
    Harness,
    envelope,
    event,
    inbound,
    outbound,
)

from gateway.errors import StoreUnavailable
from gateway.store.base import OutboundState, StoredPayload
from gateway.store.postgres import PostgresStore, iter_log_postgres
from gateway.translog import EventKind, LogEntry, verify_chain

LATER = EPOCH + dt.timedelta(hours=1)


async def whole_log(h: Harness) -> list[LogEntry]:
    return await h.store.read_log(0, 1_000_000)


async def kinds(h: Harness) -> list[str]:
    return [e.kind for e in await whole_log(h)]


# -- outbound -----------------------------------------------------------------


async def test_enqueue_then_get_returns_the_row(harness: Harness) -> None:
    row = outbound(record_key="TS-9")
    stored, created = await harness.store.enqueue_outbound(row, [event(EventKind.SIGNED, "m")])
    assert created
    assert stored == row
    got = await harness.store.get_outbound(row.message_id)
    assert got == row  # envelope decrypted, times round-trip, no receipt yet
    assert await harness.store.get_outbound("missing") is None
    assert await kinds(harness) == ["signed"]


async def test_idempotency_key_returns_the_first_row(harness: Harness) -> None:
    first = outbound(idempotency_key="local-42")
    again = outbound(idempotency_key="local-42", record_key="other")
    _, created = await harness.store.enqueue_outbound(first, [event(EventKind.SIGNED)])
    stored, created_again = await harness.store.enqueue_outbound(again, [event(EventKind.SIGNED)])
    assert created and not created_again
    assert stored == first
    assert await harness.store.get_outbound(again.message_id) is None
    assert await kinds(harness) == ["signed"]  # the repeat logs nothing


async def test_duplicate_message_id_fails_alone(harness: Harness) -> None:
    row = outbound()
    await harness.store.enqueue_outbound(row, [event(EventKind.SIGNED)])
    others = [outbound() for _ in range(5)]
    results = await asyncio.gather(
        harness.store.enqueue_outbound(row, [event(EventKind.SIGNED)]),
        *(harness.store.enqueue_outbound(o, [event(EventKind.SIGNED)]) for o in others),
        return_exceptions=True,
    )
    assert isinstance(results[0], StoreUnavailable)  # the driver's error, translated
    assert all(isinstance(r, tuple) and r[1] for r in results[1:])
    entries = await whole_log(harness)
    assert len(entries) == 6 and verify_chain(entries).ok


async def test_due_rows_in_order_per_receiver(harness: Harness) -> None:
    store = harness.store
    late = outbound(next_attempt_at=EPOCH + dt.timedelta(seconds=30))
    early = outbound(next_attempt_at=EPOCH - dt.timedelta(seconds=30))
    future = outbound(next_attempt_at=LATER)
    elsewhere = outbound(receiver=OTHER, next_attempt_at=EPOCH)
    for row in (late, early, future, elsewhere):
        await store.enqueue_outbound(row, [])
    now = EPOCH + dt.timedelta(minutes=1)
    due = await store.due_outbound(PEER, now, 10)
    assert [r.message_id for r in due] == [early.message_id, late.message_id]
    assert [r.message_id for r in await store.due_outbound(PEER, now, 1)] == [early.message_id]
    # Asking again hands the same rows (to the same store) while they are still pending.
    assert [r.message_id for r in await store.due_outbound(PEER, now, 10)] == [
        early.message_id,
        late.message_id,
    ]
    assert await store.next_due_at(PEER) == early.next_attempt_at
    assert await store.next_due_at("999999") is None
    assert [r.message_id for r in await store.due_outbound(OTHER, now, 10)] == [
        elsewhere.message_id
    ]


async def test_feedback_waits_for_the_record_it_answers(harness: Harness) -> None:
    store = harness.store
    original = outbound(correlation_id="case-1", next_attempt_at=LATER)
    feedback = outbound(correlation_id="case-1", record_type="feedback")
    unrelated = outbound(correlation_id="")
    also_unrelated = outbound(correlation_id="")
    for row in (original, feedback, unrelated, also_unrelated):
        await store.enqueue_outbound(row, [])
    now = EPOCH + dt.timedelta(seconds=1)
    ids = [r.message_id for r in await store.due_outbound(PEER, now, 10)]
    # The original is not due yet, and its feedback must not overtake it.
    assert ids == [unrelated.message_id, also_unrelated.message_id]
    later = LATER + dt.timedelta(seconds=1)
    ids = [r.message_id for r in await store.due_outbound(PEER, later, 10)]
    assert original.message_id in ids and feedback.message_id not in ids
    await store.mark_delivered(original.message_id, b"receipt", [], received_at=EPOCH)
    ids = [r.message_id for r in await store.due_outbound(PEER, later, 10)]
    assert feedback.message_id in ids


async def test_mark_delivered_stores_the_receipt_once(harness: Harness) -> None:
    store = harness.store
    row = outbound()
    await store.enqueue_outbound(row, [])
    received_at = EPOCH + dt.timedelta(seconds=5)
    await store.mark_delivered(
        row.message_id, b"signed-receipt", [event(EventKind.SENT)], received_at=received_at
    )
    await store.mark_delivered(
        row.message_id, b"other", [event(EventKind.SENT)], received_at=received_at
    )
    await store.mark_delivered("missing", b"x", [event(EventKind.SENT)], received_at=EPOCH)
    got = await store.get_outbound(row.message_id)
    assert got is not None
    assert got.state is OutboundState.DELIVERED
    assert got.receipt == b"signed-receipt"
    assert got.attempts == 1 and got.last_error == ""
    assert await store.due_outbound(PEER, LATER, 10) == []
    assert await store.next_due_at(PEER) is None
    assert await kinds(harness) == ["sent"]
    assert [r.message_id for r in await store.outbound_in_state(OutboundState.DELIVERED, 10)] == [
        row.message_id
    ]


async def test_failed_attempts_then_final_state(harness: Harness) -> None:
    store = harness.store
    row = outbound()
    await store.enqueue_outbound(row, [])
    retry_at = EPOCH + dt.timedelta(seconds=40)
    await store.mark_failed_attempt(
        row.message_id,
        error="UNAVAILABLE: peer down",
        next_attempt_at=retry_at,
        final_state=None,
        events=[event(EventKind.RETRY_SCHEDULED)],
    )
    got = await store.get_outbound(row.message_id)
    assert got is not None
    assert (got.state, got.attempts, got.last_error) == (
        OutboundState.PENDING,
        1,
        "UNAVAILABLE: peer down",
    )
    assert got.next_attempt_at == retry_at
    assert await store.due_outbound(PEER, EPOCH, 10) == []
    assert len(await store.due_outbound(PEER, retry_at, 10)) == 1
    await store.mark_failed_attempt(
        row.message_id,
        error="bad signature",
        next_attempt_at=retry_at,
        final_state=OutboundState.REJECTED,
        events=[event(EventKind.REJECTED_BY_PEER)],
    )
    # No longer pending: a later failure report changes nothing and logs nothing.
    await store.mark_failed_attempt(
        row.message_id,
        error="late",
        next_attempt_at=retry_at,
        final_state=None,
        events=[event(EventKind.RETRY_SCHEDULED)],
    )
    got = await store.get_outbound(row.message_id)
    assert got is not None
    assert (got.state, got.attempts, got.last_error) == (
        OutboundState.REJECTED,
        2,
        "bad signature",
    )
    assert await store.due_outbound(PEER, LATER, 10) == []
    assert await kinds(harness) == ["retry_scheduled", "rejected_by_peer"]
    rejected = await store.outbound_in_state(OutboundState.REJECTED, 10)
    assert [r.message_id for r in rejected] == [row.message_id]


async def test_dead_letter_expired_then_redrive(harness: Harness) -> None:
    store = harness.store
    old = outbound(created_at=EPOCH - dt.timedelta(days=4))
    older = outbound(created_at=EPOCH - dt.timedelta(days=5))
    fresh = outbound(created_at=EPOCH)
    elsewhere = outbound(receiver=OTHER, created_at=EPOCH - dt.timedelta(days=9))
    for row in (old, older, fresh, elsewhere):
        await store.enqueue_outbound(row, [])
    await store.mark_failed_attempt(
        old.message_id,
        error="DEADLINE_EXCEEDED",
        next_attempt_at=EPOCH,
        final_state=None,
        events=[],
    )
    expired = await store.dead_letter_expired(PEER, EPOCH - dt.timedelta(days=3))
    assert expired == [old.message_id, older.message_id]  # in enqueue order
    assert await store.dead_letter_expired(PEER, EPOCH - dt.timedelta(days=3)) == []
    entries = await whole_log(harness)
    assert [e.kind for e in entries] == ["dead_lettered", "dead_lettered"]
    assert '"error":"DEADLINE_EXCEEDED"' in entries[0].detail
    assert '"error":"never delivered"' in entries[1].detail
    dead = await store.outbound_in_state(OutboundState.DEAD_LETTERED, 10)
    assert [r.message_id for r in dead] == [old.message_id, older.message_id]
    assert [r.message_id for r in await store.due_outbound(PEER, LATER, 10)] == [fresh.message_id]

    assert await store.redrive(old.message_id, [event(EventKind.REDRIVEN, old.message_id)])
    assert not await store.redrive(old.message_id, [event(EventKind.REDRIVEN)])
    assert not await store.redrive(fresh.message_id, [event(EventKind.REDRIVEN)])
    got = await store.get_outbound(old.message_id)
    assert got is not None and got.state is OutboundState.PENDING and got.attempts == 0
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert old.message_id in [r.message_id for r in await store.due_outbound(PEER, now, 10)]
    assert (await kinds(harness))[-1] == "redriven"
    assert len(await whole_log(harness)) == 3


async def test_replace_envelope(harness: Harness) -> None:
    row = outbound()
    await harness.store.enqueue_outbound(row, [])
    await harness.store.replace_envelope(
        row.message_id, b"\x0a\x01resealed", [event(EventKind.RESEALED)]
    )
    got = await harness.store.get_outbound(row.message_id)
    assert got is not None and got.envelope == b"\x0a\x01resealed"
    assert await kinds(harness) == ["resealed"]


async def test_find_outbound_by_key_takes_the_latest(harness: Harness) -> None:
    store = harness.store
    first, second = outbound(record_key="K"), outbound(record_key="K")
    other_peer = outbound(record_key="K", receiver=OTHER)
    for row in (first, second, other_peer):
        await store.enqueue_outbound(row, [])
    found = await store.find_outbound_by_key("consumer_complaint", "K", PEER)
    assert found is not None and found.message_id == second.message_id
    assert await store.find_outbound_by_key("consumer_complaint", "nope", PEER) is None


# -- inbound ------------------------------------------------------------------


async def test_accept_inbound_dedupes_and_returns_the_stored_receipt(harness: Harness) -> None:
    store = harness.store
    row = inbound()
    accepted = await store.accept_inbound(
        row, [event(EventKind.RECEIVED)], [event(EventKind.DUPLICATE)]
    )
    assert accepted.created and accepted.row.seq > 0
    await store.store_issued_receipt(
        row.sender, row.message_id, b"our-receipt", [event(EventKind.RECEIPT_ISSUED)]
    )
    await store.store_issued_receipt(
        row.sender, row.message_id, b"second", [event(EventKind.RECEIPT_ISSUED)]
    )
    again = await store.accept_inbound(
        row, [event(EventKind.RECEIVED)], [event(EventKind.DUPLICATE)]
    )
    assert not again.created
    assert again.row.receipt == b"our-receipt"
    assert again.row.seq == accepted.row.seq
    assert again.row.envelope == row.envelope
    assert again.row.received_at == row.received_at
    assert again.row.header_sha256 == row.header_sha256
    assert await kinds(harness) == ["received", "receipt_issued", "duplicate"]


async def test_undelivered_then_acknowledged(harness: Harness) -> None:
    store = harness.store
    rows = [inbound(record_type=t) for t in ("consumer_complaint", "feedback", "feedback")]
    seqs = []
    for row in rows:
        seqs.append((await store.accept_inbound(row, [], [])).row.seq)
    assert seqs == sorted(seqs)
    waiting = await store.undelivered_inbound(0, 10)
    assert [r.message_id for r in waiting] == [r.message_id for r in rows]
    assert [r.seq for r in waiting] == seqs
    assert all(r.delivered_at is None for r in waiting)
    assert waiting[0].envelope == rows[0].envelope
    after_first = await store.undelivered_inbound(seqs[0], 10)
    assert [r.message_id for r in after_first] == [rows[1].message_id, rows[2].message_id]
    feedback = await store.undelivered_inbound(0, 10, ["feedback"])
    assert [r.message_id for r in feedback] == [rows[1].message_id, rows[2].message_id]
    assert len(await store.undelivered_inbound(0, 1)) == 1

    ids = [rows[2].message_id, "unknown", rows[0].message_id]
    assert await store.acknowledge_inbound(ids) == 2
    assert await store.acknowledge_inbound(ids) == 0
    assert await store.acknowledge_inbound([]) == 0
    left = await store.undelivered_inbound(0, 10)
    assert [r.message_id for r in left] == [rows[1].message_id]
    entries = await whole_log(harness)
    assert [(e.kind, e.message_id) for e in entries] == [
        ("delivered_to_local", rows[2].message_id),
        ("delivered_to_local", rows[0].message_id),
    ]
    found = await store.find_inbound_by_key("consumer_complaint", "TS-1")
    assert found is not None and found.message_id == rows[0].message_id
    assert found.delivered_at is not None


async def test_find_inbound_by_key_takes_the_latest(harness: Harness) -> None:
    store = harness.store
    first, second = inbound(record_key="K"), inbound(record_key="K", sender=OTHER)
    for row in (first, second):
        await store.accept_inbound(row, [], [])
    found = await store.find_inbound_by_key("consumer_complaint", "K")
    assert found is not None and found.message_id == second.message_id
    assert found.sender == OTHER
    assert await store.find_inbound_by_key("consumer_complaint", "nope") is None


async def test_get_inbound_by_sender_and_message_id(harness: Harness) -> None:
    store = harness.store
    row = inbound(record_key="K")
    await store.accept_inbound(row, [], [])
    found = await store.get_inbound(row.sender, row.message_id)
    assert found is not None and found.envelope == row.envelope
    assert await store.get_inbound(OTHER, row.message_id) is None


# -- reconciliation and retention -------------------------------------------


async def test_period_account(harness: Harness) -> None:
    store = harness.store
    start, end = EPOCH, EPOCH + dt.timedelta(hours=1)
    inside, outside, undelivered = outbound(), outbound(), outbound()
    for row in (inside, outside, undelivered):
        await store.enqueue_outbound(row, [event(EventKind.SIGNED)])
    await store.mark_delivered(inside.message_id, b"r", [], received_at=start)
    await store.mark_delivered(outside.message_id, b"r", [], received_at=end)
    got_in = inbound(received_at=end - dt.timedelta(microseconds=1))
    got_before = inbound(received_at=start - dt.timedelta(microseconds=1))
    got_other = inbound(sender=OTHER, received_at=start)
    for irow in (got_in, got_before, got_other):
        await store.accept_inbound(irow, [event(EventKind.RECEIVED)], [])
    account = await store.period_account(PEER, start, end)
    assert account.sent == {"consumer_complaint": frozenset({inside.message_id})}
    assert account.received == {"consumer_complaint": frozenset({got_in.message_id})}
    entries = await whole_log(harness)
    assert account.log_seq == entries[-1].seq == 6
    assert account.log_head == entries[-1].hash


async def test_unpurged_payloads_page_and_purge(harness: Harness) -> None:
    store = harness.store
    cutoff = EPOCH + dt.timedelta(days=1)
    # Ids whose order differs between bytewise and linguistic collations.
    out_rows = [outbound(m, created_at=EPOCH) for m in ("a-1", "B-2", "b-3", "_4")]
    out_rows.append(outbound("z-late", created_at=cutoff))
    in_rows = [inbound("x-1", sender=PEER), inbound("x-2", sender=OTHER)]
    for row in out_rows:
        await store.enqueue_outbound(row, [])
    for irow in in_rows:
        await store.accept_inbound(irow, [], [])
    expected = sorted(
        [("inbound", PEER, "x-1"), ("inbound", OTHER, "x-2")]
        + [("outbound", ME, m) for m in ("a-1", "B-2", "b-3", "_4")]
    )
    seen: list[StoredPayload] = []
    after = ("", "", "")
    while page := await store.unpurged_payloads(cutoff, after, 2):
        seen.extend(page)
        after = (page[-1].direction, page[-1].sender, page[-1].message_id)
    assert [(p.direction, p.sender, p.message_id) for p in seen] == expected
    by_id = {p.message_id: p for p in seen}
    assert by_id["x-1"].envelope == envelope("x-1")
    assert by_id["x-1"].stored_at == EPOCH
    assert by_id["a-1"].envelope == envelope("a-1")

    for item in (by_id["x-1"], by_id["a-1"]):
        await store.purge_payload(
            item, b"\x0a\x02anonymised", [event(EventKind.PURGED, item.message_id)]
        )
    left = await store.unpurged_payloads(cutoff, ("", "", ""), 100)
    assert {p.message_id for p in left} == {"x-2", "B-2", "b-3", "_4"}
    got = await store.get_outbound("a-1")
    assert got is not None and got.envelope == b"\x0a\x02anonymised"
    assert await kinds(harness) == ["purged", "purged"]


# -- transfer log and the bytes at rest ---------------------------------------


async def test_log_chain_reads_and_verifies(harness: Harness) -> None:
    store = harness.store
    for n in range(7):
        await store.append_log([event(EventKind.CHECKPOINT, f"m{n}", n=n, note="对账")])
    await store.append_log([])
    entries = await whole_log(harness)
    assert [e.seq for e in entries] == list(range(1, 8))
    verdict = verify_chain(entries)
    assert verdict.ok and verdict.entries == 7 and verdict.head == entries[-1].hash
    assert entries[0].detail == '{"n":0,"note":"对账"}'
    page = await store.read_log(3, 2)
    assert [e.seq for e in page] == [4, 5]
    assert page == entries[3:5]
    # The chain continues across a restart of the store.
    await store.close()
    reopened = await harness.replica()
    await reopened.append_log([event(EventKind.CHECKPOINT, "after-restart")])
    entries = await reopened.read_log(0, 100)
    assert len(entries) == 8 and verify_chain(entries).ok


async def test_envelopes_are_encrypted_at_rest(harness: Harness) -> None:
    store = harness.store
    row, irow = outbound(), inbound()
    await store.enqueue_outbound(row, [])
    await store.accept_inbound(irow, [], [])
    raw = await harness.raw_envelopes()
    assert len(raw) == 2
    for blob in raw:
        assert b"PLAINTEXT-PERSONAL-DATA" not in blob
        assert "李四".encode() not in blob
    got = await store.get_outbound(row.message_id)
    assert got is not None and got.envelope == row.envelope
    assert (await store.undelivered_inbound(0, 1))[0].envelope == irow.envelope


async def test_concurrent_writers_keep_one_chain(harness: Harness) -> None:
    store = harness.store

    async def writer(n: int) -> None:
        row = outbound()
        await store.enqueue_outbound(row, [event(EventKind.SIGNED, row.message_id)])
        await store.append_log([event(EventKind.CHECKPOINT, n=n), event(EventKind.CHECKPOINT)])
        await store.accept_inbound(inbound(), [event(EventKind.RECEIVED)], [])

    await asyncio.gather(*(writer(n) for n in range(150)))
    entries = await whole_log(harness)
    assert [e.seq for e in entries] == list(range(1, 601))
    assert verify_chain(entries).ok


async def test_a_cancelled_caller_does_not_lose_its_commit(harness: Harness) -> None:
    row = outbound()
    task = asyncio.create_task(harness.store.enqueue_outbound(row, [event(EventKind.SIGNED)]))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await harness.store.append_log([])  # runs after the cancelled call's batch
    await asyncio.sleep(0.05)
    assert await harness.store.get_outbound(row.message_id) is not None


async def test_probe_and_availability_follow_commits(harness: Harness) -> None:
    await harness.store.close()
    # Another process holds the write lock longer than this store waits for it.
    store = await harness.replica(busy_timeout_ms=200, lock_timeout_ms=200)
    await store.probe()
    assert store.available and store.last_error == ""
    async with harness.hold_write_lock():
        with pytest.raises(StoreUnavailable) as caught:
            await store.append_log([event(EventKind.CHECKPOINT)])
        assert caught.value.__cause__ is not None  # the driver's error, kept as the cause
        assert not store.available
        assert store.last_error
        with pytest.raises(StoreUnavailable):
            await store.probe()
    await store.probe()
    assert store.available and store.last_error == ""
    assert await store.read_log(0, 10) == []


async def test_store_refuses_another_bureaus_data(harness: Harness) -> None:
    await harness.store.append_log([event(EventKind.CHECKPOINT)])
    with pytest.raises(StoreUnavailable) as caught:
        await harness.replica(bureau=OTHER)
    assert caught.value.reason == "STORE_WRONG_NODE"


async def test_closed_store_refuses_work(harness: Harness) -> None:
    await harness.store.close()
    with pytest.raises(StoreUnavailable):
        await harness.store.append_log([event(EventKind.CHECKPOINT)])


# -- PostgreSQL: replicas of one node on one schema ----------------------------


async def test_replicas_never_claim_the_same_row(pg: Harness) -> None:
    first = pg.store
    second = await pg.replica()
    rows = [outbound() for _ in range(120)]
    for row in rows:
        await first.enqueue_outbound(row, [])
    now = EPOCH + dt.timedelta(seconds=1)
    a, b = await asyncio.gather(
        first.due_outbound(PEER, now, 200), second.due_outbound(PEER, now, 200)
    )
    ids_a, ids_b = {r.message_id for r in a}, {r.message_id for r in b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {r.message_id for r in rows}
    # While the claims hold, neither sees the other's rows again.
    assert {r.message_id for r in await second.due_outbound(PEER, now, 200)} == ids_b
    assert {r.message_id for r in await first.due_outbound(PEER, now, 200)} == ids_a


async def test_replicas_deliver_each_row_once(pg: Harness) -> None:
    replicas = [pg.store, await pg.replica(), await pg.replica()]
    rows = [outbound() for _ in range(150)]
    for row in rows:
        await pg.store.enqueue_outbound(row, [])
    delivered: list[list[str]] = [[] for _ in replicas]

    async def dispatch(index: int) -> None:
        store = replicas[index]
        while batch := await store.due_outbound(PEER, LATER, 7):
            for row in batch:
                delivered[index].append(row.message_id)
                await store.mark_delivered(
                    row.message_id, b"r", [event(EventKind.SENT, row.message_id)], received_at=LATER
                )

    await asyncio.gather(*(dispatch(i) for i in range(len(replicas))))
    everything = [m for ids in delivered for m in ids]
    assert sorted(everything) == sorted(r.message_id for r in rows)  # each exactly once
    assert all(delivered), "every replica took a share"
    entries = await pg.store.read_log(0, 1000)
    assert len(entries) == 150 and verify_chain(entries).ok


async def test_an_expired_lease_frees_a_crashed_replicas_rows(pg: Harness) -> None:
    crashed = await pg.replica(lease_seconds=0.3)
    survivor = pg.store
    row = outbound()
    await survivor.enqueue_outbound(row, [])
    assert [r.message_id for r in await crashed.due_outbound(PEER, LATER, 10)] == [row.message_id]
    assert await survivor.due_outbound(PEER, LATER, 10) == []
    # Held by another replica: due for the survivor when the lease ends, not before.
    due_at = await survivor.next_due_at(PEER)
    assert due_at is not None and due_at > dt.datetime.now(dt.UTC)
    await crashed.close()
    await asyncio.sleep(0.4)
    assert [r.message_id for r in await survivor.due_outbound(PEER, LATER, 10)] == [row.message_id]


async def test_a_failed_attempt_releases_the_claim(pg: Harness) -> None:
    first, second = pg.store, await pg.replica()
    row = outbound()
    await first.enqueue_outbound(row, [])
    assert len(await first.due_outbound(PEER, LATER, 10)) == 1
    await first.mark_failed_attempt(
        row.message_id, error="x", next_attempt_at=EPOCH, final_state=None, events=[]
    )
    assert [r.message_id for r in await second.due_outbound(PEER, LATER, 10)] == [row.message_id]


async def test_feedback_order_holds_across_replicas(pg: Harness) -> None:
    first, second = pg.store, await pg.replica()
    original = outbound(correlation_id="case-7")
    feedback = outbound(correlation_id="case-7", record_type="feedback")
    await first.enqueue_outbound(original, [])
    await first.enqueue_outbound(feedback, [])
    assert [r.message_id for r in await first.due_outbound(PEER, LATER, 10)] == [
        original.message_id
    ]
    assert await second.due_outbound(PEER, LATER, 10) == []  # the original is still pending
    await first.mark_delivered(original.message_id, b"r", [], received_at=LATER)
    assert [r.message_id for r in await second.due_outbound(PEER, LATER, 10)] == [
        feedback.message_id
    ]


async def test_replicas_append_to_one_chain(pg: Harness) -> None:
    replicas = [pg.store, await pg.replica(), await pg.replica()]

    async def writer(store: AnyStore, n: int) -> None:
        row = outbound()
        await store.enqueue_outbound(row, [event(EventKind.SIGNED, row.message_id, n=n)])
        await store.accept_inbound(inbound(), [event(EventKind.RECEIVED)], [])

    await asyncio.gather(*(writer(replicas[n % 3], n) for n in range(240)))
    entries = await pg.store.read_log(0, 10_000)
    assert [e.seq for e in entries] == list(range(1, 481))
    assert verify_chain(entries).ok
    # Inbox order is commit order across replicas: pages by seq never skip a row.
    seqs = [r.seq for r in await pg.store.undelivered_inbound(0, 1000)]
    assert len(seqs) == 240 and seqs == sorted(seqs)
    # The command-line reader sees the same chain.
    store = pg.store
    assert isinstance(store, PostgresStore)
    read = await asyncio.to_thread(lambda: list(iter_log_postgres(PG_DSN, store.schema)))
    assert read == entries
    tail = await asyncio.to_thread(lambda: list(iter_log_postgres(PG_DSN, store.schema, 470)))
    assert [e.seq for e in tail] == list(range(471, 481))


async def test_unreachable_database_is_store_unavailable() -> None:
    store = PostgresStore(
        "postgresql://postgres@127.0.0.1:1/test", bureau=ME, schema=f"t_{uuid.uuid4().hex[:8]}"
    )
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(StoreUnavailable):
        await asyncio.to_thread(lambda: list(iter_log_postgres(PG_DSN, "no_such_schema_here")))


def test_schema_names_are_checked() -> None:
    with pytest.raises(StoreUnavailable):
        PostgresStore(PG_DSN, bureau=ME, schema='x"; DROP TABLE y; --')
    assert PostgresStore(PG_DSN, bureau=ME).schema == f"chuanyu_{ME}"
