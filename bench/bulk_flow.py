"""A large local file through both nodes, in bounded memory.

``python -m bench.bulk_flow --records 100000`` writes a Tongliang JSON batch of that
many consumer complaints, starts both nodes as processes with local folders (the
file is streamed: read twice, one record at a time), drops it into Tongliang's
outbound folder and waits until every record is a file in Suining's inbound
folder. It samples both node processes' resident memory throughout and prints the
peaks beside the file size; run it at two sizes to see that memory does not grow
with the file. Nothing here is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adapters.tongliang import TongliangAdapter
from gateway.adapter import EncodeContext
from gateway.clock import utc_now
from gateway.conformance.samples import sample_records
from gateway.demo import AGREEMENTS, DemoNode, _demo_node, _write_config
from gateway.pki import init_pki
from gateway.records import RecordType

__all__ = ["main"]


_CHUNK = 1000


def _write_batch(path: Path, records: int) -> None:
    """A Tongliang file of ``records`` sample complaints, written a chunk at a time."""
    adapter = TongliangAdapter()
    context = EncodeContext(sender_bureau="500151", batch_id="BULK", sent_at=utc_now())
    with path.open("w", encoding="utf-8") as out:
        out.write("[\n")
        for start in range(0, records, _CHUNK):
            chunk = sample_records(
                RecordType.CONSUMER_COMPLAINT,
                min(_CHUNK, records - start),
                start=start,
                facts="安装后无法制冷，商家拒绝维修。" * 4,
            )
            # The adapter writes the local form; one line per record keeps the file streamable.
            for n, item in enumerate(json.loads(adapter.encode(chunk, context)), start=start):
                out.write(json.dumps(item, ensure_ascii=False))
                out.write(",\n" if n + 1 < records else "\n")
        out.write("]\n")


def _rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident memory of a process, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chuanyu-bulk-"))
    nodes: list[DemoNode] = []
    try:
        for sub in ("data", "logs", "config"):
            (workdir / sub).mkdir()
        shutil.copytree(AGREEMENTS, workdir / "agreements")
        certs = init_pki(workdir / "certs", ["500151", "510900"])
        tongliang = _demo_node(workdir, "500151", "铜梁", "tongliang", ".json")
        suining = _demo_node(workdir, "510900", "遂宁", "suining", ".xml")
        nodes = [tongliang, suining]
        _write_config(tongliang, suining, certs)
        _write_config(suining, tongliang, certs)
        for node in nodes:
            node.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--config", str(node.config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        batch = workdir / "batch.json"
        _write_batch(batch, args.records)
        size_mib = batch.stat().st_size / 2**20
        print(f"batch: {args.records} records, {size_mib:.1f} MiB", flush=True)
        time.sleep(2.0)
        outbound = tongliang.exchange / "outbound"
        outbound.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        batch.replace(outbound / batch.name)
        inbound = suining.exchange / "inbound"
        peaks = {node.bureau: 0 for node in nodes}
        arrived = 0
        while arrived < args.records:
            if time.monotonic() - started > args.timeout:
                print(f"timed out with {arrived} of {args.records} delivered")
                return 1
            time.sleep(2.0)
            for node in nodes:
                assert node.process is not None
                if node.process.poll() is not None:
                    print(f"node {node.bureau} exited; see {node.log}")
                    return 1
                peaks[node.bureau] = max(peaks[node.bureau], _rss_kib(node.process.pid)[1])
            arrived = sum(1 for _ in inbound.iterdir()) if inbound.exists() else 0
            elapsed = time.monotonic() - started
            print(f"  {elapsed:6.0f} s  {arrived:>7} delivered", flush=True)
        elapsed = time.monotonic() - started
        print(f"all {args.records} records delivered in {elapsed:.0f} s "
              f"({args.records / elapsed:.0f} records/s end to end)")  # fmt: skip
        for bureau, peak in peaks.items():
            print(f"  node {bureau}: peak resident memory {peak / 1024:.0f} MiB")
        return 0
    finally:
        for node in nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
                try:
                    node.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
