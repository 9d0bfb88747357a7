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
import datetime as dt
import hashlib
import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chuanyu.exchange.v1 import records_pb2 as rpb
from gateway.adapter import EncodeContext, LocalAdapter
from gateway.codec import record_from_proto
from gateway.convert import read_local
from gateway.envelope import parse_envelope
from gateway.errors import GatewayError
from gateway.node.outbound import OutboundService, Route
from gateway.node.services import InboxSignal
from gateway.records import Record
from gateway.store.base import InboundRow, Store
from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["InboundFolder", "OutboundFolder"]

_log = logging.getLogger("chuanyu.folders")
_TEMPORARY_SUFFIXES = (".part", ".tmp", ".partial")
# A file not renamed into place is taken once it has not changed for this long.
_SETTLE_SECONDS = 1.0
_INBOUND_BATCH = 128
# Records of one file committed to the outbox together (one group commit, not one each).
_SEND_CONCURRENCY = 64


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_files_atomically(directory: Path, files: Sequence[tuple[Path, bytes]]) -> None:
    """Like :func:`write_atomically` for many files, with one directory sync at the end."""
    for target, data in files:
        temporary = target.with_name(f".{target.name}.part")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
    _fsync_directory(directory)


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` so that ``target`` is either absent or complete, never half-written."""
    temporary = target.with_name(f".{target.name}.part")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target)
    _fsync_directory(target.parent)


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
        now = dt.datetime.now().timestamp()
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
            # Route every record before sending any: a file is refused whole.
            routes = [await self.outbound.resolve(record) for record in batch.records]
        except GatewayError as exc:
            await self._reject(path, digest, exc)
            return 0
        await self._send_all(enumerate(zip(batch.records, routes, strict=True)), digest)
        await self._done(path, digest, len(batch.records))
        return len(batch.records)

    async def _process_streaming(self, path: Path) -> int:
        """A large file: one pass checks and routes every record, a second sends them.

        Only one record is held at a time; the idempotency keys (file digest and
        position) make a crash between or during the passes harmless.
        """
        digest = await asyncio.to_thread(_file_sha256, path)
        count = 0
        try:
            with path.open("rb") as stream:
                for record in self.adapter.iter_decode(stream):
                    await self.outbound.resolve(record)
                    count += 1
        except GatewayError as exc:
            await self._reject(path, digest, exc)
            return 0
        # Routed again record by record: keeping a route per record would hold the file.
        with path.open("rb") as stream:
            await self._send_all(
                enumerate((record, None) for record in self.adapter.iter_decode(stream)), digest
            )
        await self._done(path, digest, count)
        return count

    async def _send_all(
        self, records: Iterator[tuple[int, tuple[Record, Route | None]]], digest: str
    ) -> None:
        """Send in bounded groups: concurrent sends share a commit; memory stays bounded."""
        while group := list(itertools.islice(records, _SEND_CONCURRENCY)):
            await asyncio.gather(
                *(
                    self.outbound.send(
                        record, idempotency_key=f"file:{digest}:{index}", route=route
                    )
                    for index, (record, route) in group
                )
            )

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

    async def _reject(self, path: Path, digest: str, exc: GatewayError) -> None:
        _log.warning("refused %s: %s [%s]", path.name, exc.message, exc.reason)
        target = _free_name(self.directory / "rejected", path.name)
        report = (
            f"file: {path.name}\nsha256: {digest}\nrefused at: "
            f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\nreason: {exc.reason}\n"
            f"nothing from this file was sent\n\n{exc.message}\n"
        )
        await asyncio.to_thread(path.replace, target)
        await asyncio.to_thread(
            write_atomically, target.with_name(target.name + ".error.txt"), report.encode()
        )
        await self.store.append_log(
            [
                LogEvent(
                    EventKind.REJECTED_FROM_LOCAL,
                    Direction.LOCAL,
                    detail={"file": path.name, "sha256": digest, "reason": exc.reason},
                )
            ]
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
        received = row.received_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
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
            await asyncio.to_thread(write_files_atomically, self.directory, files)
        await self.store.acknowledge_inbound([row.message_id for row in rows])


def pending_files(directory: Path) -> Sequence[Path]:
    """Files waiting in an outbound folder (for status displays and tests)."""
    return [
        p
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix not in _TEMPORARY_SUFFIXES
    ]
