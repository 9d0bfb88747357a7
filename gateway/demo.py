"""``chuanyu-gateway demo``: two real nodes exchange every record type, from real local files.

What it does, in order, in a work directory it keeps for inspection:

1. creates the cooperation CA and both bureaus' TLS and signing certificates;
2. writes a configuration for each node and starts each as its own process;
3. plays Tongliang's local system (a UTF-8 JSON batch) and Suining's (a GB18030 XML
   batch): each drops its file into its node's watched outbound folder;
4. waits for the signed receipts and verifies every one against the cooperation CA;
5. shows the records arriving in the other node's inbound folder, written in that side's
   own format (Suining gets GB18030 XML, Tongliang gets JSON);
6. sends feedback back the same way, correlated to the record it answers;
7. stops both nodes and verifies both transfer logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.adapter import load_adapter
from gateway.app import operator_records
from gateway.config import load_config
from gateway.console import AccountStore, Role
from gateway.envelope import verify_receipt
from gateway.pki import PkiLayout, SigningCertificateVerifier, init_pki, load_certificate
from gateway.store import OutboundRow, OutboundState, open_offline
from gateway.translog import verify_chain

__all__ = ["run_demo"]

DATA = Path(__file__).parent / "demo_data"
# The cooperation agreements the nodes enforce (agreements/ at the root of the checkout).
AGREEMENTS = Path(__file__).resolve().parent.parent / "agreements"


@dataclass
class DemoNode:
    bureau: str
    name: str
    adapter: str
    suffix: str
    exchange: Path
    config: Path
    database: Path
    log: Path
    peer_port: int
    local_port: int
    console_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def local_address(self) -> str:
        return f"127.0.0.1:{self.local_port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_config(node: DemoNode, partner: DemoNode, certs: PkiLayout) -> None:
    paths = certs.bureau(node.bureau)
    rel = os.path.relpath
    base = node.config.parent
    node.config.write_text(
        f"""# Demo configuration for {node.name}
[node]
bureau = "{node.bureau}"
name = "{node.name}"
database = "{rel(node.database, base)}"

[tls]
ca = "{rel(certs.ca_cert, base)}"
cert = "{rel(paths.tls_cert, base)}"
key = "{rel(paths.tls_key, base)}"

[signing]
suite = "ed25519"
cert = "{rel(paths.signing_cert, base)}"
key = "{rel(paths.signing_key, base)}"

[listen]
peer = "127.0.0.1:{node.peer_port}"
local = "127.0.0.1:{node.local_port}"

[retry]
base_seconds = 0.2
cap_seconds = 5

[logging]
file = "{rel(node.log, base)}"

[local_files]
adapter = "{node.adapter}"
outbound = "{rel(node.exchange / "outbound", base)}"
inbound = "{rel(node.exchange / "inbound", base)}"
poll_seconds = 0.2

[agreements]
directory = "{rel(base.parent / "agreements", base)}"

[console]
listen = "127.0.0.1:{node.console_port}"

[[partners]]
bureau = "{partner.bureau}"
name = "{partner.name}"
address = "127.0.0.1:{partner.peer_port}"
""",
        encoding="utf-8",
    )


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _wait_serving(node: DemoNode, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with grpc.aio.insecure_channel(node.local_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"node {node.bureau} exited; see {node.log}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if loop.time() > deadline:
                raise RuntimeError(f"node {node.bureau} did not come up; see {node.log}")
            await asyncio.sleep(0.2)


def _drop(node: DemoNode, source: Path) -> None:
    """Play the local system: write its own file into the node's outbound folder."""
    folder = node.exchange / "outbound"
    part = folder / (source.name + ".part")
    part.write_bytes(source.read_bytes())
    part.replace(folder / source.name)  # a complete file appears at once
    batch = load_adapter(node.adapter).decode(source.read_bytes())
    kinds = ", ".join(sorted({r.record_type.value for r in batch.records}))
    _say(f"   {node.name} drops {source.name} into {_shown(folder)} ({kinds})")


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


async def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _shown(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


async def _receipts(
    node: DemoNode, total: int, seen: set[str], verifier: SigningCertificateVerifier
) -> int:
    """Wait until the node has sent ``total`` messages; check the receipts not shown yet."""

    def outbound() -> list[OutboundRow]:
        with open_offline(config=load_config(node.config)) as reader:
            return reader.outbound_rows()

    def delivered() -> bool:
        rows = outbound()
        return len(rows) >= total and all(r.state is OutboundState.DELIVERED for r in rows)

    await _until(delivered, f"{node.bureau}'s receipts")
    verified = 0
    for row in outbound():
        if row.message_id in seen:
            continue
        seen.add(row.message_id)
        receipt = epb.Receipt.FromString(row.receipt)
        body = epb.ReceiptBody.FromString(receipt.body)
        checked = verify_receipt(
            receipt,
            issuer=row.receiver,
            message_id=row.message_id,
            payload_sha256=body.payload_sha256,
            verifier=verifier,
            now=dt.datetime.now(dt.UTC),
        )
        verified += 1
        answers = f" answering {row.correlation_id[:8]}…" if row.correlation_id else ""
        _say(
            f"   → {row.record_type:<21} {row.record_key:<22} message {row.message_id[:8]}…"
            f"{answers} · receipt signed by {checked.signer.bureau} "
            f"(key {checked.signer.key_id[:10]}…) ✓"
        )
    return verified


async def _arrivals(node: DemoNode, count: int, shown: set[Path]) -> None:
    inbound = node.exchange / "inbound"
    await _until(lambda: len(_files(inbound)) >= count, f"{count} files in {inbound}")
    fresh = [p for p in _files(inbound) if p not in shown]
    shown.update(fresh)
    encoding = "GB18030 XML" if node.suffix == ".xml" else "UTF-8 JSON"
    _say(f"   {node.name} finds {len(fresh)} new file(s) in {_shown(inbound)} ({encoding}):")
    for path in fresh:
        _say(f"      {path.name}")
    lines = fresh[0].read_bytes().decode("gb18030" if node.suffix == ".xml" else "utf-8")
    body = lines.splitlines()
    # Skip the Suining batch header so the excerpt shows a record.
    start = next((i for i, line in enumerate(body) if "<BWTI>" in line), 0)
    for line in body[start : start + 7]:
        _say(f"        {line[:100]}")
    _say("        …")


def _start(node: DemoNode) -> None:
    node.process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(node.config)],
        stdout=subprocess.DEVNULL,
        stderr=node.log.open("ab"),
    )


def _stop(node: DemoNode) -> int | None:
    if node.process is None:
        return None
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGTERM)
        try:
            node.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()
    return node.process.returncode


async def _exchange(tongliang: DemoNode, suining: DemoNode, certs: PkiLayout) -> int:
    verifier = SigningCertificateVerifier([load_certificate(certs.ca_cert)])
    await asyncio.gather(_wait_serving(tongliang), _wait_serving(suining))
    _say(
        f"2. Nodes up, each its own process: Tongliang {tongliang.bureau} (partners :"
        f"{tongliang.peer_port}, local :{tongliang.local_port}), Suining {suining.bureau} "
        f"(partners :{suining.peer_port}, local :{suining.local_port})"
    )
    seen: set[str] = set()
    shown: set[Path] = set()
    _say("3. Each local system drops a batch in its own format:")
    _drop(tongliang, DATA / "tongliang-outbound.json")
    _drop(suining, DATA / "suining-outbound.xml")
    _say("4. Each node signs every record, sends it, and verifies the partner's signed receipt:")
    receipts = await _receipts(tongliang, 3, seen, verifier)
    receipts += await _receipts(suining, 3, seen, verifier)
    _say("5. The records arrive on the other side, written in that side's own format:")
    await _arrivals(suining, 3, shown)
    await _arrivals(tongliang, 3, shown)
    _say("6. Feedback flows back, correlated to the record it answers:")
    _drop(suining, DATA / "suining-feedback.xml")
    _drop(tongliang, DATA / "tongliang-feedback.json")
    receipts += await _receipts(suining, 4, seen, verifier)
    receipts += await _receipts(tongliang, 4, seen, verifier)
    await _arrivals(tongliang, 4, shown)
    await _arrivals(suining, 4, shown)
    return receipts


def _demo_node(workdir: Path, bureau: str, name: str, adapter: str, suffix: str) -> DemoNode:
    return DemoNode(
        bureau=bureau,
        name=name,
        adapter=adapter,
        suffix=suffix,
        exchange=workdir / "exchange" / bureau,
        config=workdir / "config" / f"{adapter}.toml",
        database=workdir / "data" / f"{bureau}.db",
        log=workdir / "logs" / f"{bureau}.log",
        peer_port=_free_port(),
        local_port=_free_port(),
        console_port=_free_port(),
    )


async def _add_officer(node: DemoNode, password: str) -> None:
    async with operator_records(load_config(node.config)) as records:
        await AccountStore(records).add("demo", Role.OFFICER, password)


def _console_logins(nodes: list[DemoNode], workdir: Path) -> list[str]:
    """One officer log-in per console, with a fresh password (written to a 0600 file too)."""
    lines = []
    for node in nodes:
        password = secrets.token_urlsafe(12)
        asyncio.run(_add_officer(node, password))
        lines.append(
            f"{node.name} ({node.bureau}): http://127.0.0.1:{node.console_port}/  "
            f"user demo, password {password}"
        )
    logins = workdir / "console-logins.txt"
    logins.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logins.chmod(0o600)
    return lines


def _prepare(workdir: Path) -> tuple[list[DemoNode], PkiLayout]:
    """A fresh work directory: certificates, agreements and both nodes' configurations."""
    for stale in ("data", "logs", "exchange", "config"):
        shutil.rmtree(workdir / stale, ignore_errors=True)
    for sub in ("data", "logs", "config"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    _say(f"Chuanyu Gateway demo — work directory {workdir}")
    certs = init_pki(workdir / "certs", ["500151", "510900"])
    shutil.rmtree(workdir / "agreements", ignore_errors=True)
    shutil.copytree(AGREEMENTS, workdir / "agreements")
    _say(
        "1. Certificates: cooperation root CA, and for each bureau a TLS certificate and an "
        f"Ed25519 signing certificate bound to urn:chuanyu:bureau:<id> ({certs.directory})"
    )
    tongliang = _demo_node(workdir, "500151", "重庆市铜梁区市场监督管理局", "tongliang", ".json")
    suining = _demo_node(workdir, "510900", "遂宁市市场监督管理局", "suining", ".xml")
    _write_config(tongliang, suining, certs)
    _write_config(suining, tongliang, certs)
    return [tongliang, suining], certs


def _logs_intact(nodes: list[DemoNode]) -> bool:
    """Verify each node's transfer log after the nodes stopped, and say what was found."""
    intact = True
    for node in nodes:
        with open_offline(config=load_config(node.config)) as reader:
            verdict = verify_chain(reader.iter_log())
        state = "intact" if verdict.ok else f"BROKEN at entry {verdict.first_bad_seq}"
        _say(
            f"   {node.bureau}: {state}, {verdict.entries} entries, head {verdict.head.hex()[:16]}…"
        )
        intact = intact and verdict.ok
    return intact


def _look_around(workdir: Path) -> None:
    rel = workdir.relative_to(Path.cwd()) if workdir.is_relative_to(Path.cwd()) else workdir
    _say()
    _say("Look around:")
    _say(f"   chuanyu-gateway log tail --db {rel}/data/500151.db -n 40")
    _say(f"   chuanyu-gateway log verify --db {rel}/data/510900.db")
    _say(
        f"   chuanyu-gateway envelope export --db {rel}/data/500151.db --message-id ID "
        "--out /tmp/envelope"
    )
    _say("   (then follow docs/signature.md to verify it with openssl alone)")
    _say(
        f"   node logs: {rel}/logs/   local folders: {rel}/exchange/<bureau>/{{outbound,inbound}}/"
    )


def run_demo(workdir: Path, *, keep_running: bool | None = None) -> int:
    """Run the demo; ``keep_running`` (default: when stdin is a terminal) leaves the nodes
    and their consoles up until Enter is pressed."""
    if keep_running is None:
        keep_running = sys.stdin.isatty()
    workdir = workdir.resolve()
    nodes, certs = _prepare(workdir)
    tongliang, suining = nodes
    status = 0
    try:
        for node in nodes:
            _start(node)
        receipts = asyncio.run(_exchange(tongliang, suining, certs))
        _say(f"7. {receipts} signed receipts verified against the cooperation CA.")
        logins = _console_logins(nodes, workdir)
        _say("   Operator consoles (overview, transfers, live tail), one log-in each:")
        for line in logins:
            _say(f"   {line}")
        if keep_running:
            input("   The nodes and consoles stay up. Press Enter to stop them. ")
    except Exception as exc:
        _say(f"demo failed: {exc}")
        status = 1
    finally:
        codes = [_stop(node) for node in nodes]
    _say(f"8. Both nodes stopped (exit codes {codes[0]}, {codes[1]}). Transfer logs:")
    if not _logs_intact(nodes) or any(code not in (0, None) for code in codes):
        status = 1
    _look_around(workdir)
    _say("demo " + ("completed" if status == 0 else "FAILED"))
    return status
