"""``make demo`` end to end: two node processes, real certificates, real local files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

# Personal information in the demo's local files; none of it may reach a node log.
PERSONAL = ("13800138000", "13900139000", "11010519491231002X", "李四", "𠮷祥")


def test_demo_exchanges_every_record_type_and_leaves_a_verifiable_workdir(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "demo completed" in output
    assert "8 signed receipts verified against the cooperation CA" in output
    assert "exit codes 0, 0" in output
    for kind in ("business_registration", "consumer_complaint", "enforcement_referral"):
        assert output.count(f"→ {kind}") == 2, kind
    assert output.count("answering") == 2  # two feedback records, each correlated
    # Each node's console address and a log-in for it are given.
    assert output.count("user demo, password") == 2
    assert (workdir / "console-logins.txt").stat().st_mode & 0o777 == 0o600

    # Each side's inbound folder holds four files in its own format.
    assert len(list((workdir / "exchange" / "510900" / "inbound").glob("*.xml"))) == 4
    assert len(list((workdir / "exchange" / "500151" / "inbound").glob("*.json"))) == 4
    # The work directory is left for inspection, and the logs verify from the CLI.
    for bureau in ("500151", "510900"):
        verify = subprocess.run(
            [sys.executable, "-m", "gateway", "log", "verify", "--db",
             str(workdir / "data" / f"{bureau}.db")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert verify.returncode == 0 and "intact" in verify.stdout
        log = (workdir / "logs" / f"{bureau}.log").read_text(encoding="utf-8")
        assert "ready" in log or "serving" in log
        for value in PERSONAL:
            assert value not in log, f"{value!r} unmasked in the {bureau} node log"
