"""``python -m bench --quick``: the harness runs end to end and reports both rates and a ratio.

Speed is not asserted: the point is that the harness, its servers and its load
clients work together, that every call got a receipt, and that nothing is left running.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
_RATE_ROW = r"^{label}\s+16\s+(\d+)\s"


def _run_quick(out: Path) -> subprocess.CompletedProcess[str]:
    # Own session: on a hang, kill the harness and every server it started at once.
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"bench --quick did not finish within 100 s\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_quick_bench_prints_both_rates_and_a_ratio(tmp_path: Path) -> None:
    out = tmp_path / "results.json"

    result = _run_quick(out)

    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    baseline = re.search(
        _RATE_ROW.format(label=r"baseline: bare grpc\.aio mTLS echo, unary"),
        result.stdout,
        re.MULTILINE,
    )
    node = re.search(
        _RATE_ROW.format(label=r"node: inbound signed Submit"), result.stdout, re.MULTILINE
    )
    assert baseline is not None, result.stdout
    assert node is not None, result.stdout
    assert int(baseline.group(1)) > 0
    assert int(node.group(1)) > 0
    assert re.search(r"^ratio node/baseline \(unary\): \d+\.\d+$", result.stdout, re.MULTILINE)

    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["failures"] == 0
    assert set(document["ratios"]) >= {"unary"}
    node_unary = next(
        r for r in document["results"] if (r["target"], r["phase"]) == ("node", "unary")
    )
    assert node_unary["ok"] == node_unary["calls"] == 200
    assert node_unary["receipts_verified"] > 0
