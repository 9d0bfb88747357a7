"""What the operators' commands print: values from peers and local callers (message ids,
correlation ids, agreement ids, record keys, error texts) never reach the terminal with a
raw control character; each shows as a visible escape, so it can neither clear the screen,
retitle the window, forge a line nor reverse the text after it."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from exchange_support import SUINING, TONGLIANG, node_config

from gateway.cli import main
from gateway.clock import utc_now
from gateway.node import GatewayNode
from gateway.pki import PkiLayout
from gateway.store import OutboundRow, OutboundState, SqliteStore
from gateway.translog import Direction, EventKind, LogEvent

pytestmark = pytest.mark.e2e

# Clear the screen, retitle the terminal and ring, start a forged line, and reverse what
# follows: each as a peer could put it into an id or an error text.
HOSTILE = "id\x1b[2J\x1b]0;owned\x07\r\nFORGED\tline\x7f\x85\u202elive\u2066x\u2069"
SHOWN = r"id\x1b[2J\x1b]0;owned\x07\r\nFORGED\tline\x7f\x85\u202elive\u2066x\u2069"
_OUR_COLOURS = re.compile("\x1b\\[[0-9;]*m")


def _raw_controls(text: str) -> list[str]:
    """Control characters in ``text`` other than the line ends of the lines printed."""
    return [c for c in text if not c.isprintable() and c != "\n"]


async def test_log_tail_escapes_every_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "node.db"
    async with SqliteStore(db, bureau=TONGLIANG) as store:
        await store.append_log(
            [
                LogEvent(
                    EventKind.REJECTED,
                    Direction.INBOUND,
                    peer=SUINING + HOSTILE,
                    message_id=HOSTILE,
                    record_type=HOSTILE,
                    detail={
                        "reason": "AGREEMENT_UNKNOWN",
                        "agreement_id": HOSTILE,
                        "correlation_id": HOSTILE,
                        "message": f"refused: {HOSTILE}",
                        "fields": [HOSTILE],
                    },
                )
            ]
        )
    for colour in ("never", "always"):
        assert main(["log", "tail", "--db", str(db), "--color", colour]) == 0
        out = capsys.readouterr().out
        plain = _OUR_COLOURS.sub("", out) if colour == "always" else out
        assert _raw_controls(plain) == [], colour
        assert len(plain.splitlines()) == 1, plain
        assert plain.count(SHOWN) >= 5, plain  # peer, message id, type and two details


@pytest.fixture
async def tongliang(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[GatewayNode]:
    async with GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path)) as node:
        yield node


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_dead_letters_list_and_redrive_escape_every_value(
    tongliang: GatewayNode, capsys: pytest.CaptureFixture[str]
) -> None:
    now = utc_now()
    store = tongliang.store
    row = OutboundRow(
        message_id=HOSTILE,
        receiver=SUINING,
        record_type="consumer_complaint",
        record_key=HOSTILE,
        correlation_id=HOSTILE,
        envelope=b"",
        created_at=now,
        state=OutboundState.PENDING,
        attempts=0,
        next_attempt_at=now + dt.timedelta(days=1),  # the dispatcher leaves it alone
    )
    await store.enqueue_outbound(row, [])
    await store.mark_failed_attempt(
        HOSTILE,
        error=f"FAILED_PRECONDITION: {HOSTILE}",
        next_attempt_at=now + dt.timedelta(days=1),
        final_state=OutboundState.DEAD_LETTERED,
        events=[],
    )
    local = f"127.0.0.1:{tongliang.local_port}"

    assert await _cli("dead-letters", "list", "--local", local) == 0
    out = capsys.readouterr().out
    assert _raw_controls(out) == []
    lines = out.splitlines()
    assert len(lines) == 3 and lines[-1] == "1 dead letter(s)", out
    assert lines[0].startswith(SHOWN) and lines[0].count(SHOWN) == 2  # id and record key
    assert lines[1] == f"    last error: FAILED_PRECONDITION: {SHOWN}"

    other = HOSTILE.replace("id", "other", 1)
    assert await _cli("dead-letters", "redrive", "--local", local, other) == 1
    captured = capsys.readouterr()
    assert _raw_controls(captured.err) == [] and _raw_controls(captured.out) == []
    assert captured.err.splitlines() == [
        SHOWN.replace("id", "other", 1) + "  not a dead letter: left alone"
    ]
