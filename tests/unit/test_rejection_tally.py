"""Refusals counted per (peer, reason) and interval: the first logged, the rest summed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import Overloaded, PeerNotPartner
from gateway.node.limits import PeerLimiter, RejectionLog, RejectionSummary, RejectionTally
from gateway.store.sqlite import SqliteStore, iter_log_file


def test_the_first_refusal_of_an_interval_is_logged_and_the_rest_counted() -> None:
    tally = RejectionTally(interval=60)
    assert tally.note("510100", "PEER_NOT_PARTNER", "first", now=0.0)
    assert not any(tally.note("510100", "PEER_NOT_PARTNER", f"n{i}", now=1.0) for i in range(999))
    # Another reason or another peer opens its own interval.
    assert tally.note("510100", "STALE", "stale", now=2.0)
    assert tally.note("", "PEER_NOT_PARTNER", "no certificate", now=2.0)
    assert tally.due(now=59.0) == []
    assert tally.due(now=60.0) == [
        RejectionSummary("510100", "PEER_NOT_PARTNER", 999, 60.0, "n998")
    ]
    # The next one after the interval is logged in full again.
    assert tally.note("510100", "PEER_NOT_PARTNER", "again", now=61.0)


def test_an_interval_with_one_refusal_needs_no_summary() -> None:
    tally = RejectionTally(interval=10)
    tally.note("510100", "PEER_NOT_PARTNER", "only", now=0.0)
    assert tally.due(now=10.0) == []
    assert tally.close_all(now=11.0) == []


def test_close_all_sums_open_intervals() -> None:
    tally = RejectionTally(interval=60)
    for now in range(5):
        tally.note("510900", "STALE", f"s{now}", now=float(now))
    assert tally.close_all(now=5.0) == [RejectionSummary("510900", "STALE", 4, 5.0, "s4")]
    assert tally.close_all(now=6.0) == []


def test_streams_are_capped_per_peer() -> None:
    limiter = PeerLimiter(max_concurrent=8, rate=100.0, burst=10, max_streams=2)
    limiter.open_stream("510900")
    limiter.open_stream("510900")
    with pytest.raises(Overloaded) as refused:
        limiter.open_stream("510900")
    assert refused.value.retry_after > 0
    limiter.open_stream("500151")  # another peer has its own slots
    limiter.close_stream("510900")
    limiter.open_stream("510900")
    assert limiter.streams("510900") == 2
    for _ in range(3):
        limiter.close_stream("510900")
    assert limiter.streams("510900") == 0


async def test_the_log_job_writes_one_entry_per_interval_with_the_count(tmp_path: Path) -> None:
    now = [0.0]
    store = SqliteStore(tmp_path / "node.db", bureau="500151")
    await store.open()
    try:
        log = RejectionLog(store, interval=60, clock=lambda: now[0])
        refusal = PeerNotPartner("TLS peer 510100 is not a partner of bureau 500151")
        for _ in range(500):
            await log.refused("510100", refusal)
        now[0] = 60.0
        await log.flush()
    finally:
        await store.close()
    entries = [e for e in iter_log_file(tmp_path / "node.db") if e.kind == "rejected"]
    assert [json.loads(e.detail).get("count") for e in entries] == [None, 499]
    assert {json.loads(e.detail)["reason"] for e in entries} == {"PEER_NOT_PARTNER"}
