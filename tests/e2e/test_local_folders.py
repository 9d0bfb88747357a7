"""Local systems that exchange files: a watched outbound folder and an inbound folder."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from exchange_support import SUINING, TONGLIANG, eventually, node_config

from gateway.adapter import load_adapter
from gateway.node import GatewayNode
from gateway.pki import PkiLayout
from gateway.records import Record

pytestmark = pytest.mark.e2e

DEMO_DATA = Path(__file__).resolve().parents[2] / "gateway" / "demo_data"


@dataclass
class FolderPair:
    tongliang: GatewayNode
    suining: GatewayNode
    root: Path

    def outbound(self, bureau: str) -> Path:
        return self.root / bureau / "outbound"

    def inbound(self, bureau: str) -> Path:
        return self.root / bureau / "inbound"


@pytest.fixture(params=["whole", "streamed"])
async def folders(
    pki: PkiLayout, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[FolderPair]:
    """Both nodes with local folders; files read whole, or streamed record by record."""

    def config(bureau: str, partner: str, adapter: str) -> GatewayNode:
        files = {
            "adapter": adapter,
            "outbound": str(tmp_path / bureau / "outbound"),
            "inbound": str(tmp_path / bureau / "inbound"),
            "poll_seconds": 0.1,
            "stream_above_bytes": 0 if request.param == "streamed" else 8 * 1024 * 1024,
        }
        return GatewayNode(node_config(pki, bureau, partner, tmp_path, local_files=files))

    tongliang = config(TONGLIANG, SUINING, "tongliang")
    suining = config(SUINING, TONGLIANG, "suining")
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield FolderPair(tongliang, suining, tmp_path)


def _drop(folder: Path, name: str, data: bytes) -> None:
    """How a well-behaved local system hands over a file: write aside, then rename."""
    part = folder / (name + ".part")
    part.write_bytes(data)
    part.replace(folder / name)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


async def test_a_dropped_file_arrives_in_the_partners_format(folders: FolderPair) -> None:
    source = (DEMO_DATA / "tongliang-outbound.json").read_bytes()
    _drop(folders.outbound(TONGLIANG), "batch-001.json", source)

    async def arrived() -> bool:
        return len(_files(folders.inbound(SUINING))) == 3

    await eventually(arrived, what="three files in Suining's inbound folder")
    assert [p.name for p in _files(folders.outbound(TONGLIANG) / "done")] == ["batch-001.json"]
    suining, tongliang = load_adapter("suining"), load_adapter("tongliang")
    received: list[Record] = []
    for path in _files(folders.inbound(SUINING)):
        data = path.read_bytes()
        assert data.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
        received.extend(suining.decode(data).records)
    assert sorted(received, key=str) == sorted(tongliang.decode(source).records, key=str)


async def test_a_file_that_breaks_the_spec_is_refused_whole(folders: FolderPair) -> None:
    source = (DEMO_DATA / "tongliang-outbound.json").read_text(encoding="utf-8")
    broken = source.replace("92510903MA6AB7Q52D", "92510903MA6AB7Q52E", 1)
    _drop(folders.outbound(TONGLIANG), "batch-002.json", broken.encode())
    rejected = folders.outbound(TONGLIANG) / "rejected"

    async def refused() -> bool:
        return (rejected / "batch-002.json.error.txt").exists()

    await eventually(refused, what="the error report")
    report = (rejected / "batch-002.json.error.txt").read_text()
    assert "统一社会信用代码" in report and "nothing from this file was sent" in report
    assert (rejected / "batch-002.json").read_text(encoding="utf-8") == broken
    db = folders.tongliang.config.node.database
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
        # One refusal, one transfer-log entry naming the rule that broke.
        refusals = conn.execute(
            "SELECT detail FROM transfer_log WHERE kind = 'rejected_from_local'"
        ).fetchall()
    assert len(refusals) == 1 and "LOCAL_FILE_INVALID" in refusals[0][0]


async def test_redelivery_after_a_crash_writes_no_second_file(folders: FolderPair) -> None:
    _drop(
        folders.outbound(TONGLIANG), "b.json", (DEMO_DATA / "tongliang-outbound.json").read_bytes()
    )

    async def arrived() -> bool:
        return len(_files(folders.inbound(SUINING))) == 3

    await eventually(arrived, what="three inbound files")
    # Lose the acknowledgements, as a crash between rename and commit would.
    db = folders.suining.config.node.database
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE inbox SET delivered_at = NULL")
    assert folders.suining.inbound_folder is not None
    redelivered = await folders.suining.inbound_folder.deliver_pending()
    assert redelivered == 3
    assert len(_files(folders.inbound(SUINING))) == 3


async def test_a_file_dropped_twice_is_sent_once(folders: FolderPair) -> None:
    data = (DEMO_DATA / "tongliang-outbound.json").read_bytes()
    _drop(folders.outbound(TONGLIANG), "first.json", data)
    done = folders.outbound(TONGLIANG) / "done"

    async def taken() -> bool:
        return (done / "first.json").exists()

    await eventually(taken, what="the first file to be taken")
    # The same bytes again (a local system retrying after a timeout): same idempotency keys.
    _drop(folders.outbound(TONGLIANG), "first-retry.json", data)

    async def retaken() -> bool:
        return (done / "first-retry.json").exists()

    await eventually(retaken, what="the retried file to be taken")
    await asyncio.sleep(0.3)
    with sqlite3.connect(folders.tongliang.config.node.database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (3,)


async def test_a_file_still_being_written_is_left_alone(folders: FolderPair) -> None:
    folder = folders.outbound(TONGLIANG)
    partial = folder / "growing.json"
    partial.write_bytes(b'[{"\xe8\xae\xb0')  # a local system mid-write, no rename convention
    os.utime(partial)  # just modified
    await asyncio.sleep(0.3)
    assert partial.exists() and not (folder / "rejected" / "growing.json").exists()


async def test_a_suining_batch_arrives_in_tongliangs_format(folders: FolderPair) -> None:
    source = (DEMO_DATA / "suining-outbound.xml").read_bytes()
    _drop(folders.outbound(SUINING), "SN202611280001.xml", source)

    async def arrived() -> bool:
        return len(_files(folders.inbound(TONGLIANG))) == 3

    await eventually(arrived, what="three files in Tongliang's inbound folder")
    tongliang, suining = load_adapter("tongliang"), load_adapter("suining")
    received = [
        r
        for p in _files(folders.inbound(TONGLIANG))
        for r in tongliang.decode(p.read_bytes()).records
    ]
    assert sorted(received, key=str) == sorted(suining.decode(source).records, key=str)


async def test_a_batch_whose_count_is_wrong_is_refused_whole(folders: FolderPair) -> None:
    source = (DEMO_DATA / "suining-outbound.xml").read_bytes()
    broken = source.replace("<JLS>3</JLS>".encode("gb18030"), b"<JLS>4</JLS>")
    _drop(folders.outbound(SUINING), "bad-count.xml", broken)
    report = folders.outbound(SUINING) / "rejected" / "bad-count.xml.error.txt"

    async def refused() -> bool:
        return report.exists()

    await eventually(refused, what="the error report")
    assert "JLS" in report.read_text() and "batch.count_mismatch" in report.read_text()
    with sqlite3.connect(folders.suining.config.node.database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
