"""The store contract runs once per engine: a fresh SQLite file, or a fresh PostgreSQL schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_support import Harness, postgres_harness, sqlite_harness


@pytest.fixture(params=["sqlite", "postgresql"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    factory = sqlite_harness if request.param == "sqlite" else postgres_harness
    async with factory(tmp_path) as h:
        yield h


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Harness]:
    """PostgreSQL only: replicas, claims and leases."""
    async with postgres_harness(tmp_path) as h:
        yield h
