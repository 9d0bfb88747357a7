"""What a composition root uses: surfaces attached to a node, and partner health."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from exchange_support import (
    COMPLAINT,
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
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.node import GatewayNode
from gateway.node.partner import PartnerHealth
from gateway.pki import PkiLayout

pytestmark = pytest.mark.e2e

NOWHERE = "127.0.0.1:1"


class _Recorder:
    """A surface that checks, as it starts and stops, that the node's servers answer."""

    def __init__(self, node: GatewayNode, name: str, calls: list[str]) -> None:
        self.node, self.name, self.calls = node, name, calls

    async def _health(self) -> str:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.node.local_port}") as channel:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=3
            )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def start(self) -> None:
        self.calls.append(f"start {self.name}: {await self._health()}")

    async def stop(self) -> None:
        # The server still answers (it stops after every surface), saying it is leaving.
        self.calls.append(f"stop {self.name}: {await self._health()}")


async def test_surfaces_start_after_the_servers_and_stop_first(
    pki: PkiLayout, tmp_path: Path
) -> None:
    node = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path))
    calls: list[str] = []
    node.attach(_Recorder(node, "a", calls))
    node.attach(_Recorder(node, "b", calls))
    async with node:
        calls.append("running")
    assert calls == [
        "start a: SERVING",
        "start b: SERVING",
        "running",
        "stop b: NOT_SERVING",
        "stop a: NOT_SERVING",
    ]


async def test_partner_health_follows_every_call(pair: NodePair) -> None:
    def health() -> PartnerHealth:
        return pair.tongliang.partner_health()[SUINING]

    assert set(pair.tongliang.partner_health()) == {SUINING}
    assert (health().reachable, health().checked_at) == (None, None)
    assert health().bureau == SUINING and health().address.endswith(f":{pair.suining.peer_port}")
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        await wait_delivered(stub, await send_local(stub, record(COMPLAINT)))
        assert health().reachable is True and health().error == ""
        assert health().checked_at is not None and health().consecutive_failures == 0

        pair.tongliang.route(SUINING, NOWHERE)
        await send_local(stub, record(COMPLAINT, complaint_number="TS-HEALTH-2"))

        async def unreachable() -> bool:
            return health().reachable is False

        await eventually(unreachable, what="the partner to be seen unreachable")
        seen = health()
        assert "UNAVAILABLE" in seen.error and seen.consecutive_failures >= 1
        assert seen.next_attempt_at is not None and seen.last_failure_at is not None
        assert seen.address == NOWHERE


async def test_probing_partners_is_a_standard_health_check(pair: NodePair) -> None:
    probed = await pair.tongliang.probe_partners()
    assert probed[SUINING].reachable is True and probed[SUINING].error == ""
    assert pair.tongliang.partner_health()[SUINING] == probed[SUINING]

    pair.tongliang.route(SUINING, NOWHERE)
    probed = await pair.tongliang.probe_partners()
    assert probed[SUINING].reachable is False
    assert probed[SUINING].error.startswith("UNAVAILABLE")
    # A probe reports; it does not open the circuit that holds deliveries back.
    assert probed[SUINING].consecutive_failures == 0
