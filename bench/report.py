"""The bench's results: a small table for people and a JSON file for tools."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_table", "ratios", "write_json"]

_LABELS = {
    ("baseline", "unary"): "baseline: bare grpc.aio mTLS echo, unary",
    ("node", "unary"): "node: inbound signed Submit",
    ("baseline", "stream"): "baseline: bare grpc.aio mTLS echo, bidi stream",
    ("node", "stream"): "node: SubmitStream (bulk)",
}


def ratios(results: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """node/baseline rate for each phase both targets measured."""
    rates = {(r["target"], r["phase"]): float(r["rate"]) for r in results}
    out: dict[str, float] = {}
    for phase in ("unary", "stream"):
        base, node = rates.get(("baseline", phase)), rates.get(("node", phase))
        if base and node is not None:
            out[phase] = round(node / base, 3)
    return out


def _cpu_note(result: Mapping[str, Any]) -> str:
    parts = [f"client {result['client_cpu_cores']:.2f} cores"]
    if result.get("server_cpu_cores") is not None:
        parts.insert(0, f"server {result['server_cpu_cores']:.2f} cores")
    if result.get("server_cpu_us_per_call") is not None:
        parts.insert(1, f"{result['server_cpu_us_per_call']:.0f} µs/call")
    return ", ".join(parts)


def format_table(results: Sequence[Mapping[str, Any]], request_bytes: int, cores: int) -> str:
    header = (
        f"{'measurement':<48} {'in flight':>9} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ok':>7} {'failed':>6}  CPU"
    )
    lines = [
        f"requests of {request_bytes} bytes (a serialised SubmitRequest), {cores} cores, "
        "client and server in separate processes on loopback",
        "",
        header,
        "-" * len(header),
    ]
    for result in results:
        label = _LABELS.get((result["target"], result["phase"]), result["phase"])
        lines.append(
            f"{label:<48} {result['in_flight']:>9} {result['rate']:>9.0f} "
            f"{result['p50_ms']:>7.2f} {result['p99_ms']:>7.2f} {result['ok']:>7} "
            f"{result['failures']:>6}  {_cpu_note(result)}"
        )
    lines.append("")
    for phase, ratio in ratios(results).items():
        lines.append(f"ratio node/baseline ({phase}): {ratio:.3f}")
    return "\n".join(lines)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
