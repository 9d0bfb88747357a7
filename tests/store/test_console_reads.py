"""The console's read models (:class:`~gateway.store.reads.ConsoleReads`), on both engines."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from store_support import EPOCH, OTHER, PEER, Harness, envelope, event, inbound, outbound

from gateway.clock import iso_utc, utc_now
from gateway.store.base import OutboundState
from gateway.store.reads import TransferFilter, TransferRow, encode_cursor
from gateway.translog import EventKind

MINUTE = dt.timedelta(minutes=1)


async def _exchange(h: Harness) -> None:
    """Five outbound and four inbound messages, a minute apart, in known states."""
    store = h.store
    for n, (name, receiver, record_type, key) in enumerate(
        [
            ("o-delivered", PEER, "consumer_complaint", "TS-1"),
            ("o-dead", PEER, "business_registration", "91500000MA00000001"),
            ("o-other", OTHER, "consumer_complaint", "TS-2"),
            ("o-pending", PEER, "enforcement_referral", "YS-7"),
            ("o-rejected", PEER, "consumer_complaint", "TS-3"),
        ]
    ):
        row = outbound(
            name,
            receiver=receiver,
            record_type=record_type,
            record_key=key,
            created_at=EPOCH + n * 2 * MINUTE,
        )
        await store.enqueue_outbound(row, [event(EventKind.SIGNED, name)])
    await store.mark_delivered("o-delivered", b"their-receipt", [], received_at=EPOCH)
    await store.mark_failed_attempt(
        "o-rejected",
        error="bad signature",
        next_attempt_at=EPOCH,
        final_state=OutboundState.REJECTED,
        events=[],
    )
    await store.dead_letter_expired(PEER, EPOCH + 3 * MINUTE)  # o-delivered is not pending
    for n, (name, sender, key) in enumerate(
        [("i-1", PEER, "TS-1"), ("i-2", PEER, "TS-9"), ("i-3", OTHER, "YS-7"), ("i-4", PEER, "X")]
    ):
        irow = inbound(
            name, sender=sender, record_key=key, received_at=EPOCH + (2 * n + 1) * MINUTE
        )
        await store.accept_inbound(irow, [event(EventKind.RECEIVED, name)], [])
    await store.acknowledge_inbound(["i-1", "i-3"])


async def _all_pages(h: Harness, f: TransferFilter) -> list[TransferRow]:
    rows: list[TransferRow] = []
    while True:
        page = await h.store.list_transfers(f)
        rows.extend(page.rows)
        if not page.next_cursor:
            return rows
        f = replace(f, cursor=page.next_cursor)


async def ids_of(h: Harness, **options: object) -> list[str]:
    f = TransferFilter(**options)  # type: ignore[arg-type]
    return [r.message_id for r in await _all_pages(h, f)]


async def test_transfers_page_newest_first_across_both_boxes(harness: Harness) -> None:
    await _exchange(harness)
    everything = [
        "o-rejected", "i-4", "o-pending", "i-3", "o-other", "i-2", "o-dead", "i-1", "o-delivered",
    ]  # fmt: skip
    first = await harness.store.list_transfers(TransferFilter(limit=4))
    assert [r.message_id for r in first.rows] == everything[:4]
    assert first.next_cursor
    assert await ids_of(harness, limit=4) == everything
    assert await ids_of(harness, limit=200) == everything
    last = await harness.store.list_transfers(TransferFilter(limit=9))
    assert last.next_cursor == ""
    row = first.rows[0]
    assert row == TransferRow(
        "outbound",
        "o-rejected",
        PEER,
        "consumer_complaint",
        "TS-3",
        "rejected",
        iso_utc(EPOCH + 8 * MINUTE),
        1,
        "bad signature",
    )
    inbound_row = first.rows[1]
    assert (inbound_row.direction, inbound_row.status, inbound_row.at) == (
        "inbound",
        "received",
        iso_utc(EPOCH + 7 * MINUTE),
    )


async def test_transfer_filters(harness: Harness) -> None:
    await _exchange(harness)
    assert await ids_of(harness, direction="inbound") == ["i-4", "i-3", "i-2", "i-1"]
    assert await ids_of(harness, direction="outbound", limit=2) == [
        "o-rejected", "o-pending", "o-other", "o-dead", "o-delivered",
    ]  # fmt: skip
    assert await ids_of(harness, peer=OTHER) == ["i-3", "o-other"]
    assert await ids_of(harness, record_type="enforcement_referral") == ["o-pending"]
    assert await ids_of(harness, status="pending") == ["o-pending", "o-other"]
    assert await ids_of(harness, status="dead_lettered") == ["o-dead"]
    assert await ids_of(harness, status="received") == ["i-4", "i-2"]
    assert await ids_of(harness, status="delivered") == ["i-3", "i-1", "o-delivered"]
    assert await ids_of(harness, status="delivered", direction="outbound") == ["o-delivered"]
    window = {"since": iso_utc(EPOCH + 3 * MINUTE), "until": iso_utc(EPOCH + 6 * MINUTE)}
    assert await ids_of(harness, **window) == ["i-3", "o-other", "i-2"]
    assert await ids_of(harness, **window, limit=1) == ["i-3", "o-other", "i-2"]


async def test_transfer_search_by_message_id_or_record_key(harness: Harness) -> None:
    await _exchange(harness)
    assert await ids_of(harness, q="TS-1") == ["i-1", "o-delivered"]
    assert await ids_of(harness, q="YS-7") == ["o-pending", "i-3"]
    assert await ids_of(harness, q="91500000MA00000001") == ["o-dead"]
    assert await ids_of(harness, q="i-2") == ["i-2"]
    assert await ids_of(harness, q="nothing-like-it") == []
    assert await ids_of(harness, q="TS-1", direction="inbound") == ["i-1"]


async def test_a_cursor_not_handed_out_is_refused(harness: Harness) -> None:
    await _exchange(harness)
    for bad in ("not-base64!", "bm90IGpzb24", encode_cursor("x", "y")[:-3] + "AAA"):
        with pytest.raises(ValueError, match="cursor"):
            await harness.store.list_transfers(TransferFilter(cursor=bad))
    # A well-formed cursor pages on from wherever it points.
    after = encode_cursor(iso_utc(EPOCH + 5 * MINUTE), "i-3")
    page = await harness.store.list_transfers(TransferFilter(cursor=after))
    assert [r.message_id for r in page.rows] == [
        "o-other",
        "i-2",
        "o-dead",
        "i-1",
        "o-delivered",
    ]


async def test_counts_and_backlog(harness: Harness) -> None:
    await _exchange(harness)
    out = {(c.state, c.peer, c.record_type): c.count for c in await harness.store.outbound_counts()}
    assert out == {
        ("delivered", PEER, "consumer_complaint"): 1,
        ("pending", PEER, "enforcement_referral"): 1,
        ("pending", OTHER, "consumer_complaint"): 1,
        ("dead_lettered", PEER, "business_registration"): 1,
        ("rejected", PEER, "consumer_complaint"): 1,
    }
    inb = {(c.peer, c.record_type): (c.received, c.undelivered) for c in
           await harness.store.inbound_counts()}  # fmt: skip
    assert inb == {(PEER, "consumer_complaint"): (3, 2), (OTHER, "consumer_complaint"): (1, 0)}
    backlog = await harness.store.backlog_by_peer()
    assert set(backlog) == {PEER, OTHER}
    assert (backlog[PEER].pending, backlog[PEER].dead_lettered) == (1, 1)
    assert backlog[PEER].oldest_pending == iso_utc(EPOCH + 6 * MINUTE)
    assert (backlog[OTHER].pending, backlog[OTHER].dead_lettered) == (1, 0)
    assert backlog[OTHER].oldest_pending == iso_utc(EPOCH + 4 * MINUTE)


async def test_empty_store_reads_empty(harness: Harness) -> None:
    store = harness.store
    assert await store.outbound_counts() == []
    assert await store.inbound_counts() == []
    assert await store.backlog_by_peer() == {}
    assert await store.dead_letters() == []
    assert (await store.list_transfers(TransferFilter())).rows == []
    hours = await store.throughput(EPOCH, 3)
    assert hours == [("2026-11-27T06:00", 0, 0), ("2026-11-27T07:00", 0, 0),
                     ("2026-11-27T08:00", 0, 0)]  # fmt: skip


async def test_dead_letters_newest_first(harness: Harness) -> None:
    store = harness.store
    for n in range(3):
        await store.enqueue_outbound(outbound(f"d-{n}", created_at=EPOCH + n * MINUTE), [])
    await store.enqueue_outbound(outbound("alive", created_at=EPOCH + 9 * MINUTE), [])
    await store.dead_letter_expired(PEER, EPOCH + 5 * MINUTE)
    dead = await store.dead_letters()
    assert [r.message_id for r in dead] == ["d-2", "d-1", "d-0"]
    assert dead[0].status == "dead_lettered" and dead[0].at == iso_utc(EPOCH + 2 * MINUTE)
    assert [r.message_id for r in await store.dead_letters(limit=1)] == ["d-2"]


async def test_throughput_counts_sent_and_received_per_hour(harness: Harness) -> None:
    store = harness.store
    await store.append_log([event(EventKind.SENT, f"s{n}") for n in range(3)])
    await store.append_log([event(EventKind.RECEIVED, f"r{n}") for n in range(2)])
    await store.append_log([event(EventKind.SIGNED, "x"), event(EventKind.CHECKPOINT)])
    now = utc_now()
    hours = await store.throughput(now, 24)
    assert len(hours) == 24
    assert hours[-1] == (now.strftime("%Y-%m-%dT%H:00"), 3, 2)
    assert all(sent == received == 0 for _, sent, received in hours[:-1])
    # A window that ends before the log began counts nothing.
    assert all(s == r == 0 for _, s, r in await store.throughput(now - dt.timedelta(days=2), 5))


async def test_log_reads_and_a_messages_timeline(harness: Harness) -> None:
    store = harness.store
    row = outbound("m-1")
    await store.enqueue_outbound(row, [event(EventKind.SIGNED, "m-1", note="签名")])
    await store.append_log([event(EventKind.CHECKPOINT, "other")])
    await store.mark_delivered("m-1", b"r", [event(EventKind.SENT, "m-1")], received_at=EPOCH)
    timeline = await store.message_timeline("m-1")
    assert [(e.kind, e.seq) for e in timeline] == [("signed", 1), ("sent", 3)]
    assert timeline[0].detail == {"note": "签名"}
    assert timeline[0].peer == PEER and timeline[0].direction == "outbound"
    assert await store.message_timeline("unknown") == []
    assert [e.seq for e in await store.log_after(1)] == [2, 3]
    assert [e.seq for e in await store.log_after(0, 2)] == [1, 2]
    assert [e.seq for e in await store.log_latest(2)] == [2, 3]
    entries = await store.read_log(0, 10)
    assert [e.at for e in await store.log_after()] == [e.at for e in entries]


async def test_stored_message_is_decrypted_with_its_receipt(harness: Harness) -> None:
    store = harness.store
    await store.enqueue_outbound(outbound("out-1", record_key="TS-5"), [])
    await store.mark_delivered("out-1", b"partner-receipt", [], received_at=EPOCH)
    await store.enqueue_outbound(outbound("out-2"), [])
    await store.accept_inbound(inbound("in-1", record_key="TS-6"), [], [])
    await store.store_issued_receipt(PEER, "in-1", b"our-receipt", [])
    await store.accept_inbound(inbound("in-2"), [], [])

    sent = await store.stored_message("outbound", "out-1")
    assert sent is not None
    assert sent.envelope == envelope("out-1")  # decrypted, never the ciphertext
    assert sent.receipt == b"partner-receipt"
    assert (sent.direction, sent.peer, sent.record_key, sent.status, sent.attempts) == (
        "outbound", PEER, "TS-5", "delivered", 1,
    )  # fmt: skip
    assert sent.at == iso_utc(EPOCH)
    waiting = await store.stored_message("outbound", "out-2")
    assert waiting is not None and waiting.receipt == b"" and waiting.status == "pending"

    got = await store.stored_message("inbound", "in-1")
    assert got is not None
    assert got.envelope == envelope("in-1") and got.receipt == b"our-receipt"
    assert (got.peer, got.record_key, got.status) == (PEER, "TS-6", "received")
    unanswered = await store.stored_message("inbound", "in-2")
    assert unanswered is not None and unanswered.receipt == b""

    assert await store.stored_message("inbound", "out-1") is None
    assert await store.stored_message("outbound", "missing") is None
    assert await store.stored_message("sideways", "out-1") is None
