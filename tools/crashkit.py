"""Crash harness: two real node processes, SIGKILLed at random moments, nothing lost or doubled.

It plays both bureaus' local systems through the nodes' ``[local_files]`` folders, as
``chuanyu-gateway demo`` does, and kills the nodes while they work:

1. sets up a work directory: a PKI (``gateway.pki.init_pki``), one configuration per node
   (free loopback ports, short retry settings, watched outbound and inbound folders);
2. generates ``records`` distinct Tongliang records (consumer complaints ``TS…`` and
   enforcement referrals ``铜市监移〔2026〕N号``), in Tongliang JSON files of ``per_file``
   records each, dropped one after another into Tongliang's outbound folder;
3. plays Suining's local system: every record that shows up in Suining's inbound folder is
   chosen, or not (a share fixed by the seed), for feedback (BLFK, GB18030 XML written with
   the Suining adapter) dropped into Suining's outbound folder;
4. meanwhile SIGKILLs a random node after a random delay, restarts it after a random
   down time, ``kills`` times (the kill plan is drawn from ``seed`` before anything starts);
5. waits for quiescence (outboxes drained, outbound folders empty, inboxes delivered, inbound
   folders stable), stops both nodes with SIGTERM and checks: nothing lost, nothing doubled
   (files, inboxes, outboxes, cross-node message ids), one stored receipt per delivered
   message, both transfer-log chains intact, no complainant phone number in a node log.

Command line (``make soak`` runs the second)::

    python tools/crashkit.py run  [--kills 5] [--records 300] [--seed N] [--workdir DIR]
    python tools/crashkit.py soak [--kills 20] [--records 20000] [--per-file 500] ...

It prints ``delivered N, lost L, duplicated D, kills K`` and exits 1 when anything is lost or
doubled, a chain is broken or another check fails. From Python: :func:`run_crash` returns a
:class:`Report`. Every node process runs in its own process group and is killed on the way out,
whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from gateway.adapter import EncodeContext, LocalAdapter, load_adapter
from gateway.clock import BEIJING
from gateway.errors import GatewayError
from gateway.pki import PkiLayout, init_pki
from gateway.records import Feedback, FeedbackStatus, OriginalType, Record, RecordType, record_key
from gateway.store.base import OutboundState
from gateway.store.sqlite import iter_log_file
from gateway.translog import verify_chain

__all__ = ["CrashSettings", "Report", "main", "run_crash"]

TONGLIANG = "500151"
SUINING = "510900"
# The cooperation agreements the nodes enforce (agreements/ at the root of the checkout).
AGREEMENTS = Path(__file__).resolve().parent.parent / "agreements"

# A record as the harness knows it: (record type, its number at the origin).
Key = tuple[str, str]
Say = Callable[[str], None]

_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_SHOWN = 8  # examples shown per problem


@dataclass(frozen=True, slots=True)
class CrashSettings:
    """One crash run. Times are in seconds."""

    records: int = 300
    per_file: int = 50
    kills: int = 5
    seed: int = 0
    referral_share: float = 0.2  # of the source records; the rest are complaints
    feedback_share: float = 0.5  # of the records that reach Suining
    kill_gap: tuple[float, float] = (0.5, 3.0)  # from a restart to the next kill
    down_time: tuple[float, float] = (0.0, 1.0)  # from a kill to the restart
    drop_every: float = 0.5  # between two source files
    timeout: float = 300.0  # the whole run, setup to verdict
    stop_timeout: float = 30.0  # SIGTERM to exit, per node


@dataclass(slots=True)
class Report:
    """What a crash run found. ``ok`` is the verdict."""

    seed: int
    workdir: Path
    kills: int = 0
    records: int = 0
    arrived: int = 0  # distinct source records in Suining's inbound folder
    feedback_sent: int = 0
    feedback_arrived: int = 0  # distinct feedback records in Tongliang's inbound folder
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def delivered(self) -> int:
        return self.arrived + self.feedback_arrived

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.problems)

    def summary(self) -> str:
        return (
            f"delivered {self.delivered}, lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}, kills {self.kills}"
        )

    def details(self) -> str:
        lines = [
            f"seed {self.seed}, work directory {self.workdir}, {self.seconds:.1f} s",
            f"records: {self.arrived}/{self.records} at Suining; feedback: "
            f"{self.feedback_arrived}/{self.feedback_sent} at Tongliang",
            "kill plan: " + ("; ".join(self.plan) or "(none)"),
        ]
        for title, items in (
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("problems", self.problems),
        ):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines += [f"  {item}" for item in items[:_SHOWN]]
                if len(items) > _SHOWN:
                    lines.append(f"  … and {len(items) - _SHOWN} more")
        lines += [f"note: {note}" for note in self.notes]
        lines.append(self.summary())
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Nodes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class CrashNode:
    """One node process, started, killed and restarted by the harness."""

    bureau: str
    name: str
    adapter_name: str
    workdir: Path
    peer_port: int = field(default_factory=_free_port)
    local_port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    @property
    def config(self) -> Path:
        return self.workdir / "config" / f"{self.adapter_name}.toml"

    @property
    def database(self) -> Path:
        return self.workdir / "data" / f"{self.bureau}.db"

    @property
    def log(self) -> Path:
        return self.workdir / "logs" / f"{self.bureau}.log"

    @property
    def stderr(self) -> Path:
        return self.workdir / "logs" / f"{self.bureau}.stderr"

    @property
    def outbound(self) -> Path:
        return self.workdir / "exchange" / self.bureau / "outbound"

    @property
    def inbound(self) -> Path:
        return self.workdir / "exchange" / self.bureau / "inbound"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def write_config(self, partner: CrashNode, certs: PkiLayout) -> None:
        paths = certs.bureau(self.bureau)
        base = self.config.parent
        base.mkdir(parents=True, exist_ok=True)

        def rel(path: Path) -> str:
            return os.path.relpath(path, base)

        self.config.write_text(
            f"""# crashkit configuration for {self.name}
[node]
bureau = "{self.bureau}"
name = "{self.name}"
database = "{rel(self.database)}"

[tls]
ca = "{rel(certs.ca_cert)}"
cert = "{rel(paths.tls_cert)}"
key = "{rel(paths.tls_key)}"

[signing]
suite = "ed25519"
cert = "{rel(paths.signing_cert)}"
key = "{rel(paths.signing_key)}"

[listen]
peer = "127.0.0.1:{self.peer_port}"
local = "127.0.0.1:{self.local_port}"

[exchange]
call_timeout_seconds = 5

[retry]
base_seconds = 0.1
cap_seconds = 2

[logging]
file = "{rel(self.log)}"

[local_files]
adapter = "{self.adapter_name}"
outbound = "{rel(self.outbound)}"
inbound = "{rel(self.inbound)}"
poll_seconds = 0.2

[agreements]
directory = "{rel(self.workdir / "agreements")}"

[[partners]]
bureau = "{partner.bureau}"
name = "{partner.name}"
address = "127.0.0.1:{partner.peer_port}"
""",
            encoding="utf-8",
        )

    def start(self) -> None:
        self.stderr.parent.mkdir(parents=True, exist_ok=True)
        with self.stderr.open("ab") as stderr:
            # A session of its own: the whole process group goes down on a kill.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        self.starts += 1

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL, at once, whatever the node is doing."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self, timeout: float) -> int | None:
        """SIGTERM and wait; SIGKILL when the node does not finish in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
                return None
        # Whatever the node may have started goes with it.
        self._signal_group(signal.SIGKILL)
        return self.process.returncode

    def ensure_dead(self) -> None:
        if self.process is not None:
            self._signal_group(signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------------------
# Local files


def _visible_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _drop(folder: Path, name: str, data: bytes) -> None:
    """Play a local system: write the file under a temporary name, then rename it in."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{name}.part"
    part.write_bytes(data)
    part.replace(folder / name)


_SURNAMES = "王李张刘陈杨赵黄周吴"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军")


def _complaint(index: int, number: str, phone: str, now: dt.datetime) -> dict[str, Any]:
    registered = (now - dt.timedelta(days=2)).astimezone(BEIJING)
    purchased = registered.date() - dt.timedelta(days=3 + index % 20)
    return {
        "记录类型": "消费投诉",
        "投诉编号": number,
        "登记时间": f"{registered:%Y-%m-%d %H:%M:%S}",
        "来源渠道": "12315热线" if index % 2 else "12315平台",
        "投诉人": {
            "姓名": _SURNAMES[index % 10] + _GIVEN[(index // 10) % 10],
            "联系电话": phone,
        },
        "被投诉人": {
            "名称": "遂宁市船山区某某电器商行",
            "统一社会信用代码": "92510903MA6AB7Q52D",
            "地址": "四川省遂宁市船山区明月路8号",
            "行政区划代码": "510903",
        },
        "商品或服务名称": "空调",
        "消费类别": "商品",
        "涉案金额": f"{100 + index % 5000}.00",
        "消费日期": f"{purchased:%Y-%m-%d}",
        "投诉事由": "安装后无法制冷，商家拒绝维修。",
        "诉求": "退货退款",
    }


def _referral(index: int, number: str, now: dt.datetime) -> dict[str, Any]:
    found = (now - dt.timedelta(days=3)).astimezone(BEIJING).date()
    return {
        "记录类型": "案件线索移送",
        "移送文号": number,
        "移送单位": "重庆市铜梁区市场监督管理局",
        "接收单位": "遂宁市市场监督管理局",
        "当事人": {
            "名称": "遂宁市船山区某某电器商行",
            "统一社会信用代码": "92510903MA6AB7Q52D",
            "地址": "四川省遂宁市船山区明月路8号",
        },
        "案由": "涉嫌销售不合格空调",
        "违法事实": f"铜梁区消费者投诉所购空调无法制冷，经抽检能效不合格（线索 {index}）。",
        "移送依据": "《市场监督管理行政处罚程序规定》第十四条",
        "发现日期": f"{found:%Y-%m-%d}",
        "证据材料": [
            {
                "名称": "抽检报告",
                "页数": 12,
                "SHA256": "55c64d0fcd6f9d5f7c828093857e3fdfda68478bb4e9bd24d481ef391c7804e8",
            }
        ],
        "涉案物品": ["空调 KFR-35GW 2 台"],
        "联系人": "陈七",
        "联系电话": "023-45671234",
    }


@dataclass(slots=True)
class SourceFiles:
    """Tongliang's local system: distinct records in JSON files, dropped one by one."""

    files: list[tuple[str, bytes]]
    keys: set[Key]
    phones: set[str]

    @classmethod
    def generate(cls, settings: CrashSettings, rng: random.Random) -> SourceFiles:
        now = dt.datetime.now(dt.UTC)
        day = f"{now.astimezone(BEIJING):%Y%m%d}"
        keys: set[Key] = set()
        phones: set[str] = set()
        rows: list[dict[str, Any]] = []
        for index in range(settings.records):
            if rng.random() < settings.referral_share:
                number = f"铜市监移〔2026〕{index + 1}号"
                rows.append(_referral(index, number, now))
                keys.add((RecordType.ENFORCEMENT_REFERRAL.value, number))
            else:
                number = f"TS{TONGLIANG}{day}{index + 1:07d}"
                phone = f"139{index + 1:08d}"
                rows.append(_complaint(index, number, phone, now))
                keys.add((RecordType.CONSUMER_COMPLAINT.value, number))
                phones.add(phone)
        files = []
        for start in range(0, len(rows), settings.per_file):
            chunk = rows[start : start + settings.per_file]
            data = json.dumps(chunk, ensure_ascii=False, indent=1).encode("utf-8")
            files.append((f"crash-{start // settings.per_file + 1:05d}.json", data))
        return cls(files, keys, phones)


def _keys_of(records: Sequence[Record]) -> list[Key]:
    keys: list[Key] = []
    for record in records:
        if isinstance(record, Feedback):
            # A feedback is known by the record it answers.
            keys.append((f"feedback:{record.original_type.value}", record.original_number))
        else:
            keys.append((record.record_type.value, record_key(record)))
    return keys


@dataclass(slots=True)
class InboundScan:
    """A local system reading its inbound folder: each file decoded once, by its adapter."""

    folder: Path
    adapter: LocalAdapter
    files: dict[str, list[Key]] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def scan(self) -> list[Key]:
        """Decode the files not seen before; return their keys."""
        fresh: list[Key] = []
        present = _visible_files(self.folder)
        names = {path.name for path in present}
        for gone in [name for name in self.files if name not in names]:
            del self.files[gone]  # counts are of the files there now
        for path in present:
            if path.name in self.files or path.name in self.unreadable:
                continue
            try:
                keys = _keys_of(self.adapter.decode(path.read_bytes()).records)
            except Exception as exc:  # reported, never fatal to the harness
                self.unreadable[path.name] = f"{type(exc).__name__}: {exc}"[:300]
                continue
            self.files[path.name] = keys
            fresh.extend(keys)
        return fresh

    def counts(self) -> Counter[Key]:
        return Counter(key for keys in self.files.values() for key in keys)


@dataclass(slots=True)
class Replies:
    """Suining's local system answering what arrives: BLFK feedback, GB18030 XML."""

    scan: InboundScan
    outbound: Path
    seed: int
    share: float
    per_file: int
    adapter: LocalAdapter = field(default_factory=lambda: load_adapter("suining"))
    answered: set[Key] = field(default_factory=set)  # feedback keys, as _keys_of names them
    dropped: set[Key] = field(default_factory=set)  # those written into the outbound folder
    buffer: list[Feedback] = field(default_factory=list)
    buffered_since: float = 0.0
    written: int = 0

    def chosen(self, key: Key) -> bool:
        # Fixed by the seed and the record, not by the order records happen to arrive in.
        choice = random.Random(f"{self.seed}:{key[0]}:{key[1]}")  # noqa: S311 - reproducible
        return choice.random() < self.share

    def poll(self, now: float) -> None:
        for record_type, number in self.scan.scan():
            if record_type == RecordType.CONSUMER_COMPLAINT.value:
                original, status = OriginalType.CONSUMER_COMPLAINT, "complaint_accepted"
            elif record_type == RecordType.ENFORCEMENT_REFERRAL.value:
                original, status = OriginalType.ENFORCEMENT_REFERRAL, "referral_received"
            else:
                continue
            answer = (f"feedback:{original.value}", number)
            if answer in self.answered or not self.chosen((record_type, number)):
                continue
            self.answered.add(answer)
            if not self.buffer:
                self.buffered_since = now
            self.buffer.append(
                Feedback(
                    original_number=number,
                    original_type=original,
                    status=FeedbackStatus(status),
                    note="已受理，将依法处理。",
                    handled_at=dt.datetime.now(BEIJING).replace(microsecond=0),
                    officer="孙十",
                )
            )
        self.flush(now)

    def flush(self, now: float, *, force: bool = False) -> None:
        while self.buffer and (
            force or len(self.buffer) >= self.per_file or now - self.buffered_since >= 1.0
        ):
            chunk, self.buffer = self.buffer[: self.per_file], self.buffer[self.per_file :]
            self.written += 1
            batch = f"SN{SUINING}CRASH{self.written:06d}"
            data = self.adapter.encode(
                chunk,
                EncodeContext(
                    sender_bureau=SUINING,
                    batch_id=batch,
                    sent_at=dt.datetime.now(BEIJING).replace(microsecond=0),
                ),
            )
            _drop(self.outbound, f"feedback-{self.written:05d}.xml", data)
            self.dropped.update(_keys_of(chunk))
            self.buffered_since = now


# ---------------------------------------------------------------------------
# Databases


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def _backlog(path: Path) -> tuple[int, int] | None:
    """(pending outbox rows, undelivered inbox rows), or None when unreadable right now."""
    if not path.exists():
        return None
    try:
        with _read_only(path) as conn:
            pending = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE state = ?", (OutboundState.PENDING.value,)
            ).fetchone()[0]
            undelivered = conn.execute(
                "SELECT COUNT(*) FROM inbox WHERE delivered_at IS NULL"
            ).fetchone()[0]
            return int(pending), int(undelivered)
    except sqlite3.Error:
        return None


def _check_database(node: CrashNode, peer: CrashNode, report: Report) -> None:
    """Duplicates, undelivered rows and receipts inside one node's database, and across."""
    b = node.bureau
    with _read_only(node.database) as conn:
        for what, sql in (
            (
                "inbox rows per (sender, message id)",
                "SELECT sender || ' ' || message_id, COUNT(*) FROM inbox GROUP BY sender, "
                "message_id HAVING COUNT(*) > 1",
            ),
            (
                "inbox rows per record key and type",
                "SELECT record_type || ' ' || record_key, COUNT(*) FROM inbox "
                "GROUP BY record_type, record_key HAVING COUNT(*) > 1",
            ),
            (
                "outbox rows per idempotency key",
                "SELECT idempotency_key, COUNT(*) FROM outbox WHERE idempotency_key IS NOT NULL "
                "GROUP BY idempotency_key HAVING COUNT(*) > 1",
            ),
            (
                "outbox rows per record key and type",
                "SELECT record_type || ' ' || record_key, COUNT(*) FROM outbox "
                "GROUP BY receiver, record_type, record_key HAVING COUNT(*) > 1",
            ),
            (
                "receipts received per message id",
                "SELECT message_id, COUNT(*) FROM receipts WHERE direction = 'received' "
                "GROUP BY message_id HAVING COUNT(*) > 1",
            ),
        ):
            for name, count in conn.execute(sql):
                report.duplicated.append(f"{b}: {count} {what}: {name}")
        for state, count in conn.execute(
            "SELECT state, COUNT(*) FROM outbox WHERE state != ? GROUP BY state",
            (OutboundState.DELIVERED.value,),
        ):
            report.problems.append(f"{b}: {count} outbox row(s) left {state}")
        for (message_id,) in conn.execute(
            "SELECT message_id FROM outbox WHERE state = ? AND NOT EXISTS (SELECT 1 FROM "
            "receipts r WHERE r.issuer = outbox.receiver AND r.message_id = outbox.message_id "
            "AND r.direction = 'received')",
            (OutboundState.DELIVERED.value,),
        ):
            report.problems.append(f"{b}: delivered {message_id} has no stored receipt")
        for (message_id,) in conn.execute(
            "SELECT message_id FROM receipts WHERE direction = 'received' AND NOT EXISTS "
            "(SELECT 1 FROM outbox o WHERE o.message_id = receipts.message_id AND o.state = ?)",
            (OutboundState.DELIVERED.value,),
        ):
            report.problems.append(f"{b}: receipt for {message_id}, not a delivered message")
        undelivered = conn.execute(
            "SELECT COUNT(*) FROM inbox WHERE delivered_at IS NULL"
        ).fetchone()[0]
        if undelivered:
            report.problems.append(f"{b}: {undelivered} inbox row(s) never delivered to local")
        sent = {
            row[0]
            for row in conn.execute(
                "SELECT message_id FROM outbox WHERE state = ?", (OutboundState.DELIVERED.value,)
            )
        }
        queued = {row[0] for row in conn.execute("SELECT message_id FROM outbox")}
    with _read_only(peer.database) as conn:
        received = {
            row[0] for row in conn.execute("SELECT message_id FROM inbox WHERE sender = ?", (b,))
        }
    for message_id in sorted(sent - received):
        report.lost.append(f"{b}→{peer.bureau}: message {message_id} receipted, not in inbox")
    for message_id in sorted(received - queued):
        report.duplicated.append(
            f"{b}→{peer.bureau}: inbox message {message_id} the sender never queued"
        )


def _check_inbound_files(node: CrashNode, report: Report) -> None:
    """One file per inbox message: message ids appear in exactly one file name each."""
    ids: Counter[str] = Counter()
    for path in _visible_files(node.inbound):
        parts = path.stem.split("-", 3)
        if len(parts) != 4:
            report.problems.append(f"{node.bureau}: unexpected inbound file {path.name}")
            continue
        ids[parts[3]] += 1
    for message_id, count in sorted(ids.items()):
        if count > 1:
            report.duplicated.append(f"{node.bureau}: {count} inbound files for {message_id}")
    with _read_only(node.database) as conn:
        rows = {row[0] for row in conn.execute("SELECT message_id FROM inbox")}
    for message_id in sorted(rows - set(ids)):
        report.lost.append(f"{node.bureau}: inbox message {message_id} has no inbound file")
    for message_id in sorted(set(ids) - rows):
        report.duplicated.append(f"{node.bureau}: inbound file for {message_id}, not in inbox")
    stray = [
        p.name
        for p in node.inbound.iterdir()
        if p.is_file() and p.name.startswith(".") and p.name.endswith(".part")
    ]
    if stray:
        report.notes.append(
            f"{node.bureau}: {len(stray)} temporary file(s) left in the inbound folder by "
            f"killed writes (e.g. {stray[0]})"
        )


# ---------------------------------------------------------------------------
# The run


def _progress(say: Say) -> Say:
    started = time.monotonic()

    def out(text: str) -> None:
        say(f"[{time.monotonic() - started:7.1f}s] {text}")

    return out


@dataclass(frozen=True, slots=True)
class _Kill:
    gap: float
    victim: int
    down: float


class _Harness:
    def __init__(self, workdir: Path, settings: CrashSettings, say: Say) -> None:
        self.workdir = workdir
        self.settings = settings
        self.say = say
        self.rng = random.Random(settings.seed)  # noqa: S311 - a reproducible kill plan
        self.tongliang = CrashNode(TONGLIANG, "重庆市铜梁区市场监督管理局", "tongliang", workdir)
        self.suining = CrashNode(SUINING, "遂宁市市场监督管理局", "suining", workdir)
        self.nodes = (self.tongliang, self.suining)
        # Drawn first, so a seed always means the same kills (which node, when, how long down).
        self.plan = [
            _Kill(
                gap=self.rng.uniform(*settings.kill_gap),
                victim=self.rng.randrange(2),
                down=self.rng.uniform(*settings.down_time),
            )
            for _ in range(settings.kills)
        ]
        self.source = SourceFiles.generate(settings, self.rng)
        self.suining_scan = InboundScan(self.suining.inbound, load_adapter("suining"))
        self.tongliang_scan = InboundScan(self.tongliang.inbound, load_adapter("tongliang"))
        self.replies = Replies(
            self.suining_scan,
            self.suining.outbound,
            settings.seed,
            settings.feedback_share,
            settings.per_file,
        )
        self.report = Report(seed=settings.seed, workdir=workdir, records=settings.records)
        self.report.plan = [
            f"{k.gap:.2f}s→{self.nodes[k.victim].bureau} down {k.down:.2f}s" for k in self.plan
        ]

    def setup(self) -> None:
        for stale in ("agreements", "certs", "config", "data", "logs", "exchange"):
            shutil.rmtree(self.workdir / stale, ignore_errors=True)
        shutil.copytree(AGREEMENTS, self.workdir / "agreements")
        for node in self.nodes:
            for folder in (node.outbound, node.inbound, node.database.parent, node.log.parent):
                folder.mkdir(parents=True, exist_ok=True)
        certs = init_pki(self.workdir / "certs", [TONGLIANG, SUINING])
        self.tongliang.write_config(self.suining, certs)
        self.suining.write_config(self.tongliang, certs)

    def quiet_snapshot(self) -> tuple[object, ...] | None:
        """Everything that must stand still, or None while work is visibly left."""
        if any(not node.running for node in self.nodes):
            return None
        if self.replies.buffer:
            return None
        if any(_visible_files(node.outbound) for node in self.nodes):
            return None
        backlogs = [_backlog(node.database) for node in self.nodes]
        if any(b is None or b != (0, 0) for b in backlogs):
            return None
        return tuple(len(_visible_files(node.inbound)) for node in self.nodes)

    def exchange(self) -> bool:
        """Drop files, answer arrivals, kill and restart; True once quiescent."""
        settings, say = self.settings, self.say
        deadline = time.monotonic() + settings.timeout
        for node in self.nodes:
            node.start()
        files = list(self.source.files)
        kills = list(self.plan)
        now = time.monotonic()
        next_drop = now
        next_kill = now + kills[0].gap if kills else 0.0
        restart: tuple[CrashNode, float] | None = None
        next_scan = next_check = now
        last: tuple[object, ...] | None = None
        while True:
            now = time.monotonic()
            if now > deadline:
                return False
            for node in self.nodes:
                down = restart is not None and restart[0] is node
                if not down and not node.running:
                    code = node.process.returncode if node.process else None
                    self.report.problems.append(
                        f"{node.bureau} exited by itself (code {code}); see {node.stderr}"
                    )
                    return False
            if files and now >= next_drop:
                name, data = files.pop(0)
                _drop(self.tongliang.outbound, name, data)
                next_drop = now + settings.drop_every
                if not files:
                    say(f"all {len(self.source.files)} source file(s) dropped")
            if restart is not None and now >= restart[1]:
                restart[0].start()
                restart = None
                if kills:
                    next_kill = now + kills[0].gap
            if restart is None and kills and now >= next_kill:
                kill = kills.pop(0)
                victim = self.nodes[kill.victim]
                victim.kill()
                self.report.kills += 1
                arrived = len(self.suining_scan.files)
                say(
                    f"kill {self.report.kills}/{settings.kills}: SIGKILL {victim.bureau} "
                    f"(pid {victim.process.pid if victim.process else '?'}), down "
                    f"{kill.down:.2f}s; {arrived} file(s) at Suining so far"
                )
                restart = (victim, now + kill.down)
            if now >= next_scan:
                self.replies.poll(now)
                next_scan = now + 0.5
            if not files and not kills and restart is None and now >= next_check:
                snapshot = self.quiet_snapshot()
                if snapshot is not None and snapshot == last:
                    return True
                last = snapshot
                next_check = now + 1.5
            time.sleep(0.05)

    def verify(self, quiescent: bool) -> None:
        report, settings = self.report, self.settings
        if not quiescent:
            report.problems.append(
                f"not quiescent within {settings.timeout:.0f} s (outboxes, folders or inboxes "
                "still busy)"
            )
        codes = [node.stop(settings.stop_timeout) for node in self.nodes]
        if any(code != 0 for code in codes):
            report.problems.append(f"nodes stopped with exit codes {codes} (SIGTERM, expect 0)")
        self.suining_scan.scan()  # the last arrivals; too late to be answered
        self.tongliang_scan.scan()
        for scan in (self.suining_scan, self.tongliang_scan):
            for name, error in sorted(scan.unreadable.items()):
                report.problems.append(f"unreadable inbound file {name}: {error}")
        # Source records at Suining.
        at_suining = self.suining_scan.counts()
        for key in sorted(self.source.keys - set(at_suining)):
            report.lost.append(f"{key[0]} {key[1]}: no file in Suining's inbound folder")
        for key, count in sorted(at_suining.items()):
            if count > 1:
                report.duplicated.append(f"{key[0]} {key[1]}: {count} files at Suining")
            if key not in self.source.keys:
                report.duplicated.append(f"{key[0]} {key[1]}: at Suining, never sent")
        report.arrived = len(self.source.keys & set(at_suining))
        # Feedback at Tongliang.
        at_tongliang = self.tongliang_scan.counts()
        sent_feedback = self.replies.dropped
        for key in sorted(sent_feedback - set(at_tongliang)):
            report.lost.append(f"{key[0]} {key[1]}: no file in Tongliang's inbound folder")
        for key, count in sorted(at_tongliang.items()):
            if count > 1:
                report.duplicated.append(f"{key[0]} {key[1]}: {count} files at Tongliang")
            if key not in sent_feedback:
                report.duplicated.append(f"{key[0]} {key[1]}: at Tongliang, never sent")
        report.feedback_sent = len(sent_feedback)
        report.feedback_arrived = len(sent_feedback & set(at_tongliang))
        for node in self.nodes:
            rejected = [
                p
                for p in _visible_files(node.outbound / "rejected")
                if not p.name.endswith(".error.txt")
            ]
            if rejected:
                report.problems.append(
                    f"{node.bureau}: {len(rejected)} file(s) refused into rejected/ "
                    f"(e.g. {rejected[0].name})"
                )
        # Databases, file names, transfer logs, node logs.
        for node, peer in ((self.tongliang, self.suining), (self.suining, self.tongliang)):
            try:
                _check_database(node, peer, report)
                _check_inbound_files(node, report)
            except sqlite3.Error as exc:
                report.problems.append(f"{node.bureau}: cannot read {node.database}: {exc}")
            try:
                verdict = verify_chain(iter_log_file(node.database))
            except GatewayError as exc:
                report.problems.append(f"{node.bureau}: transfer log unreadable: {exc}")
                continue
            if not verdict.ok:
                report.problems.append(
                    f"{node.bureau}: transfer log BROKEN at entry {verdict.first_bad_seq}"
                )
            else:
                report.notes.append(
                    f"{node.bureau}: transfer log intact, {verdict.entries} entries; "
                    f"{node.starts} start(s), {node.kills} kill(s)"
                )
            for log in (node.log, node.stderr):
                if log.exists():
                    text = log.read_text(encoding="utf-8", errors="replace")
                    leaked = set(_PHONE.findall(text)) & self.source.phones
                    if leaked:
                        report.problems.append(
                            f"{node.bureau}: {len(leaked)} complainant phone number(s) "
                            f"unmasked in {log.name}"
                        )

    def close(self) -> None:
        for node in self.nodes:
            node.ensure_dead()


def run_crash(
    settings: CrashSettings,
    workdir: Path | None = None,
    *,
    say: Say | None = None,
    before_checks: Callable[[Path], None] | None = None,
) -> Report:
    """One crash run in ``workdir`` (a fresh temporary directory by default).

    ``before_checks`` is called with the work directory once the exchange is quiescent (the
    harness's own tests use it to plant a loss and a duplicate the checks must find).
    """
    out = _progress(say or (lambda text: print(text, flush=True)))
    workdir = (workdir or Path(tempfile.mkdtemp(prefix="crashkit-"))).resolve()
    started = time.monotonic()
    harness = _Harness(workdir, settings, out)
    try:
        out(
            f"seed {settings.seed}: {settings.records} records in {len(harness.source.files)} "
            f"file(s), {settings.kills} kill(s); work directory {workdir}"
        )
        harness.setup()
        quiescent = harness.exchange()
        out("quiescent; stopping both nodes" if quiescent else "timed out; stopping both nodes")
        if before_checks is not None:
            before_checks(workdir)
        harness.verify(quiescent)
    finally:
        harness.close()
    harness.report.seconds = time.monotonic() - started
    return harness.report


# ---------------------------------------------------------------------------
# Command line

_PROFILES: dict[str, dict[str, Any]] = {
    # A quick run: a few hundred records, a handful of kills.
    "run": {
        "kills": 5,
        "records": 300,
        "per_file": 50,
        "gap": (0.5, 3.0),
        "drop": 0.5,
        "timeout": 300.0,
    },
    # make soak: tens of thousands of records, kills spread over minutes.
    "soak": {
        "kills": 20,
        "records": 20_000,
        "per_file": 500,
        "gap": (3.0, 14.0),
        "drop": 4.0,
        "timeout": 3600.0,
    },
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crashkit", description="SIGKILL gateway nodes mid-exchange; count lost/doubled."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, profile in _PROFILES.items():
        sub = commands.add_parser(
            name, help=f"{profile['records']} records, {profile['kills']} kills"
        )
        sub.add_argument("--kills", type=int, default=profile["kills"])
        sub.add_argument("--records", type=int, default=profile["records"])
        sub.add_argument("--per-file", type=int, default=profile["per_file"])
        sub.add_argument("--seed", type=int, default=None, help="default: from the clock")
        sub.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
        sub.add_argument("--keep", action="store_true", help="keep the work dir when all is well")
        sub.add_argument("--kill-gap", type=float, nargs=2, default=profile["gap"])
        sub.add_argument("--down-time", type=float, nargs=2, default=(0.0, 1.0))
        sub.add_argument("--drop-every", type=float, default=profile["drop"])
        sub.add_argument("--feedback-share", type=float, default=0.5)
        sub.add_argument("--referral-share", type=float, default=0.2)
        sub.add_argument("--timeout", type=float, default=profile["timeout"])
    return parser


def _terminate(signum: int, _: FrameType | None) -> None:
    # Unwind through the harness's finally blocks, which kill every node.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.records < 1 or args.per_file < 1 or args.kills < 0:
        print("crashkit: --records and --per-file must be positive, --kills not negative")
        return 2
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    settings = CrashSettings(
        records=args.records,
        per_file=args.per_file,
        kills=args.kills,
        seed=seed,
        referral_share=args.referral_share,
        feedback_share=args.feedback_share,
        kill_gap=(args.kill_gap[0], args.kill_gap[1]),
        down_time=(args.down_time[0], args.down_time[1]),
        drop_every=args.drop_every,
        timeout=args.timeout,
    )
    signal.signal(signal.SIGTERM, _terminate)
    report = run_crash(settings, args.workdir)
    print(report.details(), flush=True)
    if report.ok and not args.keep and args.workdir is None:
        shutil.rmtree(report.workdir, ignore_errors=True)
    elif not report.ok:
        print(f"work directory kept for inspection: {report.workdir}")
        print(f"reproduce the kill plan: python tools/crashkit.py {args.command} --seed {seed}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
