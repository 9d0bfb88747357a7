"""Operator accounts, log-in throttling, PI masking, the ``operators`` and ``log tail`` commands."""

from __future__ import annotations

import asyncio
import io
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from console_support import AGREEMENTS, SUINING, TONGLIANG

from gateway.app import operator_records
from gateway.cli import main
from gateway.cli.log import format_entry
from gateway.config import load_config
from gateway.console import AccountStore, Role
from gateway.console.accounts import LoginThrottle
from gateway.console.record_view import mask_record
from gateway.pki import PkiLayout
from gateway.privacy import PIKind
from gateway.records import EnforcementReferral, personal_info_paths
from gateway.translog import LogEntry

T = TypeVar("T")


def _config_file(pki: PkiLayout, tmp_path: Path, storage: dict[str, Any]) -> Path:
    paths = pki.bureau(TONGLIANG)
    table = "".join(f'{key} = "{value}"\n' for key, value in storage.items())
    config = tmp_path / "node.toml"
    config.write_text(
        f"""
[node]
bureau = "{TONGLIANG}"
database = "data/{TONGLIANG}.db"

[tls]
ca = "{pki.ca_cert}"
cert = "{paths.tls_cert}"
key = "{paths.tls_key}"

[signing]
cert = "{paths.signing_cert}"
key = "{paths.signing_key}"

[agreements]
directory = "{AGREEMENTS}"

[[partners]]
bureau = "{SUINING}"
address = "127.0.0.1:1"
{"[storage]" if table else ""}
{table}""",
        encoding="utf-8",
    )
    return config


def _run(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(argv)


def test_operators_command(
    pki: PkiLayout,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    storage: dict[str, dict[str, Any]],
) -> None:
    """On either engine: the command opens the store the configuration names."""
    config = str(_config_file(pki, tmp_path, storage[TONGLIANG]))
    password = secrets.token_urlsafe(16)
    add = ["operators", "add", "--config", config, "tl-zhang01", "--password-stdin"]
    assert _run(monkeypatch, [*add, "--role", "officer"], password + "\n") == 0
    assert _run(monkeypatch, add, password + "\n") == 1  # exists already
    assert _run(monkeypatch, [*add[:4], "tl-short", "--password-stdin"], "short\n") == 1
    assert _run(monkeypatch, [*add[:4], "张三", "--password-stdin"], password + "\n") == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "at least 10" in err and "username" in err
    assert password not in err

    node_config = load_config(Path(config))
    # The rows went where the configuration keeps the node's store, and only there.
    assert (tmp_path / "data" / f"{TONGLIANG}.db").exists() is not bool(storage[TONGLIANG])

    async def accounts(job: Callable[[AccountStore], Awaitable[T]]) -> T:
        async with operator_records(node_config) as records:
            return await job(AccountStore(records))

    async def first_session(store: AccountStore) -> str:
        officer = await store.authenticate("tl-zhang01", password)
        assert officer is not None and officer.role is Role.OFFICER
        token, _ = await store.create_session(officer, 60)
        assert await store.session(token) is not None
        stored = await store.records.get_operator("tl-zhang01")
        assert stored is not None and stored.password_hash.startswith("$argon2id$")
        return token

    token = asyncio.run(accounts(first_session))

    assert _run(monkeypatch, ["operators", "list", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "tl-zhang01" in out and "officer" in out
    new_password = secrets.token_urlsafe(16)
    passwd = ["operators", "passwd", "--config", config, "tl-zhang01", "--password-stdin"]
    assert _run(monkeypatch, [*passwd, "--role", "admin"], new_password + "\n") == 0

    async def after_passwd(store: AccountStore) -> None:
        assert await store.session(token) is None  # a new password ends the old sessions
        assert await store.authenticate("tl-zhang01", password) is None
        changed = await store.authenticate("tl-zhang01", new_password)
        assert changed is not None and changed.role is Role.ADMIN

    asyncio.run(accounts(after_passwd))
    assert _run(monkeypatch, ["operators", "remove", "--config", config, "tl-zhang01"]) == 0
    assert _run(monkeypatch, ["operators", "remove", "--config", config, "tl-zhang01"]) == 1
    assert asyncio.run(accounts(AccountStore.list)) == []


def test_password_is_never_an_argument() -> None:
    with pytest.raises(SystemExit):
        main(["operators", "add", "--config", "x.toml", "someone", "--password", "secret12345"])


def test_throttle_locks_for_a_growing_period() -> None:
    throttle = LoginThrottle(user_limit=5, address_limit=20, base_seconds=30, max_seconds=3600)
    for i in range(4):
        throttle.failed("alice", "10.0.0.1", now=i)
    assert throttle.retry_after("alice", "10.0.0.1", now=4) == 0
    throttle.failed("alice", "10.0.0.1", now=4)
    assert throttle.retry_after("alice", "10.0.0.1", now=4) == 30
    throttle.failed("alice", "10.0.0.1", now=40)
    assert throttle.retry_after("alice", "10.0.0.1", now=40) == 60
    assert throttle.retry_after("bob", "10.0.0.2", now=40) == 0
    throttle.succeeded("alice")
    assert throttle.retry_after("alice", "10.0.0.9", now=41) == 0
    # The address keeps its count: a good log-in does not reset a password spray.
    for i in range(14):
        throttle.failed(f"user{i}", "10.0.0.1", now=50 + i)
    assert throttle.retry_after("carol", "10.0.0.1", now=64) > 0


def test_mask_record_follows_nested_paths() -> None:
    paths = personal_info_paths(EnforcementReferral)
    assert paths["contact_phone"] is PIKind.PHONE
    data = {
        "party": {"name": "某公司", "id_number": "11010519491231002X", "address": "x"},
        "contact_name": "赵六",
        "contact_phone": "0825-2220000",
        "evidence": [{"name": "笔录"}],
    }
    found = mask_record(data, paths)
    assert sorted(found) == ["contact_name", "contact_phone", "party.id_number"]
    assert data["contact_name"] == "赵*"
    assert data["party"] == {"name": "某公司", "id_number": "110105********002X", "address": "x"}


def test_log_tail_colour_only_when_asked() -> None:
    entry = LogEntry(
        seq=7,
        at="2026-11-27T01:30:00.000000+00:00",
        kind="dead_lettered",
        direction="outbound",
        peer=SUINING,
        message_id="00000000-0000-4000-8000-000000000000",
        record_type="consumer_complaint",
        detail='{"attempts":3}',
        prev_hash=bytes(32),
        hash=bytes(32),
    )
    plain = format_entry(entry)
    coloured = format_entry(entry, colour=True)
    assert "\x1b[" not in plain
    assert "\x1b[1;31mdead_lettered" in coloured
    # Same columns once the codes are stripped.
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
