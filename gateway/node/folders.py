"""Local delivery through folders, for local systems that exchange files.

* :class:`OutboundFolder` watches a folder. A local system drops a file in its
  own format (written under a temporary name and renamed, or left alone for a
  second); the node decodes it with the bureau's adapter, checks every record
  can be routed, then commits each to the outbox and moves the file to
  ``done/``. A file that breaks the format is refused whole: nothing is sent, it
  moves to ``rejected/`` with ``<name>.error.txt`` beside it. Records are sent
  with an idempotency key made of the file's SHA-256 and the record's position,
  so a crash halfway through a file never sends a record twice.
* :class:`InboundFolder` writes each received record as one file in the local
  format, under a name derived from its message id, through a temporary file, an
  fsync and an atomic rename; then acknowledges it. Redelivery after a crash
  finds the file already there and writes no second one.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chuanyu.exchange.v1 import records_pb2 as rpb
from gateway.adapter import EncodeContext, LocalAdapter
from gateway.clock import BEIJING, utc_now
from gateway.codec import record_from_proto
from gateway.convert import read_local
from gateway.envelope import parse_envelope
from gateway.errors import GatewayError
from gateway.files import file_sha256, write_atomically, write_files_atomically
from gateway.node.outbound import OutboundService, Refusal, Submission
from gateway.node.signal import InboxSignal
from gateway.records import Record
from gateway.store.base import InboundRow, Store
from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["InboundFolder", "OutboundFolder"]

_log = logging.getLogger("chuanyu.folders")
_TEMPORARY_SUFFIXES = (".part", ".tmp", ".partial")
# A file not renamed into place is taken once it has not changed for this long.
_SETTLE_SECONDS = 1.0
_INBOUND_BATCH = 128
# A streamed file is queued this many records per transaction (memory stays bounded).
_STREAM_GROUP = 256
# Files written for the local system: readable by its own account.
_LOCAL_FILE_MODE = 0o644


def _free_name(directory: Path, name: str) -> Path:
    target = directory / name
    stamp = 1
    while target.exists():
        target = directory / f"{Path(name).stem}.{stamp}{Path(name).suffix}"
        stamp += 1
    return target


@dataclass(slots=True)
class OutboundFolder:
    """Turns files a local system drops into outbound records."""

    directory: Path
    adapter: LocalAdapter
    outbound: OutboundService
    store: Store
    poll_seconds: float = 1.0
    stream_above_bytes: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        for sub in (self.directory, self.directory / "done", self.directory / "rejected"):
            sub.mkdir(parents=True, exist_ok=True)

    def _ready_files(self) -> list[Path]:
        now = utc_now().timestamp()
        ready = []
        for path in sorted(self.directory.iterdir()):
            if (
                not path.is_file()
                or path.name.startswith(".")
                or path.suffix in _TEMPORARY_SUFFIXES
            ):
                continue
            if now - path.stat().st_mtime < _SETTLE_SECONDS:
                continue  # a local system may still be writing it
            ready.append(path)
        return ready

    async def run(self) -> None:
        while True:
            for path in await asyncio.to_thread(self._ready_files):
                try:
                    await self.process(path)
                except GatewayError as exc:
                    # The store is down: leave the file; it is taken again next round.
                    _log.error("cannot take %s now: %s", path.name, exc.message)
            await asyncio.sleep(self.poll_seconds)

    async def process(self, path: Path) -> int:
        """Send every record of ``path`` or none; returns how many were sent."""
        if path.stat().st_size > self.stream_above_bytes:
            return await self._process_streaming(path)
        data = await asyncio.to_thread(path.read_bytes)
        digest = hashlib.sha256(data).hexdigest()
        try:
            # Off the event loop: a slow file must not hold up the partner and local ports.
            # The same reading (and re-validation of what the adapter returns) as convert.
            batch = await asyncio.to_thread(read_local, data, adapter=self.adapter)
        except GatewayError as exc:
            await self._reject(path, digest, exc.reason, exc.message)
            return 0
        items = _submissions(batch.records, digest)
        # Route every record before queueing any: a file is refused whole.
        routes, refusals = await self.outbound.check(items)
        if refusals:
            await self._refuse(path, digest, refusals)
            return 0
        await self.outbound.queue(items, routes)
        await self._done(path, digest, len(items))
        return len(items)

    async def _process_streaming(self, path: Path) -> int:
        """A large file: one pass checks and routes every record, a second queues them.

        Only a group of records is held at a time; the idempotency keys (file digest
        and position) make a crash between or during the passes harmless.
        """
        digest = await asyncio.to_thread(file_sha256, path)
        count = 0
        try:
            with path.open("rb") as stream:
                for group in _groups(self.adapter.iter_decode(stream), digest, 0):
                    _, refusals = await self.outbound.check(group)
                    if refusals:
                        await self._refuse(path, digest, refusals, offset=count)
                        return 0
                    count += len(group)
        except GatewayError as exc:
            await self._reject(path, digest, exc.reason, exc.message)
            return 0
        # Routed again group by group: keeping a route per record would hold the file.
        with path.open("rb") as stream:
            for group in _groups(self.adapter.iter_decode(stream), digest, 0):
                routes, refusals = await self.outbound.check(group)
                if refusals:  # an agreement ended between the passes: the rest waits
                    raise refusals[0].error
                await self.outbound.queue(group, routes)
        await self._done(path, digest, count)
        return count

    async def _done(self, path: Path, digest: str, count: int) -> None:
        await self.store.append_log(
            [
                LogEvent(
                    EventKind.ACCEPTED_FROM_LOCAL,
                    Direction.LOCAL,
                    detail={"file": path.name, "sha256": digest, "records": count},
                )
            ]
        )
        await asyncio.to_thread(path.replace, _free_name(self.directory / "done", path.name))
        _log.info("took %s: %d record(s) queued", path.name, count)

    async def _refuse(
        self, path: Path, digest: str, refusals: Sequence[Refusal], *, offset: int = 0
    ) -> None:
        """Records that cannot be routed: the file is refused whole, naming each."""
        first = refusals[0].error
        lines = "\n".join(
            str(Refusal(r.position + offset, r.record, r.error)) for r in refusals[:50]
        )
        more = f"\nand {len(refusals) - 50} more" if len(refusals) > 50 else ""
        await self._reject(path, digest, first.reason, lines + more)

    async def _reject(self, path: Path, digest: str, reason: str, message: str) -> None:
        _log.warning("refused %s: %s [%s]", path.name, message, reason)
        target = _free_name(self.directory / "rejected", path.name)
        report = (
            f"file: {path.name}\nsha256: {digest}\nrefused at: "
            f"{utc_now().isoformat(timespec='seconds')}\nreason: {reason}\n"
            f"nothing from this file was sent\n\n{message}\n"
        )
        # Logged before the file moves: whoever sees the refusal in the folder finds it in
        # the log too.
        await self.store.append_log(
            [
                LogEvent(
                    EventKind.REJECTED_FROM_LOCAL,
                    Direction.LOCAL,
                    detail={"file": path.name, "sha256": digest, "reason": reason},
                )
            ]
        )
        await asyncio.to_thread(path.replace, target)
        await asyncio.to_thread(
            write_atomically,
            target.with_name(target.name + ".error.txt"),
            report.encode(),
            mode=_LOCAL_FILE_MODE,
        )


@dataclass(slots=True)
class InboundFolder:
    """Writes received records into a folder in the local format, one file each."""

    directory: Path
    adapter: LocalAdapter
    store: Store
    signal: InboxSignal
    poll_seconds: float = 2.0

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def file_for(self, row: InboundRow) -> Path:
        received = row.received_at.astimezone(BEIJING)
        name = f"{received:%Y%m%d%H%M%S}-{row.sender}-{row.record_type}-{row.message_id}"
        return self.directory / (name + self.adapter.file_suffix)

    async def run(self) -> None:
        while True:
            try:
                delivered = await self.deliver_pending()
            except GatewayError as exc:
                _log.error("inbound delivery paused: %s", exc.message)
                delivered = 0
            if not delivered:
                await self.signal.wait(self.poll_seconds)

    async def deliver_pending(self) -> int:
        count = 0
        after = 0
        while rows := await self.store.undelivered_inbound(after, _INBOUND_BATCH):
            await self._deliver(rows)
            after = rows[-1].seq
            count += len(rows)
        return count

    async def _deliver(self, rows: Sequence[InboundRow]) -> None:
        """Write a batch of files (each durable before its rename), then acknowledge all
        at once: one directory sync and one commit per batch, not per record."""
        files: list[tuple[Path, bytes]] = []
        for row in rows:
            target = self.file_for(row)
            if target.exists():
                continue  # written before a crash took the acknowledgement: not again
            message = rpb.Record()
            message.ParseFromString(parse_envelope(row.envelope).payload)
            data = self.adapter.encode(
                [record_from_proto(message)],
                EncodeContext(
                    sender_bureau=row.sender, batch_id=row.message_id, sent_at=row.received_at
                ),
            )
            files.append((target, data))
        if files:
            await asyncio.to_thread(
                write_files_atomically, self.directory, files, mode=_LOCAL_FILE_MODE
            )
        await self.store.acknowledge_inbound([row.message_id for row in rows])


def _submissions(records: Iterable[Record], digest: str, start: int = 0) -> list[Submission]:
    """Each record keyed by the file's digest and its position: a file taken twice (or
    again after a crash) queues each record once."""
    return [
        Submission(record, idempotency_key=f"file:{digest}:{index}")
        for index, record in enumerate(records, start)
    ]


def _groups(records: Iterable[Record], digest: str, start: int) -> Iterable[list[Submission]]:
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, _STREAM_GROUP)):
        yield _submissions(chunk, digest, start)
        start += len(chunk)


def pending_files(directory: Path) -> Sequence[Path]:
    """Files waiting in an outbound folder (for status displays and tests)."""
    return [
        p
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix not in _TEMPORARY_SUFFIXES
    ]
