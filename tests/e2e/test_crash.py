"""Crash safety: SIGKILL real node processes at random moments; nothing lost, nothing doubled.

Runs ``tools/crashkit.py`` in-process: two ``chuanyu-gateway serve`` processes exchange a few
hundred Tongliang records (and Suining's feedback on them) through their local folders while
the harness kills a random node at random moments and restarts it. The kill plan comes from a
seed drawn from the clock, so every run tries other moments; a failure prints the seed, and
``CRASHKIT_SEED=<seed>`` replays the same plan.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KILLS = 6


def _crashkit() -> ModuleType:
    if "crashkit" in sys.modules:
        return sys.modules["crashkit"]
    spec = importlib.util.spec_from_file_location("crashkit", ROOT / "tools" / "crashkit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crashkit"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(110)
def test_random_sigkills_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    crashkit = _crashkit()
    seed = int(os.environ.get("CRASHKIT_SEED") or time.time_ns() % 2**32)
    settings = crashkit.CrashSettings(
        records=400,
        per_file=40,
        kills=KILLS,
        seed=seed,
        kill_gap=(0.3, 2.0),
        down_time=(0.0, 0.8),
        drop_every=0.8,
        timeout=60.0,
        stop_timeout=20.0,
    )
    progress: list[str] = []
    report = crashkit.run_crash(settings, tmp_path / "crash", say=progress.append)
    context = "\n".join(
        [
            f"crash run with seed {seed}; replay: CRASHKIT_SEED={seed} "
            "pytest tests/e2e/test_crash.py",
            *progress,
            report.details(),
        ]
    )
    print(f"seed {seed}: {report.summary()} in {report.seconds:.1f} s")  # shown with -rP
    assert report.kills == KILLS, context
    assert report.lost == [], context
    assert report.duplicated == [], context
    assert report.problems == [], context  # chains, receipts, backlogs, exit codes, PI in logs
    assert report.arrived == settings.records, context
    assert report.feedback_sent > 0 and report.feedback_arrived == report.feedback_sent, context
    assert report.ok, context


def test_the_harness_notices_a_lost_and_a_doubled_record(tmp_path: Path) -> None:
    """No kills; then one inbound file is removed and another copied: both must be reported."""
    crashkit = _crashkit()
    settings = crashkit.CrashSettings(records=12, per_file=6, kills=0, seed=1, timeout=60.0)
    planted: dict[str, str] = {}

    def plant(workdir: Path) -> None:
        inbound = workdir / "exchange" / "510900" / "inbound"
        first, second = sorted(p for p in inbound.iterdir() if p.is_file())[:2]
        first.unlink()
        copy = second.with_name(second.stem + "x" + second.suffix)
        copy.write_bytes(second.read_bytes())
        planted.update(lost=first.name, doubled=second.name)

    report = crashkit.run_crash(
        settings, tmp_path / "crash", say=lambda _: None, before_checks=plant
    )
    context = report.details()
    assert planted, context
    assert report.summary().startswith(f"delivered {report.delivered}, lost "), context
    assert not report.ok, context
    assert any("no file in Suining's inbound folder" in item for item in report.lost), context
    assert any("has no inbound file" in item for item in report.lost), context
    assert any("2 files at Suining" in item for item in report.duplicated), context
    assert any("not in inbox" in item for item in report.duplicated), context
    assert report.problems == [], context
