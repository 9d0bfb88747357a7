"""Fixtures for end-to-end tests: a real PKI and two real nodes on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from exchange_support import CHENGDU, SUINING, TONGLIANG, NodePair, local_stub, node_config

from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.node import GatewayNode
from gateway.pki import PkiLayout, init_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    # Chengdu is a member of the cooperation PKI but not a partner of either node.
    return init_pki(tmp_path_factory.mktemp("pki"), [TONGLIANG, SUINING, CHENGDU])


@pytest.fixture(scope="session")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    """Another CA issuing certificates with the same bureau ids."""
    return init_pki(tmp_path_factory.mktemp("foreign-pki"), [TONGLIANG, SUINING])


@pytest.fixture
async def pair(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[NodePair]:
    tongliang = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path))
    suining = GatewayNode(node_config(pki, SUINING, TONGLIANG, tmp_path))
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield NodePair(tongliang, suining, tmp_path)


@pytest.fixture
async def tongliang_local(pair: NodePair) -> AsyncIterator[lgrpc.LocalServiceAsyncStub]:
    async with pair.local(pair.tongliang) as channel:
        yield local_stub(channel)


@pytest.fixture
async def suining_local(pair: NodePair) -> AsyncIterator[lgrpc.LocalServiceAsyncStub]:
    async with pair.local(pair.suining) as channel:
        yield local_stub(channel)
