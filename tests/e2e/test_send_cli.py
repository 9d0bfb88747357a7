"""``chuanyu-gateway send``: a file is one batch, checked whole and queued once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from exchange_support import (
    COMPLAINT,
    REGISTRATION,
    NodePair,
    local_stub,
    record,
    wait_delivered,
)

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from gateway.cli import main
from gateway.codec import record_to_proto

pytestmark = pytest.mark.e2e


async def _cli(*argv: str) -> int:
    # The CLI runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(main, list(argv))


def _outbox(pair: NodePair) -> list[tuple[str, str]]:
    with sqlite3.connect(pair.tongliang.config.node.database) as conn:
        rows = conn.execute("SELECT record_key, idempotency_key FROM outbox ORDER BY rowid")
        return [(str(k), str(i)) for k, i in rows.fetchall()]


def _file(tmp_path: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


async def test_sending_the_same_file_twice_queues_each_record_once(
    pair: NodePair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [{**COMPLAINT, "complaint_number": f"TS-SEND-{n}"} for n in range(3)]
    path = _file(tmp_path, "complaints.json", [*records, REGISTRATION])
    local = f"127.0.0.1:{pair.tongliang.local_port}"

    assert await _cli("send", "--local", local, str(path), "--wait", "20") == 0
    first = capsys.readouterr().out
    assert "4 queued, 0 already queued, 0 refused" in first
    assert first.count("delivered, receipt signed by") == 4

    assert await _cli("send", "--local", local, str(path)) == 0
    again = capsys.readouterr().out
    assert "0 queued, 4 already queued, 0 refused" in again
    assert again.count("(already queued)") == 4

    queued = _outbox(pair)
    assert sorted(k for k, _ in queued) == sorted(
        [*(r["complaint_number"] for r in records), REGISTRATION["uscc"]]
    )
    # Keyed as the outbound folder keys a file: its digest and the record's position.
    assert [i.rsplit(":", 1)[1] for _, i in queued] == ["0", "1", "2", "3"]
    assert len({i.rsplit(":", 1)[0] for _, i in queued}) == 1
    assert len(await pair.suining.store.undelivered_inbound(0, 100)) == 4


async def test_a_file_with_one_refused_record_queues_none_of_it(
    pair: NodePair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Feedback on a complaint this node never received: the node cannot route it.
    feedback = {
        "record_type": "feedback",
        "original_number": "TS-NEVER",
        "original_type": "consumer_complaint",
        "status": "complaint_accepted",
        "handled_at": "2026-11-28T15:00:00+08:00",
        "officer": "王五",
    }
    path = _file(tmp_path, "mixed.json", [COMPLAINT, feedback, REGISTRATION])
    local = f"127.0.0.1:{pair.tongliang.local_port}"

    assert await _cli("send", "--local", local, str(path)) == 1
    err = capsys.readouterr().err
    assert "refused record 2 (feedback TS-NEVER)" in err and "[UNKNOWN_CORRELATION]" in err
    assert "nothing queued: 1 of 3 record(s) refused" in err
    assert _outbox(pair) == []

    # Fixed, the same records go through; nothing of the refused attempt lingers.
    fixed = _file(tmp_path, "fixed.json", [COMPLAINT, REGISTRATION])
    assert await _cli("send", "--local", local, str(fixed)) == 0
    assert len(_outbox(pair)) == 2


async def test_a_batch_names_each_refused_record_its_field_and_rule(pair: NodePair) -> None:
    bad = record_to_proto(record(COMPLAINT, complaint_number="TS-BAD"))
    bad.consumer_complaint.respondent.division = "5109"
    good = record_to_proto(record(COMPLAINT, complaint_number="TS-GOOD"))
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        response = await stub.SendBatch(
            lpb.SendBatchRequest(
                records=[
                    lpb.SendRequest(record=good, idempotency_key="k-0"),
                    lpb.SendRequest(record=bad, idempotency_key="k-1"),
                ]
            ),
            timeout=10,
        )
        assert list(response.results) == []
        (refusal,) = response.refusals
        assert refusal.index == 1 and refusal.rejection.reason == "RECORD_INVALID"
        assert [(v.field, v.rule) for v in refusal.rejection.field_violations] == [
            ("respondent.division", "division.format")
        ]
        assert _outbox(pair) == []

        fixed = await stub.SendBatch(
            lpb.SendBatchRequest(records=[lpb.SendRequest(record=good, idempotency_key="k-0")]),
            timeout=10,
        )
        assert [r.duplicate for r in fixed.results] == [False]
        await wait_delivered(stub, fixed.results[0].message_id)
