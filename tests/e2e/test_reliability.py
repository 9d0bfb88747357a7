"""Partner outages, dead letters and re-drive, feedback order, overload."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from exchange_support import (
    COMPLAINT,
    SUINING,
    TONGLIANG,
    NodePair,
    eventually,
    exchange_stub,
    feedback_for,
    local_stub,
    node_config,
    peer_channel,
    receive,
    record,
    sealed,
    send_local,
    signer_for,
    submit,
    wait_delivered,
)
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from gateway.codec import record_from_proto
from gateway.node import GatewayNode
from gateway.node.partner import PartnerHealth
from gateway.pki import PkiLayout
from gateway.records import Feedback
from gateway.store.base import OutboundState

pytestmark = pytest.mark.e2e

NOWHERE = "127.0.0.1:1"  # nothing listens there


@pytest.fixture
async def short_lived(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[NodePair]:
    """Tongliang dead-letters after 1.5 s; Suining is normal."""
    retry = {"base_seconds": 0.05, "cap_seconds": 0.2, "dead_letter_after_seconds": 1.5}
    tongliang = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path, retry=retry))
    suining = GatewayNode(node_config(pki, SUINING, TONGLIANG, tmp_path))
    async with tongliang, suining:
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield NodePair(tongliang, suining, tmp_path)


async def test_outage_longer_than_the_dead_letter_age_then_redrive(short_lived: NodePair) -> None:
    pair = short_lived
    pair.tongliang.route(SUINING, NOWHERE)
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        ids = [
            await send_local(stub, record(COMPLAINT, complaint_number=f"TS-DL-{n}"))
            for n in range(3)
        ]

        async def all_dead() -> bool:
            dead = await pair.tongliang.store.outbound_in_state(OutboundState.DEAD_LETTERED, 10)
            return {r.message_id for r in dead} == set(ids)

        await eventually(all_dead, what="three dead letters")
        dead = await pair.tongliang.store.outbound_in_state(OutboundState.DEAD_LETTERED, 10)
        assert all(r.last_error for r in dead)
        state = await stub.GetMessage(lpb.GetMessageRequest(message_id=ids[0]))
        assert state.state == lpb.MESSAGE_STATE_DEAD_LETTERED

        # The partner comes back; an operator re-drives each dead letter once.
        pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
        for message_id in ids:
            assert await pair.tongliang.outbound.redrive(message_id, operator="ops-zhang")
        for message_id in ids:
            await wait_delivered(stub, message_id)
        # Not dead now: the lifecycle has no re-drive from delivered.
        assert not await pair.tongliang.outbound.redrive(ids[0], operator="ops-zhang")
    assert len(await pair.suining.store.undelivered_inbound(0, 100)) == 3


async def test_a_redriven_dead_letter_older_than_the_age_is_delivered_once_the_partner_is_back(
    short_lived: NodePair,
) -> None:
    pair = short_lived
    pair.tongliang.route(SUINING, NOWHERE)
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        message_id = await send_local(stub, record(COMPLAINT, complaint_number="TS-AGE"))

        async def dead() -> bool:
            row = await pair.tongliang.store.get_outbound(message_id)
            return row is not None and row.state is OutboundState.DEAD_LETTERED

        await eventually(dead, what="a dead letter")
        await asyncio.sleep(0.5)  # well past the 1.5 s dead-letter age by now
        # Re-driven while the partner is still away: it waits its turn again, with a
        # fresh age clock, instead of being dead-lettered again at once.
        assert await pair.tongliang.outbound.redrive(message_id, operator="ops-zhang")
        await asyncio.sleep(0.8)  # two expiry sweeps and several failed attempts
        row = await pair.tongliang.store.get_outbound(message_id)
        assert row is not None and row.state is OutboundState.PENDING, row
        pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
        await wait_delivered(stub, message_id)
    assert len(await pair.suining.store.undelivered_inbound(0, 10)) == 1


async def test_redriving_a_message_the_partner_already_has_delivers_it_once(
    pair: NodePair, tongliang_local: object
) -> None:
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        message_id = await send_local(stub, record(COMPLAINT))
        await wait_delivered(stub, message_id)
        # As if the receipt had been lost and the record dead-lettered after all.
        with sqlite3.connect(pair.tongliang.config.node.database) as conn:
            conn.execute(
                "UPDATE outbox SET state = 'dead_lettered' WHERE message_id = ?", (message_id,)
            )
        assert await pair.tongliang.outbound.redrive(message_id, operator="ops-li")
        await wait_delivered(stub, message_id)
    rows = await pair.suining.store.undelivered_inbound(0, 100)
    assert [r.message_id for r in rows] == [message_id]


async def test_a_down_partner_is_probed_with_one_record_not_hammered(pair: NodePair) -> None:
    pair.tongliang.route(SUINING, NOWHERE)
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        for n in range(20):
            await send_local(stub, record(COMPLAINT, complaint_number=f"TS-PROBE-{n}"))

        def health() -> PartnerHealth:
            return pair.tongliang.partner_health()[SUINING]

        async def probed_several_times() -> bool:
            return health().consecutive_failures >= 5

        await eventually(probed_several_times, what="repeated probes")
        rows = await pair.tongliang.store.due_outbound(SUINING, _far_future(), 100)
        rounds = health().consecutive_failures
        # At most one full round; after that, a single record per probe, not twenty.
        assert sum(r.attempts for r in rows) <= 20 + rounds
        assert health().reachable is False

        pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")

        async def drained() -> bool:
            return not await pair.tongliang.store.due_outbound(SUINING, _far_future(), 100)

        await eventually(drained, what="the backlog to drain")
    assert len(await pair.suining.store.undelivered_inbound(0, 100)) == 20


async def test_feedback_never_overtakes_earlier_feedback(pair: NodePair) -> None:
    complaint = record(COMPLAINT)
    async with pair.local(pair.tongliang) as tl, pair.local(pair.suining) as sn:
        tongliang, suining = local_stub(tl), local_stub(sn)
        await wait_delivered(tongliang, await send_local(tongliang, complaint))
        pair.suining.route(TONGLIANG, NOWHERE)  # Tongliang unreachable while Suining works
        steps = ["complaint_accepted", "complaint_mediating", "complaint_mediated"]
        ids = [await send_local(suining, feedback_for(complaint, step)) for step in steps]
        await asyncio.sleep(0.3)
        pair.suining.route(TONGLIANG, f"127.0.0.1:{pair.tongliang.peer_port}")
        for message_id in ids:
            await wait_delivered(suining, message_id)
        items = await receive(tongliang, 3)
    statuses = []
    for item in items:
        fb = record_from_proto(item.record)
        assert isinstance(fb, Feedback)
        statuses.append(fb.status.value)
    assert statuses == steps


async def test_over_the_call_limit_is_resource_exhausted_with_retry_info(
    pki: PkiLayout, tmp_path: Path
) -> None:
    limits = {"calls_per_second": 5, "burst": 2, "max_concurrent_calls": 4}
    config = node_config(pki, TONGLIANG, SUINING, tmp_path, limits=limits)
    async with GatewayNode(config) as node, peer_channel(pki, SUINING, node.peer_port) as channel:
        stub = exchange_stub(channel)
        signer = signer_for(pki, SUINING)
        envelopes = [
            sealed(signer, record(COMPLAINT, complaint_number=f"TS-RL-{n}")) for n in range(4)
        ]
        results = await asyncio.gather(
            *(submit(stub, e) for e in envelopes), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(refused) >= 2
        error = refused[0]
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rpc_status.from_call(error)
        assert status is not None
        delays = []
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                delays.append(info.retry_delay.ToMilliseconds())
        assert delays and 0 < delays[0] <= 1000
        # After the advertised delay the same partner is served again.
        await asyncio.sleep(delays[0] / 1000 + 0.05)
        receipt = await submit(stub, sealed(signer, record(COMPLAINT, complaint_number="TS-RL-X")))
        assert receipt.body


async def test_the_sender_honours_the_retry_delay_and_delivers_everything(
    pki: PkiLayout, tmp_path: Path
) -> None:
    limits = {"calls_per_second": 20, "burst": 1, "max_concurrent_calls": 1}
    tongliang = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path))
    suining = GatewayNode(node_config(pki, SUINING, TONGLIANG, tmp_path, limits=limits))
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{tongliang.local_port}") as channel:
            stub = local_stub(channel)
            ids = [
                await send_local(stub, record(COMPLAINT, complaint_number=f"TS-P-{n}"))
                for n in range(30)
            ]
            for message_id in ids:
                await wait_delivered(stub, message_id)
        assert len(await suining.store.undelivered_inbound(0, 100)) == 30


def _far_future() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
