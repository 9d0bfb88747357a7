"""``convert`` and ``adapter list|check``: local files in and out of the gateway's formats.

``convert`` takes the same path as the node (:func:`gateway.convert.convert`) and
writes its output only when the whole input was accepted: a refused file leaves
no output file behind, and an existing one untouched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from gateway.adapter import EncodeContext, available_adapters, load_adapter
from gateway.clock import BEIJING
from gateway.convert import convert
from gateway.errors import GatewayError
from gateway.files import write_atomically

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    converter = subparsers.add_parser(
        "convert",
        help="convert a local file between two adapters' formats",
        description=(
            "Decode INPUT with adapter --from, validate every record, encode with adapter --to. "
            f"Adapters: {', '.join(available_adapters())}. Use - for stdin or stdout."
        ),
    )
    converter.add_argument("--from", dest="source", required=True, metavar="NAME")
    converter.add_argument("--to", dest="target", required=True, metavar="NAME")
    converter.add_argument("input", metavar="INPUT")
    converter.add_argument("output", metavar="OUTPUT")
    converter.add_argument(
        "--sender", metavar="DIVISION", help="sender bureau written in a batch header"
    )
    converter.add_argument("--batch-id", metavar="ID", help="batch id written in a batch header")
    converter.add_argument(
        "--sent-at",
        metavar="ISO8601",
        type=_moment,
        help="sent-at time for a batch header; without an offset it is Beijing time",
    )
    converter.set_defaults(handler=_convert)

    adapter = subparsers.add_parser("adapter", help="list installed adapters or check one")
    actions = adapter.add_subparsers(dest="adapter_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="installed adapters and their formats")
    listing.set_defaults(handler=_list)
    check = actions.add_parser(
        "check",
        help="run the conformance kit on an adapter",
        description="Run the conformance kit; exits 1 when any check fails.",
    )
    check.add_argument("name", metavar="NAME")
    check.add_argument("--samples", required=True, type=Path, metavar="DIR")
    check.add_argument("--max-examples", type=int, default=25, metavar="N")
    check.set_defaults(handler=_check)


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text}") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)


def _convert(args: argparse.Namespace) -> int:
    try:
        data = sys.stdin.buffer.read() if args.input == "-" else Path(args.input).read_bytes()
    except OSError as exc:
        print(f"chuanyu-gateway: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return 1
    context = EncodeContext(sender_bureau=args.sender, batch_id=args.batch_id, sent_at=args.sent_at)
    output = convert(data, source=args.source, target=args.target, context=context)
    if args.output == "-":
        sys.stdout.buffer.write(output)
        sys.stdout.buffer.flush()
        return 0
    try:
        # A reader of OUTPUT sees the old file or the whole new one, never half of it.
        write_atomically(Path(args.output), output)
    except OSError as exc:
        print(f"chuanyu-gateway: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    status = 0
    for name in available_adapters():
        try:
            adapter = load_adapter(name)
        except GatewayError as exc:
            print(f"{name:<12} BROKEN: {exc.message}")
            status = 1
            continue
        bureau = adapter.bureau or "-"
        print(
            f"{name:<12} {adapter.file_suffix:<6} {adapter.media_type:<18} "
            f"{adapter.encoding:<8} {bureau:<7} {adapter.description}"
        )
    return status


def _check(args: argparse.Namespace) -> int:
    from gateway.conformance import check_adapter  # the checks load the models; only here

    report = check_adapter(args.name, args.samples, max_examples=args.max_examples)
    print(report.render())
    return 0 if report.passed else 1
