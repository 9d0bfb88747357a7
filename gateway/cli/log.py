"""``log tail`` and ``log verify``: reading a node's transfer log from its store.

The log is read from the SQLite file (``--db``), from a PostgreSQL schema (``--dsn`` and
``--schema``), or from wherever the node's configuration keeps it (``--config``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from gateway.clock import beijing
from gateway.config import load_config
from gateway.errors import ConfigInvalid
from gateway.privacy import escape_controls
from gateway.store import OfflineReader, open_offline
from gateway.translog import LogEntry, verify_chain

__all__ = ["db_arguments", "format_entry", "open_reader", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    log = subparsers.add_parser("log", help="read a node's transfer log")
    commands = log.add_subparsers(dest="log_command", required=True, metavar="COMMAND")

    tail = commands.add_parser("tail", help="print the latest transfer-log entries")
    db_arguments(tail)
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many entries (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    tail.add_argument(
        "--color",
        "--colour",
        dest="color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the columns: auto (only on a terminal, honouring NO_COLOR), always, never",
    )
    tail.set_defaults(handler=_tail)

    verify = commands.add_parser("verify", help="prove the hash chain intact")
    db_arguments(verify)
    verify.set_defaults(handler=_verify)


def db_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--db", type=Path, help="the node's SQLite database")
    group.add_argument("--dsn", help="the PostgreSQL database holding the node's schema")
    group.add_argument("--config", type=Path, help="the node's configuration")
    parser.add_argument("--schema", help="with --dsn: the node's schema (e.g. chuanyu_500151)")


def open_reader(args: argparse.Namespace, key_file: Path | None = None) -> OfflineReader:
    """The offline reader of the store named by ``--db``, ``--dsn``/``--schema`` or
    ``--config`` (for ``log`` and ``envelope export``)."""
    if args.dsn is not None or args.schema is not None:
        if args.dsn is None or args.schema is None:
            raise ConfigInvalid("--dsn and --schema go together")
        return open_offline(dsn=args.dsn, schema=args.schema, key_file=key_file)
    if args.db is not None:
        return open_offline(path=args.db, key_file=key_file)
    return open_offline(config=load_config(args.config), key_file=key_file)


# ANSI SGR codes per event kind: green for progress, yellow for waiting or repeating,
# red for refusals and dead letters, magenta for an operator seeing personal data.
_RESET, _DIM, _BOLD, _CYAN = "\x1b[0m", "\x1b[2m", "\x1b[1m", "\x1b[36m"
_KIND_COLOURS = {
    "accepted_from_local": "\x1b[32m",
    "signed": "\x1b[32m",
    "sent": "\x1b[1;32m",
    "receipt_stored": "\x1b[32m",
    "received": "\x1b[1;32m",
    "receipt_issued": "\x1b[32m",
    "delivered_to_local": "\x1b[32m",
    "retry_scheduled": "\x1b[33m",
    "resealed": "\x1b[33m",
    "duplicate": "\x1b[33m",
    "redriven": "\x1b[1;33m",
    "rejected": "\x1b[1;31m",
    "rejected_from_local": "\x1b[1;31m",
    "rejected_by_peer": "\x1b[1;31m",
    "dead_lettered": "\x1b[1;31m",
    "personal_data_viewed": "\x1b[35m",
}


def format_entry(entry: LogEntry, *, colour: bool = False) -> str:
    """One entry as a line of columns. Every value is shown with its control characters
    escaped (a peer chooses message ids and error texts), before padding and colour."""
    at = beijing(dt.datetime.fromisoformat(entry.at), "%m-%d %H:%M:%S")
    detail = json.loads(entry.detail)
    extra = " ".join(f"{k}={v}" for k, v in sorted(detail.items()) if v not in ("", None))
    arrow = {"outbound": "→", "inbound": "←"}.get(entry.direction, "·")
    kind, peer, record_type, message_id, extra = (
        escape_controls(text)
        for text in (entry.kind, entry.peer, entry.record_type, entry.message_id, extra)
    )
    columns = [
        f"{entry.seq:>6}",
        at,
        f"{kind:<19}",
        arrow,
        f"{peer or '-':<6}",
        f"{record_type or '-':<21}",
        f"{message_id or '-':<36}",
        extra,
    ]
    if colour:
        # Padding is applied before the codes, so coloured columns line up like plain ones.
        styles = [_DIM, _DIM, _KIND_COLOURS.get(kind, ""), _BOLD, _CYAN, "", "", _DIM]
        columns = [
            f"{style}{text}{_RESET}" if style else text
            for style, text in zip(styles, columns, strict=True)
        ]
    return " ".join(columns).rstrip()


def _use_colour(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    return (
        sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    )


def _tail(args: argparse.Namespace) -> int:
    colour = _use_colour(args.color)
    with open_reader(args) as reader:
        entries = list(reader.iter_log())
        for entry in entries[-args.lines :] if args.lines > 0 else []:
            print(format_entry(entry, colour=colour))
        if not args.follow:
            return 0
        last = entries[-1].seq if entries else 0
        try:
            while True:
                for entry in reader.iter_log(last):
                    print(format_entry(entry, colour=colour), flush=True)
                    last = entry.seq
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0


def _verify(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        verdict = verify_chain(reader.iter_log())
        location = escape_controls(reader.location)
    if verdict.ok:
        print(
            f"{location}: transfer log intact, {verdict.entries} entries, head {verdict.head.hex()}"
        )
        return 0
    print(
        f"{location}: transfer log BROKEN at entry {verdict.first_bad_seq}: "
        f"{escape_controls(verdict.problem)} "
        f"({verdict.entries} entries before it verify)",
        file=sys.stderr,
    )
    return 1
