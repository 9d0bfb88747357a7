"""Fixtures for the console tests: a real PKI, two real nodes with consoles, operators."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_support import SUINING, TONGLIANG, ConsolePair, add_operators, node_config

from gateway.app import build_node
from gateway.node import GatewayNode
from gateway.pki import PkiLayout, init_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_pki(tmp_path_factory.mktemp("pki"), [TONGLIANG, SUINING])


async def start_pair(
    pki: PkiLayout, workdir: Path, *, route_tongliang: bool = True, max_attempts: int = 10_000
) -> tuple[GatewayNode, GatewayNode, str]:
    token = secrets.token_urlsafe(32)
    token_file = workdir / "metrics.token"
    token_file.write_text(token + "\n", encoding="utf-8")
    console = {
        "listen": "127.0.0.1:0",
        "metrics_token_file": str(token_file),
        # Plain HTTP on loopback in tests; Suining keeps the production default (Secure).
        "secure_cookies": False,
    }
    tongliang = build_node(
        node_config(
            pki,
            TONGLIANG,
            SUINING,
            workdir,
            console=console,
            retry={"max_attempts": max_attempts},
        )
    )
    suining = build_node(
        node_config(pki, SUINING, TONGLIANG, workdir, console={"listen": "127.0.0.1:0"})
    )
    return tongliang, suining, token


@pytest.fixture
async def console_pair(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[ConsolePair]:
    tongliang, suining, token = await start_pair(pki, tmp_path)
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        accounts = await add_operators(tongliang)
        yield ConsolePair(tongliang, suining, tmp_path, accounts, token)


@pytest.fixture
async def dead_letter_pair(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[ConsolePair]:
    """Tongliang gives up after one attempt and is not routed to Suining (yet)."""
    tongliang, suining, token = await start_pair(pki, tmp_path, max_attempts=1)
    async with tongliang, suining:
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        accounts = await add_operators(tongliang)
        yield ConsolePair(tongliang, suining, tmp_path, accounts, token)
