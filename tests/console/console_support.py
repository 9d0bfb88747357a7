"""Shared pieces of the console tests: node configs with a console, operators, clients."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc

# The end-to-end tests' sample records, configurations and polling (tests/e2e is on the
# test path, see pyproject.toml), re-exported for the console tests.
from exchange_support import (
    AGREEMENTS,
    COMPLAINT,
    REGISTRATION,
    SUINING,
    TONGLIANG,
    eventually,
    node_config,
    record,
)

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.app import console_of
from gateway.codec import record_to_proto
from gateway.console import Console, Role
from gateway.node import GatewayNode
from gateway.records import Record
from gateway.translog import LogEntry

__all__ = [
    "AGREEMENTS",
    "COMPLAINANT_NAME",
    "COMPLAINANT_PHONE",
    "COMPLAINT",
    "REGISTRATION",
    "SCREENSHOTS",
    "SUINING",
    "TONGLIANG",
    "Account",
    "ConsolePair",
    "add_operators",
    "console",
    "eventually",
    "http_session",
    "local_stub",
    "log_entries",
    "login",
    "node_config",
    "outbound_state",
    "record",
    "send_local",
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

# Synthetic people and numbers, as in the end-to-end tests' sample records.
COMPLAINANT_NAME = COMPLAINT["complainant"]["name"]
COMPLAINANT_PHONE = COMPLAINT["complainant"]["phone"]


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    role: Role


@dataclass
class ConsolePair:
    """Tongliang and Suining with consoles; Tongliang's operators in ``accounts``."""

    tongliang: GatewayNode
    suining: GatewayNode
    workdir: Path
    accounts: dict[Role, Account]
    metrics_token: str

    def url(self, node: GatewayNode | None = None) -> str:
        return f"http://127.0.0.1:{console(node or self.tongliang).port}"


def console(node: GatewayNode) -> Console:
    found = console_of(node)
    assert found is not None, f"node {node.bureau} has no console"
    return found


async def add_operators(node: GatewayNode) -> dict[Role, Account]:
    """One operator per role, through the node's own console accounts."""
    accounts: dict[Role, Account] = {}
    for role in Role:
        account = Account(f"tl-{role.value}", secrets.token_urlsafe(18), role)
        await console(node).accounts.add(account.username, role, account.password)
        accounts[role] = account
    return accounts


def http_session() -> aiohttp.ClientSession:
    # unsafe=True: aiohttp keeps no cookies from bare IP addresses otherwise.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, base: str, account: Account) -> str:
    """Log in with JSON; returns the session's CSRF token."""
    async with http.post(
        f"{base}/login", json={"username": account.username, "password": account.password}
    ) as response:
        assert response.status == 200, await response.text()
        token: str = (await response.json())["csrf_token"]
        return token


def local_stub(node: GatewayNode) -> tuple[grpc.aio.Channel, lgrpc.LocalServiceAsyncStub]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{node.local_port}")
    return channel, lgrpc.LocalServiceStub(channel)


async def send_local(node: GatewayNode, rec: Record) -> str:
    channel, stub = local_stub(node)
    async with channel:
        response = await stub.Send(lpb.SendRequest(record=record_to_proto(rec)), timeout=10)
        return response.message_id


async def log_entries(node: GatewayNode, kind: str = "") -> list[LogEntry]:
    """The node's transfer log through its own store (either engine), of one kind if given."""
    entries = await node.store.read_log(0, 1_000_000)
    return [e for e in entries if not kind or e.kind == kind]


async def outbound_state(node: GatewayNode, message_id: str) -> str:
    row = await node.store.get_outbound(message_id)
    return "" if row is None else row.state.value
