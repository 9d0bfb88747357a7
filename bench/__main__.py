"""``python -m bench`` (``make bench``): baseline and node throughput in one run, as a ratio.

Steps, each server in its own process and each load client in another:

1. a development PKI, the receiving node's and the partner's configuration in a
   temporary directory;
2. the bare echo server (:mod:`bench.echo_server`) and its load client;
3. the receiving node (``chuanyu-gateway serve``) on a fresh SQLite store, and the
   partner's load client (:mod:`bench.load`) submitting signed envelopes.

Prints a table and the ratio node/baseline, writes ``.bench/results.json``, and
exits 1 when any call failed or any answer was not a valid receipt. Every child
process is stopped on the way out, whatever happened.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from bench.processes import BenchError, ChildProcesses, python_module
from bench.report import format_table, ratios, write_json
from bench.workload import sealed_envelopes, submit_requests
from gateway.config import load_config
from gateway.errors import GatewayError
from gateway.node.node import load_identity
from gateway.pki import PkiLayout, init_pki

__all__ = ["main"]

RECEIVER = "500151"  # Tongliang runs the node under test
PARTNER = "510900"  # Suining is the load client
# The workload is consumer complaints, which cross under the consumer-protection agreement.
AGREEMENT = "SUI-TONG-CP-2024"
AGREEMENTS = Path(__file__).resolve().parent.parent / "agreements"
_READY_TIMEOUT = 30.0
_TABLE_ORDER = [
    ("baseline", "unary"),
    ("node", "unary"),
    ("baseline", "stream"),
    ("node", "stream"),
]


def _toml_string(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string here


def _write_config(directory: Path, layout: PkiLayout, bureau: str, partner: str) -> Path:
    paths = layout.bureau(bureau)
    text = f"""\
[node]
bureau = {_toml_string(bureau)}
database = {_toml_string(directory / f"{bureau}.db")}

[tls]
ca = {_toml_string(layout.ca_cert)}
cert = {_toml_string(paths.tls_cert)}
key = {_toml_string(paths.tls_key)}

[signing]
cert = {_toml_string(paths.signing_cert)}
key = {_toml_string(paths.signing_key)}

[listen]
peer = "127.0.0.1:0"
local = "127.0.0.1:0"

[logging]
file = {_toml_string(directory / f"{bureau}.log")}
level = "WARNING"

[agreements]
directory = {_toml_string(AGREEMENTS)}

[[partners]]
bureau = {_toml_string(partner)}
address = "127.0.0.1:1"
agreement = {_toml_string(AGREEMENT)}
"""
    path = directory / f"{bureau}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _request_size(partner_config: Path) -> int:
    """The size of the node workload's serialised SubmitRequest."""
    identity = load_identity(load_config(partner_config))
    envelopes = sealed_envelopes(
        identity.signer,
        receiver=RECEIVER,
        agreement_id=AGREEMENT,
        numbers=[0],
        created_at=dt.datetime.now(dt.UTC),
    )
    return len(submit_requests(envelopes)[0])


def _gateway_command() -> list[str]:
    script = Path(sys.executable).parent / "chuanyu-gateway"
    if script.is_file():
        return [str(script)]
    found = shutil.which("chuanyu-gateway")
    if found is None:
        raise BenchError("chuanyu-gateway is not installed (run `make install`)")
    return [found]


def _load_results(lines: Sequence[str]) -> list[dict[str, Any]]:
    return [
        json.loads(line.removeprefix("RESULT ")) for line in lines if line.startswith("RESULT ")
    ]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="node throughput against a bare gRPC baseline"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few hundred calls per phase: checks the harness"
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per phase")
    parser.add_argument("--calls", type=int, default=0, help="timed calls per phase (cap)")
    parser.add_argument("--warmup", type=int, default=0, help="untimed calls per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="unary calls in flight")
    parser.add_argument("--window", type=int, default=64, help="bulk-stream window")
    parser.add_argument("--no-stream", action="store_true", help="skip the bulk-stream phases")
    parser.add_argument(
        "--out", type=Path, default=Path(".bench/results.json"), help="JSON results file"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (PKI, database, logs)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 0.0
        args.calls = args.calls or 200
        args.warmup = args.warmup or 20
    return args


def _client_args(
    args: argparse.Namespace, target: str, config: Path, pid: int, *, cap: int
) -> list[str]:
    # --seconds usually ends a phase first; the cap bounds the requests built beforehand.
    calls = args.calls or cap
    return [
        *("--target", target, "--config", str(config), "--server-pid", str(pid)),
        *("--concurrency", str(args.concurrency), "--window", str(args.window)),
        *("--seconds", str(args.seconds), "--warmup", str(args.warmup or 500)),
        *("--max-calls", str(calls), "--stream-max", str(calls)),
        *("--receiver", RECEIVER, "--agreement", AGREEMENT),
    ]


def run(args: argparse.Namespace, workdir: Path) -> int:
    started = time.monotonic()
    layout = init_pki(workdir / "pki", [RECEIVER, PARTNER])
    receiver_config = _write_config(workdir, layout, RECEIVER, PARTNER)
    partner_config = _write_config(workdir, layout, PARTNER, RECEIVER)
    size = _request_size(partner_config)
    results: list[dict[str, Any]] = []
    stream = [] if args.no_stream else ["--stream"]
    with ChildProcesses(workdir) as children:
        echo = children.start(
            "echo-server", python_module("bench.echo_server", "--config", str(receiver_config))
        )
        port = echo.wait_for_line(r"echo ready on port (\d+)", _READY_TIMEOUT).group(1)
        client = children.start(
            "baseline-client",
            python_module(
                "bench.load",
                "baseline",
                *_client_args(args, f"127.0.0.1:{port}", partner_config, echo.pid, cap=60_000),
                "--payload-size",
                str(size),
                *stream,
            ),
        )
        results += _collect(client.output_lines(timeout=120), client.name, client.stderr_tail())
        children.stop(echo)

        node = children.start(
            "node-server",
            [*_gateway_command(), "serve", "--config", str(receiver_config), "--grace", "2"],
        )
        port = node.wait_for_line(r"partners on port (\d+)", _READY_TIMEOUT).group(1)
        client = children.start(
            "node-client",
            python_module(
                "bench.load",
                "node",
                *_client_args(args, f"127.0.0.1:{port}", partner_config, node.pid, cap=15_000),
                *stream,
            ),
        )
        results += _collect(client.output_lines(timeout=180), client.name, client.stderr_tail())
        children.stop(node)

    results.sort(key=lambda r: _TABLE_ORDER.index((r["target"], r["phase"])))
    cores = os.cpu_count() or 0
    print(format_table(results, size, cores))
    failures = sum(int(r["failures"]) for r in results)
    document = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": cores,
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "platform": platform.platform(),
        },
        "settings": {
            "request_bytes": size,
            "concurrency": args.concurrency,
            "window": args.window,
            "seconds": args.seconds,
            "calls": args.calls,
            "quick": args.quick,
        },
        "results": results,
        "ratios": ratios(results),
        "failures": failures,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    write_json(args.out, document)
    print(f"\nresults written to {args.out} (run took {document['wall_seconds']} s)")
    if failures:
        print(
            f"bench: {failures} call(s) failed or were not answered with a receipt", file=sys.stderr
        )
        return 1
    return 0


def _collect(lines: Sequence[str], name: str, stderr_tail: str) -> list[dict[str, Any]]:
    results = _load_results(lines)
    if not results:
        raise BenchError(f"{name} printed no results{stderr_tail}")
    if stderr_tail:
        print(f"{name} said:{stderr_tail}", file=sys.stderr)
    return results


def _exit_on_sigterm(signum: int, frame: object) -> None:
    print("bench: terminated; stopping child processes", file=sys.stderr)
    raise SystemExit(128 + signum)  # unwinds through ChildProcesses, which stops every child


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="chuanyu-bench-"))
    try:
        return run(args, workdir)
    except (BenchError, GatewayError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
