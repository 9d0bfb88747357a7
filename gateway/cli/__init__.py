"""The ``chuanyu-gateway`` command line.

Each module in this package adds its sub-commands through ``register(subparsers)``;
a sub-command sets ``handler`` to a function taking the parsed arguments and
returning the exit status. Errors of the gateway become one readable line on
stderr and a non-zero status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gateway.errors import GatewayError
from gateway.privacy import escape_controls

__all__ = ["main"]

_COMMAND_MODULES = (
    "gateway.cli.node",
    "gateway.cli.certs",
    "gateway.cli.log",
    "gateway.cli.envelope",
    "gateway.cli.adapters",
    "gateway.cli.operators",
    "gateway.cli.operations",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chuanyu-gateway",
        description="Chuanyu Gateway: signed record exchange between market-regulation bureaus.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except GatewayError as exc:
        print(f"chuanyu-gateway: {escape_controls(exc.message)} [{exc.reason}]", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
