"""``operators add|passwd|remove|list``: console accounts in a node's database.

Passwords are read with a prompt (twice) or, for scripts, one line from standard
input with ``--password-stdin``; never from the command line, where other users
of the machine and the shell history would see them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path

from gateway.config import load_config
from gateway.console.accounts import AccountStore, Role
from gateway.errors import ConfigInvalid

__all__ = ["register"]


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


def _accounts(args: argparse.Namespace) -> AccountStore:
    return AccountStore(load_config(args.config).node.database)


def _add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    with _accounts(args) as accounts:
        operator = accounts.add(args.username, Role(args.role), password)
    print(f"operator {operator.username} added ({operator.role.value})")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = _read_password(args)
    with _accounts(args) as accounts:
        accounts.set_password(args.username, password)
        if args.role:
            accounts.set_role(args.username, Role(args.role))
    print(f"operator {args.username}: password changed, sessions ended")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with _accounts(args) as accounts:
        accounts.remove(args.username)
    print(f"operator {args.username} removed")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _accounts(args) as accounts:
        operators = accounts.list()
    for operator in operators:
        changed = dt.datetime.fromtimestamp(operator.updated_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        print(f"{operator.username:<24} {operator.role.value:<8} changed {changed} UTC")
    if not operators:
        print("no operators")
    return 0
