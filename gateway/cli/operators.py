"""``operators add|passwd|remove|list``: console accounts in a node's database.

Passwords are read with a prompt (twice) or, for scripts, one line from standard
input with ``--password-stdin``; never from the command line, where other users
of the machine and the shell history would see them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from gateway.app import operator_records
from gateway.config import load_config
from gateway.console.accounts import AccountStore, Role
from gateway.errors import ConfigInvalid

__all__ = ["register"]

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    operators = subparsers.add_parser("operators", help="manage operator-console accounts")
    commands = operators.add_subparsers(dest="operators_command", required=True, metavar="COMMAND")

    add = commands.add_parser("add", help="create an operator")
    _common(add, username=True)
    add.add_argument(
        "--role", choices=[r.value for r in Role], default=Role.VIEWER.value, help="default viewer"
    )
    _password_source(add)
    add.set_defaults(handler=_add)

    passwd = commands.add_parser("passwd", help="set a new password (ends the operator's sessions)")
    _common(passwd, username=True)
    passwd.add_argument(
        "--role", choices=[r.value for r in Role], help="also change the operator's role"
    )
    _password_source(passwd)
    passwd.set_defaults(handler=_passwd)

    remove = commands.add_parser("remove", help="delete an operator and end their sessions")
    _common(remove, username=True)
    remove.set_defaults(handler=_remove)

    listing = commands.add_parser("list", help="list operators and roles")
    _common(listing, username=False)
    listing.set_defaults(handler=_list)


def _common(parser: argparse.ArgumentParser, *, username: bool) -> None:
    parser.add_argument("--config", type=Path, required=True, help="the node's configuration")
    if username:
        parser.add_argument("username", help="a staff id such as 'tl-zhang01' (not a real name)")


def _password_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (for scripts)",
    )


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("新密码 / new password: ")
    second = getpass.getpass("再次输入 / again: ")
    if first != second:
        raise ConfigInvalid("the two passwords differ")
    return first


def _accounts(args: argparse.Namespace, job: Callable[[AccountStore], Awaitable[T]]) -> T:
    config = load_config(args.config)

    async def run() -> T:
        async with operator_records(config) as records:
            return await job(AccountStore(records))

    return asyncio.run(run())


def _add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    operator = _accounts(args, lambda a: a.add(args.username, Role(args.role), password))
    print(f"operator {operator.username} added ({operator.role.value})")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = _read_password(args)

    async def change(accounts: AccountStore) -> None:
        await accounts.set_password(args.username, password)
        if args.role:
            await accounts.set_role(args.username, Role(args.role))

    _accounts(args, change)
    print(f"operator {args.username}: password changed, sessions ended")
    return 0


def _remove(args: argparse.Namespace) -> int:
    _accounts(args, lambda a: a.remove(args.username))
    print(f"operator {args.username} removed")
    return 0


def _list(args: argparse.Namespace) -> int:
    operators = _accounts(args, lambda a: a.list())
    for operator in operators:
        changed = dt.datetime.fromtimestamp(operator.updated_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        print(f"{operator.username:<24} {operator.role.value:<8} changed {changed} UTC")
    if not operators:
        print("no operators")
    return 0
