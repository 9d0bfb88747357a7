"""Shared paths and helpers of the adapter tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.adapter import EncodeContext
from gateway.clock import BEIJING

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return ROOT / "adapters" / "samples"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return Path(__file__).parent / "golden"


@pytest.fixture
def tongliang_header() -> EncodeContext:
    return EncodeContext(
        sender_bureau="500151",
        batch_id="TL202611270001",
        sent_at=dt.datetime(2026, 11, 27, 10, 0, tzinfo=BEIJING),
    )
