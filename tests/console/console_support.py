"""Shared pieces of the console tests: node configs with a console, operators, clients."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.codec import record_to_proto
from gateway.config import NodeConfig, parse_config
from gateway.console import AccountStore, Role
from gateway.node import GatewayNode
from gateway.pki import PkiLayout
from gateway.records import Record, parse_record

TONGLIANG, SUINING = "500151", "510900"
AGREEMENTS = Path(__file__).resolve().parents[2] / "agreements"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

# Synthetic people and numbers (the id number is the GB 11643 example).
COMPLAINANT_NAME, COMPLAINANT_PHONE = "李四", "13800138000"

COMPLAINT: dict[str, Any] = {
    "record_type": "consumer_complaint",
    "complaint_number": "TS5001512026112700001",
    "registered_at": "2026-11-27T09:30:00+08:00",
    "channel": "hotline_12315",
    "complainant": {"name": COMPLAINANT_NAME, "phone": COMPLAINANT_PHONE},
    "respondent": {
        "name": "遂宁市船山区某某电器商行",
        "uscc": "92510903MA6AB7Q52D",
        "address": "四川省遂宁市船山区明月路8号",
        "division": "510903",
    },
    "subject": "空调",
    "category": "goods",
    "amount": "2999.00",
    "purchased_on": "2026-11-20",
    "facts": "安装后无法制冷，商家拒绝维修。",
    "request": "退货退款",
}

REGISTRATION: dict[str, Any] = {
    "record_type": "business_registration",
    "uscc": "91500151MA60K3C286",
    "name": "重庆龙乡优品食品有限公司",
    "entity_type": "有限责任公司(自然人投资或控股)",
    "legal_representative": "张三",
    "legal_representative_id_type": "resident_id",
    "legal_representative_id_number": "11010519491231002X",
    "registered_capital": "1000000.00",
    "registered_capital_currency": "CNY",
    "established_on": "2021-03-15",
    "address": "重庆市铜梁区东城街道龙城大道100号",
    "address_division": "500151",
    "business_scope": "食品销售；农副产品销售",
    "registration_authority": "重庆市铜梁区市场监督管理局",
    "status": "active",
    "approved_on": "2024-05-06",
}


def record(data: dict[str, Any], **changes: Any) -> Record:
    return parse_record({**data, **changes})


def node_config(
    pki: PkiLayout, bureau: str, partner: str, workdir: Path, **sections: dict[str, Any]
) -> NodeConfig:
    paths = pki.bureau(bureau)
    data: dict[str, Any] = {
        "node": {"bureau": bureau, "database": str(workdir / f"{bureau}.db")},
        "tls": {"ca": str(pki.ca_cert), "cert": str(paths.tls_cert), "key": str(paths.tls_key)},
        "signing": {"cert": str(paths.signing_cert), "key": str(paths.signing_key)},
        "listen": {"peer": "127.0.0.1:0", "local": "127.0.0.1:0"},
        # Port 1 refuses connections until the test routes the partner to its real port.
        "agreements": {"directory": str(AGREEMENTS)},
        "partners": [{"bureau": partner, "address": "127.0.0.1:1"}],
        "retry": {"base_seconds": 0.05, "cap_seconds": 0.5},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data, workdir / f"{bureau}.toml")


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
        console = (node or self.tongliang).console
        assert console is not None
        return f"http://127.0.0.1:{console.port}"


def add_operators(database: Path) -> dict[Role, Account]:
    accounts: dict[Role, Account] = {}
    with AccountStore(database) as store:
        for role in Role:
            account = Account(f"tl-{role.value}", secrets.token_urlsafe(18), role)
            store.add(account.username, role, account.password)
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


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it holds; fail with ``what`` if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def outbound_state(node: GatewayNode, message_id: str) -> str:
    row = await node.store.get_outbound(message_id)
    return "" if row is None else row.state.value
