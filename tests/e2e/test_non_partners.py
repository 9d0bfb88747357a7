"""Non-partners get nothing but a refusal, and cannot grow the chain or the node's memory.

Chengdu (510100) holds genuine cooperation-CA certificates but is no partner of
Tongliang: every service on the partner port refuses it once per call, before any
work, and a flood of its calls adds a bounded number of transfer-log entries whose
counts add up. A partner is held to its stream cap, and what a stream held is
given back when it ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from exchange_support import (
    CHENGDU,
    COMPLAINT,
    SUINING,
    TONGLIANG,
    NodePair,
    eventually,
    exchange_stub,
    node_config,
    peer_channel,
    reason_of,
    record,
    sealed,
    signer_for,
    submit,
)
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_status import rpc_status

from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from gateway.node import GatewayNode
from gateway.pki import PkiLayout
from gateway.store.sqlite import iter_log_file

STREAM_CAP = 4
LIMITS = {"rejection_log_seconds": 1, "max_streams_per_peer": STREAM_CAP}


@pytest.fixture
async def limited_pair(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[NodePair]:
    tongliang = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path, limits=LIMITS))
    suining = GatewayNode(node_config(pki, SUINING, TONGLIANG, tmp_path))
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield NodePair(tongliang, suining, tmp_path)


def _rejections(node: GatewayNode, peer: str) -> list[dict[str, object]]:
    return [
        json.loads(e.detail)
        for e in iter_log_file(node.config.node.database)
        if e.kind == "rejected" and e.peer == peer
    ]


def _refused_as_non_partner(error: grpc.aio.AioRpcError) -> bool:
    return (error.code(), reason_of(error)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PEER_NOT_PARTNER",
    )


async def test_every_service_refuses_a_non_partner_and_the_log_stays_small(
    limited_pair: NodePair, pki: PkiLayout
) -> None:
    node = limited_pair.tongliang
    before = len(list(iter_log_file(node.config.node.database)))
    chengdu = signer_for(pki, CHENGDU)
    calls = 1000
    async with peer_channel(pki, CHENGDU, node.peer_port) as channel:
        stub = exchange_stub(channel)
        envelope = sealed(chengdu, record(COMPLAINT))
        request = xpb.SubmitRequest(envelope=envelope)

        async def one() -> grpc.aio.AioRpcError:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Submit(request, timeout=30)
            return refused.value

        errors: list[grpc.aio.AioRpcError] = []
        for _ in range(calls // 100):
            errors += await asyncio.gather(*(one() for _ in range(100)))
        assert all(_refused_as_non_partner(e) for e in errors)

        # The refusal comes at the open, before the first envelope is even read.
        stream = stub.SubmitStream()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream.read()
        assert _refused_as_non_partner(refused.value)

        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert _refused_as_non_partner(refused.value)

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        listing = reflection.ServerReflectionInfo()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await listing.read()
        assert _refused_as_non_partner(refused.value)
    refusals = calls + 3

    async def counted() -> bool:
        logged = _rejections(node, CHENGDU)
        return sum(int(str(d.get("count", 1))) for d in logged) == refusals

    await eventually(counted, timeout=10, what="the refusals' counts in the transfer log")
    logged = _rejections(node, CHENGDU)
    assert {d["reason"] for d in logged} == {"PEER_NOT_PARTNER"}
    assert len(logged) <= 4
    assert len(list(iter_log_file(node.config.node.database))) - before == len(logged)

    # Partners are still served, health included.
    async with peer_channel(pki, SUINING, node.peer_port) as channel:
        await submit(exchange_stub(channel), sealed(signer_for(pki, SUINING), record(COMPLAINT)))
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_flood_of_a_partners_bad_envelopes_is_counted_not_logged_one_by_one(
    limited_pair: NodePair, pki: PkiLayout
) -> None:
    node = limited_pair.tongliang
    suining = signer_for(pki, SUINING)
    async with peer_channel(pki, SUINING, node.peer_port) as channel:
        stub = exchange_stub(channel)
        bad = sealed(suining, record(COMPLAINT), receiver=CHENGDU)
        stream = stub.SubmitStream(iter([xpb.SubmitStreamRequest(envelope=bad)] * 200))
        answers = [answer async for answer in stream]
    assert {a.rejection.reason for a in answers} == {"WRONG_RECEIVER"}

    async def counted() -> bool:
        logged = _rejections(node, SUINING)
        return sum(int(str(d.get("count", 1))) for d in logged) == 200

    await eventually(counted, timeout=10, what="the refusals' counts in the transfer log")
    assert len(_rejections(node, SUINING)) <= 4


def _idle_stream(
    channel: grpc.aio.Channel,
) -> grpc.aio.StreamStreamCall[xpb.SubmitStreamRequest, xpb.SubmitStreamResponse]:
    """A bulk stream that is opened and then sends nothing."""
    return exchange_stub(channel).SubmitStream()


async def test_a_partner_over_its_stream_cap_is_refused_and_streams_give_back_what_they_held(
    limited_pair: NodePair, pki: PkiLayout
) -> None:
    node = limited_pair.tongliang
    await asyncio.sleep(0.2)
    tasks_before = len(asyncio.all_tasks())
    async with peer_channel(pki, SUINING, node.peer_port) as channel:
        for _round in range(5):
            held = [_idle_stream(channel) for _ in range(STREAM_CAP)]

            async def all_open() -> bool:
                return node.limiter.streams(SUINING) == STREAM_CAP

            await eventually(all_open, timeout=10, what="the idle streams to open")
            extra = _idle_stream(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await extra.read()
            error = refused.value
            assert (error.code(), reason_of(error)) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "PEER_OVER_LIMIT",
            )
            status = rpc_status.from_call(error)
            assert status is not None
            retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
            assert retry

            # The node keeps serving the partner's unary calls meanwhile.
            await submit(
                exchange_stub(channel), sealed(signer_for(pki, SUINING), record(COMPLAINT))
            )
            for call in held:
                call.cancel()

            async def all_closed() -> bool:
                return node.limiter.streams(SUINING) == 0

            await eventually(all_closed, timeout=10, what="the idle streams to close")

    async def tasks_returned() -> bool:
        return len(asyncio.all_tasks()) <= tasks_before

    await eventually(tasks_returned, timeout=10, what="the streams' tasks to end")
