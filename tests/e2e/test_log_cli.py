"""``log verify`` proves a node's transfer log intact, and names the first altered entry."""

from __future__ import annotations

import sqlite3

import pytest
from exchange_support import COMPLAINT, REFERRAL, NodePair, record, send_local, wait_delivered

from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.cli import main

pytestmark = pytest.mark.e2e


async def _exchange(pair: NodePair, stub: lgrpc.LocalServiceAsyncStub) -> None:
    for rec in (record(COMPLAINT), record(REFERRAL)):
        await wait_delivered(stub, await send_local(stub, rec))


async def test_log_verify_names_the_altered_entry(
    pair: NodePair, tongliang_local: lgrpc.LocalServiceAsyncStub, capsys: pytest.CaptureFixture[str]
) -> None:
    await _exchange(pair, tongliang_local)
    db = pair.suining.config.node.database
    await pair.suining.stop()  # the node is down while an operator looks at the file

    assert main(["log", "verify", "--db", str(db)]) == 0
    assert "transfer log intact" in capsys.readouterr().out

    # Change one byte of one stored entry behind the node's back.
    with sqlite3.connect(db) as conn:
        seq, detail = conn.execute(
            "SELECT seq, detail FROM transfer_log WHERE kind = 'received' ORDER BY seq LIMIT 1"
        ).fetchone()
        altered = detail.replace("a", "b", 1) if "a" in detail else detail + " "
        conn.execute("UPDATE transfer_log SET detail = ? WHERE seq = ?", (altered, seq))
    assert main(["log", "verify", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert f"BROKEN at entry {seq}" in err
    assert "altered" in err


async def test_log_tail_prints_readable_columns(
    pair: NodePair, tongliang_local: lgrpc.LocalServiceAsyncStub, capsys: pytest.CaptureFixture[str]
) -> None:
    await _exchange(pair, tongliang_local)
    assert main(["log", "tail", "--db", str(pair.tongliang.config.node.database), "-n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert any(" sent " in line and "→ 510900" in line for line in lines)
    # No personal information in the log: the complainant's phone never appears.
    everything = "\n".join(lines)
    assert "13800138000" not in everything and "李四" not in everything


def test_log_verify_on_a_missing_database_is_a_clear_error(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["log", "verify", "--db", "/nonexistent/node.db"]) == 1
    assert "no node database at /nonexistent/node.db" in capsys.readouterr().err
