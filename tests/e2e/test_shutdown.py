"""SIGTERM and client deadlines: no new work, in-flight commits finish, nothing half-done."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from exchange_support import AGREEMENTS, COMPLAINT, SUINING, TONGLIANG, local_stub, record

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from gateway.codec import record_to_proto
from gateway.pki import PkiLayout

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_config(pki: PkiLayout, workdir: Path, local_port: int) -> Path:
    paths = pki.bureau(TONGLIANG)
    config = workdir / "tongliang.toml"
    config.write_text(
        f"""[node]
bureau = "{TONGLIANG}"
database = "{workdir / "tongliang.db"}"

[tls]
ca = "{pki.ca_cert}"
cert = "{paths.tls_cert}"
key = "{paths.tls_key}"

[signing]
cert = "{paths.signing_cert}"
key = "{paths.signing_key}"

[listen]
peer = "127.0.0.1:{_free_port()}"
local = "127.0.0.1:{local_port}"

[agreements]
directory = "{AGREEMENTS}"

[logging]
file = "{workdir / "tongliang.log"}"

[[partners]]
bureau = "{SUINING}"
address = "127.0.0.1:1"
""",
        encoding="utf-8",
    )
    return config


async def test_sigterm_finishes_in_flight_sends_and_exits_within_the_grace_period(
    pki: PkiLayout, tmp_path: Path
) -> None:
    local_port = _free_port()
    config = _write_config(pki, tmp_path, local_port)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--grace", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        assert b"ready" in process.stdout.readline()
        accepted: list[str] = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{local_port}") as channel:
            stub = local_stub(channel)

            async def sender(worker: int) -> None:
                for n in range(10_000):
                    request = lpb.SendRequest(
                        record=record_to_proto(
                            record(COMPLAINT, complaint_number=f"TS-{worker}-{n}")
                        )
                    )
                    try:
                        response = await stub.Send(request, timeout=5)
                    except grpc.aio.AioRpcError:
                        return  # the node stopped taking work
                    accepted.append(response.message_id)

            senders = [asyncio.create_task(sender(w)) for w in range(8)]
            await asyncio.sleep(1.0)
            stopped_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await asyncio.gather(*senders)
            code = await asyncio.to_thread(process.wait, 15)
        assert code == 0
        assert time.monotonic() - stopped_at < 5 + 3  # within the grace period, plus start-up slack
        assert len(accepted) > 10
        # Every Send that was answered is durable in the outbox: nothing half-done.
        with sqlite3.connect(tmp_path / "tongliang.db") as conn:
            stored = {row[0] for row in conn.execute("SELECT message_id FROM outbox")}
        assert set(accepted) <= stored
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


async def test_a_send_cut_off_by_its_deadline_is_stored_once_or_not_at_all(
    pair: object, tongliang_local: object
) -> None:
    stub = tongliang_local
    request = lpb.SendRequest(
        record=record_to_proto(record(COMPLAINT)), idempotency_key="TL-2026-11-29#42"
    )
    outcomes = []
    for timeout in (0.0005, 0.001, 0.002, 0.005, 5.0):
        try:
            response = await stub.Send(request, timeout=timeout)  # type: ignore[attr-defined]
            outcomes.append(response.message_id)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # Retrying with the same key after a deadline never makes a second message.
    assert outcomes and len(set(outcomes)) == 1
    from exchange_support import NodePair

    assert isinstance(pair, NodePair)
    with sqlite3.connect(pair.tongliang.config.node.database) as conn:
        rows = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE idempotency_key = 'TL-2026-11-29#42'"
        ).fetchone()
    assert rows == (1,)
