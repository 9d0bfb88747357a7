"""Two real nodes on PostgreSQL stores: records both ways, feedback, and ``log verify``.

Each node keeps its own schema in one shared database (``CHUANYU_TEST_PG_DSN``,
default the local test cluster). Without PostgreSQL these tests fail; they never skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from exchange_support import (
    COMPLAINT,
    REFERRAL,
    REGISTRATION,
    SUINING,
    TONGLIANG,
    NodePair,
    feedback_for,
    local_stub,
    node_config,
    receive,
    record,
    send_local,
    wait_delivered,
)

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.cli import main
from gateway.codec import record_from_proto
from gateway.node import GatewayNode
from gateway.pki import PkiLayout
from gateway.records import Record
from gateway.store.postgres import PostgresStore, iter_log_postgres
from gateway.translog import verify_chain

pytestmark = pytest.mark.e2e

PG_DSN = os.environ.get("CHUANYU_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
async def schemas() -> AsyncIterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:12]
    names = {TONGLIANG: f"e2e_{tag}_tl", SUINING: f"e2e_{tag}_sn"}
    admin = await asyncpg.connect(PG_DSN, timeout=10)  # fails loudly without PostgreSQL
    try:
        yield names
    finally:
        for schema in names.values():
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@pytest.fixture
async def pg_pair(
    pki: PkiLayout, tmp_path: Path, schemas: dict[str, str]
) -> AsyncIterator[NodePair]:
    def config(bureau: str, partner: str) -> GatewayNode:
        storage = {"engine": "postgresql", "dsn": PG_DSN, "schema": schemas[bureau]}
        return GatewayNode(node_config(pki, bureau, partner, tmp_path, storage=storage))

    tongliang, suining = config(TONGLIANG, SUINING), config(SUINING, TONGLIANG)
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield NodePair(tongliang, suining, tmp_path)


async def _exchange(
    sender: lgrpc.LocalServiceAsyncStub,
    receiver: lgrpc.LocalServiceAsyncStub,
    sender_bureau: str,
    records: list[Record],
) -> list[str]:
    sent: dict[str, Record] = {}
    for rec in records:
        sent[await send_local(sender, rec)] = rec
    for message_id in sent:
        state = await wait_delivered(sender, message_id)
        assert state.receipt.body  # the partner's signed receipt, stored in PostgreSQL
    inbound = await receive(receiver, len(sent))
    assert {item.message_id for item in inbound} == set(sent)
    for item in inbound:
        assert item.sender == sender_bureau
        assert record_from_proto(item.record) == sent[item.message_id]
    ack = await receiver.Acknowledge(lpb.AcknowledgeRequest(message_ids=list(sent)))
    assert ack.acknowledged == len(sent)
    return list(sent)


async def test_two_postgres_nodes_exchange_both_ways_and_logs_verify(
    pg_pair: NodePair, schemas: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    tongliang, suining = pg_pair.tongliang, pg_pair.suining
    assert isinstance(tongliang.store, PostgresStore)
    assert isinstance(suining.store, PostgresStore)
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{tongliang.local_port}") as tl_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{suining.local_port}") as sn_channel,
    ):
        tl, sn = local_stub(tl_channel), local_stub(sn_channel)
        from_tongliang = [
            record(COMPLAINT),
            record(REFERRAL, referral_number="铜市监移〔2026〕3号"),
        ]
        from_suining = [
            record(REGISTRATION, uscc="92510903MA6AB7Q52D", address_division="510903"),
            record(REFERRAL),
        ]
        await _exchange(tl, sn, TONGLIANG, from_tongliang)
        await _exchange(sn, tl, SUINING, from_suining)
        # Feedback flows back, correlated to the record it answers.
        feedback = [feedback_for(from_tongliang[0], "complaint_accepted")]
        for message_id in await _exchange(sn, tl, SUINING, feedback):
            row = await suining.store.get_outbound(message_id)
            assert row is not None and row.correlation_id
            assert await tongliang.store.get_outbound(row.correlation_id) is not None

    # Nothing went to a SQLite file: the nodes' stores are their schemas.
    assert not tongliang.config.node.database.exists()
    assert not suining.config.node.database.exists()

    for node in (tongliang, suining):
        schema = schemas[node.bureau]
        entries = await asyncio.to_thread(list, iter_log_postgres(PG_DSN, schema))
        verdict = verify_chain(entries)
        assert verdict.ok, verdict
        assert verdict.entries > 10
        kinds = {e.kind for e in entries}
        assert {"signed", "sent", "received", "receipt_issued", "delivered_to_local"} <= kinds

    await suining.stop()  # an operator checks the log with the node down
    schema = schemas[SUINING]
    assert (
        await asyncio.to_thread(main, ["log", "verify", "--dsn", PG_DSN, "--schema", schema]) == 0
    )
    assert "transfer log intact" in capsys.readouterr().out

    # Change one stored entry behind the node's back: verify names it.
    admin = await asyncpg.connect(PG_DSN)
    try:
        seq = await admin.fetchval(
            f"SELECT min(seq) FROM {schema}.transfer_log WHERE kind = 'received'"
        )
        await admin.execute(
            f"UPDATE {schema}.transfer_log SET detail = detail || ' ' WHERE seq = $1", seq
        )
    finally:
        await admin.close()
    assert (
        await asyncio.to_thread(main, ["log", "verify", "--dsn", PG_DSN, "--schema", schema]) == 1
    )
    err = capsys.readouterr().err
    assert f"BROKEN at entry {seq}" in err and "altered" in err


async def test_log_verify_reads_a_postgres_node_from_its_config(
    pg_pair: NodePair, capsys: pytest.CaptureFixture[str]
) -> None:
    node = pg_pair.tongliang
    async with grpc.aio.insecure_channel(f"127.0.0.1:{node.local_port}") as channel:
        stub = local_stub(channel)
        await wait_delivered(stub, await send_local(stub, record(COMPLAINT)))
    config_file = pg_pair.workdir / "tongliang.toml"
    storage = node.config.storage
    config_file.write_text(
        _config_toml(node, storage.dsn or "", storage.schema_name or ""), encoding="utf-8"
    )
    assert await asyncio.to_thread(main, ["log", "verify", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert f"schema {storage.schema_name}: transfer log intact" in out


def _config_toml(node: GatewayNode, dsn: str, schema: str) -> str:
    c = node.config
    return f"""
[node]
bureau = "{c.bureau}"
database = "{c.node.database}"

[storage]
engine = "postgresql"
dsn = "{dsn}"
schema = "{schema}"

[tls]
ca = "{c.tls.ca}"
cert = "{c.tls.cert}"
key = "{c.tls.key}"

[signing]
cert = "{c.signing.cert}"
key = "{c.signing.key}"

[agreements]
directory = "{c.agreements.directory}"
"""
