"""Storage faults: disk full, database unwritable, database locked.

The Tongliang node keeps its database on a small ext4 filesystem of its own (a
loop-mounted image, so the test can fill it and make files immutable). Each fault
must give callers UNAVAILABLE, flip gRPC health to NOT_SERVING, lose nothing that
was acknowledged, and clear by itself when the fault does.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from exchange_support import (
    COMPLAINT,
    SUINING,
    TONGLIANG,
    NodePair,
    eventually,
    local_stub,
    node_config,
    record,
    send_local,
    wait_delivered,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.node import GatewayNode
from gateway.pki import PkiLayout

pytestmark = pytest.mark.e2e


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr.strip()}"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB ext4 filesystem mounted for this test (needs root, as CI has)."""
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    _run("truncate", "-s", "16M", str(image))
    _run("mkfs.ext4", "-q", "-F", str(image))
    _run("mount", "-o", "loop", str(image), str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["chattr", "-R", "-i", str(mount)], capture_output=True, check=False)
        subprocess.run(["umount", str(mount)], capture_output=True, check=False)


@pytest.fixture
async def on_small_disk(
    pki: PkiLayout, tmp_path: Path, small_disk: Path
) -> AsyncIterator[NodePair]:
    storage = {"busy_timeout_ms": 200, "probe_seconds": 0.1}
    config = node_config(pki, TONGLIANG, SUINING, small_disk, storage=storage)
    tongliang = GatewayNode(config)
    suining = GatewayNode(node_config(pki, SUINING, TONGLIANG, tmp_path))
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield NodePair(tongliang, suining, tmp_path)


async def _health(node: GatewayNode) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{node.local_port}") as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        return int(response.status)


async def _send_until_refused(stub: object, prefix: str) -> int:
    """Keep sending until the store refuses; returns how many were accepted first."""
    for n in range(500):
        try:
            await send_local(stub, record(COMPLAINT, complaint_number=f"{prefix}-{n}"))  # type: ignore[arg-type]
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
            assert "STORE_UNAVAILABLE" in (exc.details() or "")
            return n
    raise AssertionError("the store never refused a write")


async def _fault_and_recovery(
    pair: NodePair, fault: contextlib.AbstractContextManager[None]
) -> None:
    node = pair.tongliang
    async with pair.local(node) as channel:
        stub = local_stub(channel)
        before = await send_local(stub, record(COMPLAINT, complaint_number="TS-BEFORE"))
        await wait_delivered(stub, before)
        with fault:
            accepted = await _send_until_refused(stub, "TS-DURING")

            async def not_serving() -> bool:
                return await _health(node) == int(health_pb2.HealthCheckResponse.NOT_SERVING)

            await eventually(not_serving, what="health NOT_SERVING")
        # The fault is gone: the node comes back by itself.

        async def serving() -> bool:
            return await _health(node) == int(health_pb2.HealthCheckResponse.SERVING)

        await eventually(serving, what="health SERVING again")
        after = await send_local(stub, record(COMPLAINT, complaint_number="TS-AFTER"))
        await wait_delivered(stub, after)
        # Nothing acknowledged was lost: every accepted record reached the partner.
        rows = await pair.suining.store.undelivered_inbound(0, 1000)
        keys = {r.record_key for r in rows}
        assert {"TS-BEFORE", "TS-AFTER"} <= keys
        assert {f"TS-DURING-{n}" for n in range(accepted)} <= keys


async def test_disk_full(on_small_disk: NodePair) -> None:
    disk = on_small_disk.tongliang.config.node.database.parent

    @contextlib.contextmanager
    def full() -> Iterator[None]:
        filler = disk / "filler"
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False
        )
        try:
            yield
        finally:
            filler.unlink()

    await _fault_and_recovery(on_small_disk, full())


async def test_database_file_unwritable(on_small_disk: NodePair) -> None:
    database = on_small_disk.tongliang.config.node.database

    @contextlib.contextmanager
    def immutable() -> Iterator[None]:
        files = [str(p) for p in database.parent.glob(database.name + "*")]
        _run("chattr", "+i", *files)
        try:
            yield
        finally:
            _run("chattr", "-i", *files)

    await _fault_and_recovery(on_small_disk, immutable())


async def test_database_locked_by_another_process(on_small_disk: NodePair) -> None:
    database = on_small_disk.tongliang.config.node.database

    @contextlib.contextmanager
    def locked() -> Iterator[None]:
        conn = sqlite3.connect(database, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()

    await _fault_and_recovery(on_small_disk, locked())
