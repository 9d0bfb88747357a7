"""Fixtures for the console tests: a real PKI, two real nodes with consoles, operators.

Every console test runs on both store engines: SQLite files, and PostgreSQL schemas made
for the test in the database named by ``CHUANYU_TEST_PG_DSN`` and dropped after it.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from console_support import SUINING, TONGLIANG, ConsolePair, add_operators, node_config

from gateway.app import build_node
from gateway.node import GatewayNode
from gateway.pki import PkiLayout, init_pki

PG_DSN = os.environ.get("CHUANYU_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
Storage = dict[str, dict[str, Any]]  # bureau -> its [storage] table


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    if request.param == "sqlite":
        yield {TONGLIANG: {}, SUINING: {}}
        return
    tag = uuid.uuid4().hex[:12]
    schemas = {TONGLIANG: f"console_{tag}_tl", SUINING: f"console_{tag}_sn"}
    admin = await asyncpg.connect(PG_DSN, timeout=10)  # fails loudly without PostgreSQL
    try:
        yield {
            bureau: {"engine": "postgresql", "dsn": PG_DSN, "schema": schema}
            for bureau, schema in schemas.items()
        }
    finally:
        for schema in schemas.values():
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_pki(tmp_path_factory.mktemp("pki"), [TONGLIANG, SUINING])


async def start_pair(
    pki: PkiLayout,
    workdir: Path,
    storage: Storage,
    *,
    max_attempts: int = 10_000,
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
            storage=storage[TONGLIANG],
        )
    )
    suining = build_node(
        node_config(
            pki,
            SUINING,
            TONGLIANG,
            workdir,
            console={"listen": "127.0.0.1:0"},
            storage=storage[SUINING],
        )
    )
    return tongliang, suining, token


@pytest.fixture
async def console_pair(
    pki: PkiLayout, tmp_path: Path, storage: Storage
) -> AsyncIterator[ConsolePair]:
    tongliang, suining, token = await start_pair(pki, tmp_path, storage)
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        accounts = await add_operators(tongliang)
        yield ConsolePair(tongliang, suining, tmp_path, accounts, token)


@pytest.fixture
async def dead_letter_pair(
    pki: PkiLayout, tmp_path: Path, storage: Storage
) -> AsyncIterator[ConsolePair]:
    """Tongliang gives up after one attempt and is not routed to Suining (yet)."""
    tongliang, suining, token = await start_pair(pki, tmp_path, storage, max_attempts=1)
    async with tongliang, suining:
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        accounts = await add_operators(tongliang)
        yield ConsolePair(tongliang, suining, tmp_path, accounts, token)
