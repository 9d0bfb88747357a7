"""``dead-letters list|redrive`` and ``reconcile``: operators' tools against a running node."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from chuanyu.exchange.v1 import operator_service_pb2 as opb
from chuanyu.exchange.v1 import operator_service_pb2_grpc as ogrpc
from gateway.checkpoint import verify_checkpoint
from gateway.clock import BEIJING, beijing, from_timestamp, to_timestamp, utc_now
from gateway.codec import record_type_from_proto
from gateway.config import load_config
from gateway.errors import ConfigInvalid, GatewayError, PeerUnavailable
from gateway.pki import SigningCertificateVerifier, load_certificates
from gateway.privacy import escape_controls

__all__ = ["register"]

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dead = subparsers.add_parser("dead-letters", help="list or re-drive dead letters")
    commands = dead.add_subparsers(dest="dead_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="messages that gave up, with their last error")
    _target(listing)
    listing.add_argument("--limit", type=int, default=1000)
    listing.set_defaults(handler=_list)
    redrive = commands.add_parser("redrive", help="put dead letters back in the queue")
    _target(redrive)
    which = redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument("message_ids", nargs="*", default=[], metavar="MESSAGE_ID")
    redrive.add_argument("--operator", default="", help="who asks (default: the login name)")
    redrive.set_defaults(handler=_redrive)

    reconcile = subparsers.add_parser(
        "reconcile", help="compare this node's account of a period with a partner's"
    )
    _target(reconcile)
    reconcile.add_argument(
        "--ca", type=Path, help="cooperation CA certificate (default: the config's tls.ca)"
    )
    reconcile.add_argument("--peer", default="", help="partner bureau (default: the only one)")
    reconcile.add_argument("--from", dest="start", help="start, ISO 8601 (default: a day ago)")
    reconcile.add_argument("--until", dest="end", help="end, ISO 8601 (default: now)")
    reconcile.set_defaults(handler=_reconcile)


def _target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", type=Path, help="the node's configuration")
    group.add_argument("--local", help="the node's local-service address, host:port")


def _stub(args: argparse.Namespace) -> tuple[str, Path | None]:
    if args.config is None:
        return args.local, getattr(args, "ca", None)
    node = load_config(args.config)
    return node.listen.local, getattr(args, "ca", None) or node.tls.ca


async def _call(address: str, call: str, request: object) -> T:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ogrpc.OperatorServiceStub(channel)
        try:
            response: T = await getattr(stub, call)(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            details = escape_controls(exc.details() or "")
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise PeerUnavailable(f"no node answers at {address}: {details}") from exc
            raise PeerUnavailable(f"{exc.code().name}: {details}") from exc
    return response


def _say(line: str, *, error: bool = False) -> None:
    # Ids, record keys and error texts come from local callers and partners: a control
    # character among them must not move the cursor, retitle the terminal or forge a line.
    print(escape_controls(line), file=sys.stderr if error else sys.stdout)


def _when(ts: Timestamp) -> str:
    return beijing(from_timestamp(ts))


def _list(args: argparse.Namespace) -> int:
    address, _ = _stub(args)
    response: opb.ListDeadLettersResponse = asyncio.run(
        _call(address, "ListDeadLetters", opb.ListDeadLettersRequest(limit=args.limit))
    )
    if not response.dead_letters:
        print("no dead letters")
        return 0
    for d in response.dead_letters:
        kind = record_type_from_proto(d.record_type).value
        _say(
            f"{d.message_id}  → {d.receiver}  {kind:<21} {d.record_key:<24} "
            f"created {_when(d.created_at)}  {d.attempts} attempt(s)"
        )
        _say(f"    last error: {d.last_error}")
    print(f"{len(response.dead_letters)} dead letter(s)")
    return 0


def _redrive(args: argparse.Namespace) -> int:
    address, _ = _stub(args)
    ids = list(args.message_ids)
    if args.all:
        listed: opb.ListDeadLettersResponse = asyncio.run(
            _call(address, "ListDeadLetters", opb.ListDeadLettersRequest(limit=10_000))
        )
        ids = [d.message_id for d in listed.dead_letters]
    if not ids:
        print("nothing to re-drive")
        return 0
    operator = args.operator or getpass.getuser()
    response: opb.RedriveDeadLettersResponse = asyncio.run(
        _call(
            address,
            "RedriveDeadLetters",
            opb.RedriveDeadLettersRequest(message_ids=ids, operator=operator),
        )
    )
    for message_id in response.redriven:
        _say(f"{message_id}  re-driven")
    for message_id in response.not_dead_lettered:
        _say(f"{message_id}  not a dead letter: left alone", error=True)
    return 0 if not response.not_dead_lettered else 1


def _parse_time(value: str | None, default: dt.datetime) -> Timestamp:
    if value is None:
        return to_timestamp(default)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigInvalid(f"{value!r} is not an ISO 8601 date or time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=BEIJING)  # operators think in Beijing time
    return to_timestamp(parsed)


def _reconcile(args: argparse.Namespace) -> int:
    address, ca = _stub(args)
    now = utc_now()
    request = opb.ReconcilePeriodRequest(
        peer=args.peer,
        period_start=_parse_time(args.start, now - dt.timedelta(days=1)),
        period_end=_parse_time(args.end, now),
    )
    response: opb.ReconcilePeriodResponse = asyncio.run(_call(address, "ReconcilePeriod", request))
    if ca is None:
        raise ConfigInvalid("name the cooperation CA certificate with --ca (or use --config)")
    verifier = SigningCertificateVerifier(load_certificates(ca))
    try:
        theirs = verify_checkpoint(
            response.theirs, issuer=response.peer, verifier=verifier, now=now
        )
    except GatewayError as exc:
        _say(f"the partner's checkpoint does not verify: {exc.message}", error=True)
        return 1
    _say(
        f"reconciliation with {response.peer} for {_when(response.period_start)} … "
        f"{_when(response.period_end)} (Beijing time)"
    )
    print(f"  partner's checkpoint verified (log at entry {theirs.log_seq})")
    for label, ids in (
        (f"sent by us, missing at {response.peer}", response.missing_at_peer),
        (f"sent by {response.peer}, missing here", response.missing_here),
    ):
        _say(f"  {label}: {len(ids)}")
        for message_id in ids:
            _say(f"    {message_id}")
    gaps = len(response.missing_at_peer) + len(response.missing_here)
    print("  no gaps" if gaps == 0 else f"  {gaps} gap(s)")
    return 0 if gaps == 0 else 1
