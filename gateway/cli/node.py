"""``serve``, ``send`` and ``demo``: running a node and talking to it."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.codec import record_to_proto
from gateway.config import NodeConfig, load_config
from gateway.convert import read_local
from gateway.errors import ConfigInvalid, PeerUnavailable
from gateway.privacy import escape_controls
from gateway.records import Record, record_key

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run a gateway node")
    serve.add_argument("--config", type=Path, required=True, help="node configuration (TOML)")
    serve.add_argument(
        "--grace", type=float, default=10.0, help="seconds to finish in-flight calls on SIGTERM"
    )
    serve.set_defaults(handler=_serve)

    send = subparsers.add_parser("send", help="submit a record file to the local node")
    target = send.add_mutually_exclusive_group(required=True)
    target.add_argument("--config", type=Path, help="the local node's configuration")
    target.add_argument("--local", help="the local node's local-service address, host:port")
    send.add_argument(
        "--format",
        default="canonical",
        help="file format: canonical (JSON list of records) or an adapter name, e.g. tongliang",
    )
    send.add_argument("--receiver", default="", help="receiving bureau (default: the only partner)")
    send.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the receipts")
    send.add_argument("file", type=Path)
    send.set_defaults(handler=_send)

    demo = subparsers.add_parser("demo", help="run two nodes and exchange every record type")
    demo.add_argument("--workdir", type=Path, default=Path(".demo"))
    stay = demo.add_mutually_exclusive_group()
    stay.add_argument(
        "--stay",
        dest="keep_running",
        action="store_true",
        default=None,
        help="keep the nodes and consoles up until Enter (default when run in a terminal)",
    )
    stay.add_argument("--no-stay", dest="keep_running", action="store_false")
    demo.set_defaults(handler=_demo)


class _EscapeControls(logging.Filter):
    """Values logged from peers' input cannot forge lines or terminal escapes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                escape_controls(a) if isinstance(a, str) else a for a in record.args
            )
        return True


def configure_logging(config: NodeConfig) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.logging.file is not None:
        config.logging.file.parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(config.logging.file, encoding="utf-8")]
    for handler in handlers:
        handler.addFilter(_EscapeControls())
    logging.basicConfig(
        level=config.logging.level.upper(),
        format=f"%(asctime)s %(levelname)s [{config.bureau}] %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure_logging(config)
    return asyncio.run(_serve_async(config, args.grace))


async def _serve_async(config: NodeConfig, grace: float) -> int:
    from gateway.app import build_node

    node = build_node(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    print(
        f"bureau {config.bureau} ready: partners on port {node.peer_port}, "
        f"local systems on port {node.local_port}",
        flush=True,
    )
    await stop.wait()
    logging.getLogger("chuanyu.node").info("stopping (grace %.1f s)", grace)
    await node.stop(grace)
    return 0


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigInvalid(f"cannot read {path}: {exc.strerror}") from exc


def batch_request(data: bytes, records: Sequence[Record], receiver: str) -> lpb.SendBatchRequest:
    """The file as one batch, each record keyed by the file's digest and its position (as
    the outbound folder keys them): sending the same file again queues nothing new."""
    digest = hashlib.sha256(data).hexdigest()
    return lpb.SendBatchRequest(
        records=[
            lpb.SendRequest(
                record=record_to_proto(record),
                receiver=receiver,
                idempotency_key=f"file:{digest}:{index}",
            )
            for index, record in enumerate(records)
        ]
    )


def _send(args: argparse.Namespace) -> int:
    address = args.local if args.config is None else load_config(args.config).listen.local
    data = read_file(args.file)
    records = list(read_local(data, adapter=args.format).records)
    request = batch_request(data, records, args.receiver)
    return asyncio.run(_send_async(address, request, records, args.wait))


def _refusal_lines(refusal: lpb.RecordRefusal, records: Sequence[Record]) -> list[str]:
    record = records[refusal.index] if refusal.index < len(records) else None
    what = f"{record.record_type.value} {record_key(record)}" if record is not None else "?"
    rejection = refusal.rejection
    lines = [
        f"refused record {refusal.index + 1} ({what}): {rejection.message} [{rejection.reason}]"
    ]
    lines += [f"    {v.field}: {v.description} [{v.rule}]" for v in rejection.field_violations]
    return lines


async def _send_async(
    address: str, request: lpb.SendBatchRequest, records: Sequence[Record], wait: float
) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = lgrpc.LocalServiceStub(channel)
        try:
            response = await stub.SendBatch(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise PeerUnavailable(
                    f"no node answers at {address}: {escape_controls(exc.details() or '')}"
                ) from exc
            print(
                f"refused: {exc.code().name}: {escape_controls(exc.details() or '')}",
                file=sys.stderr,
            )
            return 1
        if response.refusals:
            for refusal in response.refusals:
                for line in _refusal_lines(refusal, records):
                    print(escape_controls(line), file=sys.stderr)
            print(
                f"nothing queued: {len(response.refusals)} of {len(records)} record(s) refused",
                file=sys.stderr,
            )
            return 1
        queued = 0
        for record, sent in zip(records, response.results, strict=True):
            note = "  (already queued)" if sent.duplicate else ""
            queued += not sent.duplicate
            print(
                f"{escape_controls(sent.message_id)}  {record.record_type.value:<21} → "
                f"{escape_controls(sent.receiver)}{note}"
            )
        print(
            f"{queued} queued, {len(records) - queued} already queued, 0 refused "
            f"({len(records)} record(s) in the file)"
        )
        if wait > 0:
            return await _await_receipts(stub, [r.message_id for r in response.results], wait)
    return 0


async def _await_receipts(
    stub: lgrpc.LocalServiceAsyncStub, message_ids: list[str], wait: float
) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pending = set(message_ids)
    while pending and loop.time() < deadline:
        for message_id in sorted(pending):
            state = await stub.GetMessage(lpb.GetMessageRequest(message_id=message_id), timeout=5)
            if state.state == lpb.MESSAGE_STATE_DELIVERED:
                print(
                    f"{message_id}  delivered, receipt signed by {escape_controls(state.receiver)}"
                )
                pending.discard(message_id)
            elif state.state == lpb.MESSAGE_STATE_REJECTED:
                print(
                    f"{message_id}  rejected: {escape_controls(state.last_error)}", file=sys.stderr
                )
                pending.discard(message_id)
        await asyncio.sleep(0.2)
    if pending:
        print(f"{len(pending)} message(s) not yet delivered", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(args.workdir, keep_running=args.keep_running)
