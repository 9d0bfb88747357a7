"""Operators' tools against running nodes: dead letters and reconciliation."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from exchange_support import (
    COMPLAINT,
    REFERRAL,
    SUINING,
    TONGLIANG,
    NodePair,
    eventually,
    local_stub,
    node_config,
    record,
    send_local,
    wait_delivered,
)

from gateway.cli import main
from gateway.node import GatewayNode
from gateway.pki import PkiLayout
from gateway.store.base import OutboundState
from gateway.store.sqlite import iter_log_file

pytestmark = pytest.mark.e2e


async def _cli(*argv: str) -> int:
    # The CLI runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
async def quick_dead(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[NodePair]:
    retry = {"base_seconds": 0.05, "cap_seconds": 0.2, "max_attempts": 2}
    tongliang = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path, retry=retry))
    suining = GatewayNode(node_config(pki, SUINING, TONGLIANG, tmp_path))
    async with tongliang, suining:
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield NodePair(tongliang, suining, tmp_path)


async def test_dead_letters_listed_and_redriven_from_the_command_line(
    quick_dead: NodePair, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = quick_dead
    pair.tongliang.route(SUINING, "127.0.0.1:1")
    local = f"127.0.0.1:{pair.tongliang.local_port}"
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        message_id = await send_local(stub, record(COMPLAINT))

        async def dead() -> bool:
            rows = await pair.tongliang.store.outbound_in_state(OutboundState.DEAD_LETTERED, 5)
            return bool(rows)

        await eventually(dead, what="a dead letter")
        assert await _cli("dead-letters", "list", "--local", local) == 0
        out = capsys.readouterr().out
        assert message_id in out and "UNAVAILABLE" in out and "1 dead letter(s)" in out

        pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
        assert (
            await _cli(
                "dead-letters", "redrive", "--local", local, "--all", "--operator", "ops-wang"
            )
            == 0
        )
        assert f"{message_id}  re-driven" in capsys.readouterr().out
        await wait_delivered(stub, message_id)
        # A second re-drive finds nothing dead: refused, and nothing is sent again.
        assert await _cli("dead-letters", "redrive", "--local", local, message_id) == 1
    events = [
        e for e in iter_log_file(pair.tongliang.config.node.database) if e.message_id == message_id
    ]
    assert "ops-wang" in next(e.detail for e in events if e.kind == "redriven")
    assert len(await pair.suining.store.undelivered_inbound(0, 10)) == 1


async def test_reconcile_names_a_deliberately_deleted_inbox_row(
    pair: NodePair, pki: PkiLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    async with pair.local(pair.tongliang) as tl, pair.local(pair.suining) as sn:
        tongliang, suining = local_stub(tl), local_stub(sn)
        ours = [
            await send_local(tongliang, record(COMPLAINT, complaint_number=f"TS-RC-{n}"))
            for n in range(5)
        ]
        theirs = [
            await send_local(suining, record(REFERRAL, referral_number=f"遂市监移〔2026〕{n}号"))
            for n in range(3)
        ]
        for message_id in ours:
            await wait_delivered(tongliang, message_id)
        for message_id in theirs:
            await wait_delivered(suining, message_id)
    local = f"127.0.0.1:{pair.tongliang.local_port}"
    ca = str(pki.ca_cert)

    assert await _cli("reconcile", "--local", local, "--ca", ca) == 0
    assert "no gaps" in capsys.readouterr().out

    # Behind Suining's back, one record Tongliang sent disappears from its inbox ...
    with sqlite3.connect(pair.suining.config.node.database) as conn:
        conn.execute("DELETE FROM inbox WHERE message_id = ?", (ours[2],))
    # ... and one Suining sent disappears from Tongliang's.
    with sqlite3.connect(pair.tongliang.config.node.database) as conn:
        conn.execute("DELETE FROM inbox WHERE message_id = ?", (theirs[1],))
    assert await _cli("reconcile", "--local", local, "--ca", ca, "--peer", SUINING) == 1
    out = capsys.readouterr().out
    assert f"sent by us, missing at {SUINING}: 1\n    {ours[2]}" in out
    assert f"sent by {SUINING}, missing here: 1\n    {theirs[1]}" in out
    assert "partner's checkpoint verified" in out
    # Both sides logged the exchange of checkpoints.
    for node in (pair.tongliang, pair.suining):
        assert any(e.kind == "checkpoint" for e in iter_log_file(node.config.node.database))
