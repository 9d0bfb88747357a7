"""``log tail`` and ``log verify``: reading a node's transfer log from its database file."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from gateway.config import load_config
from gateway.store.sqlite import iter_log_file
from gateway.translog import LogEntry, verify_chain

__all__ = ["format_entry", "register"]

_BEIJING = dt.timezone(dt.timedelta(hours=8))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    log = subparsers.add_parser("log", help="read a node's transfer log")
    commands = log.add_subparsers(dest="log_command", required=True, metavar="COMMAND")

    tail = commands.add_parser("tail", help="print the latest transfer-log entries")
    _db_arguments(tail)
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many entries (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    tail.set_defaults(handler=_tail)

    verify = commands.add_parser("verify", help="prove the hash chain intact")
    _db_arguments(verify)
    verify.set_defaults(handler=_verify)


def _db_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--db", type=Path, help="the node's SQLite database")
    group.add_argument("--config", type=Path, help="the node's configuration")


def _database(args: argparse.Namespace) -> Path:
    if args.db is not None:
        path: Path = args.db
        return path
    return load_config(args.config).node.database


def format_entry(entry: LogEntry) -> str:
    at = dt.datetime.fromisoformat(entry.at).astimezone(_BEIJING).strftime("%m-%d %H:%M:%S")
    detail = json.loads(entry.detail)
    extra = " ".join(f"{k}={v}" for k, v in sorted(detail.items()) if v not in ("", None))
    arrow = {"outbound": "→", "inbound": "←"}.get(entry.direction, "·")
    return (
        f"{entry.seq:>6} {at} {entry.kind:<19} {arrow} {entry.peer or '-':<6} "
        f"{entry.record_type or '-':<21} {entry.message_id or '-':<36} {extra}"
    ).rstrip()


def _tail(args: argparse.Namespace) -> int:
    path = _database(args)
    entries = list(iter_log_file(path))
    for entry in entries[-args.lines :] if args.lines > 0 else []:
        print(format_entry(entry))
    if not args.follow:
        return 0
    last = entries[-1].seq if entries else 0
    try:
        while True:
            for entry in iter_log_file(path, after_seq=last):
                print(format_entry(entry), flush=True)
                last = entry.seq
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def _verify(args: argparse.Namespace) -> int:
    path = _database(args)
    verdict = verify_chain(iter_log_file(path))
    if verdict.ok:
        print(f"{path}: transfer log intact, {verdict.entries} entries, head {verdict.head.hex()}")
        return 0
    print(
        f"{path}: transfer log BROKEN at entry {verdict.first_bad_seq}: {verdict.problem} "
        f"({verdict.entries} entries before it verify)",
        file=sys.stderr,
    )
    return 1
