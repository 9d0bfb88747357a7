"""Console operators and sessions (:class:`~gateway.store.reads.OperatorRecords`), both engines."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3

from store_support import Harness

from gateway.store.reads import OperatorRow, SessionRow
from gateway.store.sqlite import SqliteStore

T0 = 1_790_000_000.0


def operator(username: str, role: str = "viewer", at: float = T0) -> OperatorRow:
    return OperatorRow(username, role, f"$argon2id$hash-of-{username}", at, at)


def session(token: str, username: str, *, at: float = T0, lifetime: float = 3600) -> SessionRow:
    return SessionRow(
        hashlib.sha256(token.encode()).digest(), username, f"csrf-{token}", at, at + lifetime
    )


async def test_operators_add_get_list_update_remove(harness: Harness) -> None:
    store = harness.store
    assert await store.add_operator(operator("zhang.wei", "admin"))
    assert await store.add_operator(operator("li.na", "officer"))
    assert not await store.add_operator(operator("li.na", "viewer"))  # the username is taken
    assert await store.get_operator("li.na") == operator("li.na", "officer")
    assert await store.get_operator("nobody") is None
    assert [o.username for o in await store.list_operators()] == ["li.na", "zhang.wei"]

    assert await store.update_operator("li.na", at=T0 + 5, role="admin")
    got = await store.get_operator("li.na")
    assert got is not None and (got.role, got.updated_at, got.created_at) == ("admin", T0 + 5, T0)
    assert got.password_hash == "$argon2id$hash-of-li.na"
    assert await store.update_operator("li.na", at=T0 + 6, password_hash="$argon2id$new")
    got = await store.get_operator("li.na")
    assert got is not None and (got.role, got.password_hash) == ("admin", "$argon2id$new")
    assert not await store.update_operator("nobody", at=T0, role="admin")

    assert await store.remove_operator("li.na")
    assert not await store.remove_operator("li.na")
    assert [o.username for o in await store.list_operators()] == ["zhang.wei"]


async def test_sessions_join_their_operator_and_end(harness: Harness) -> None:
    store = harness.store
    await store.add_operator(operator("zhang.wei", "admin"))
    await store.add_operator(operator("li.na"))
    first, second, other = (
        session("t1", "zhang.wei"),
        session("t2", "zhang.wei"),
        session("t3", "li.na"),
    )
    for row in (first, second, other):
        await store.create_session(row, expire_before=T0)
    found = await store.get_session(first.token_sha256)
    assert found == (first, operator("zhang.wei", "admin"))
    assert await store.get_session(hashlib.sha256(b"unknown").digest()) is None

    await store.end_session(first.token_sha256)
    assert await store.get_session(first.token_sha256) is None
    assert await store.get_session(second.token_sha256) is not None

    # A new password ends every session of that operator, and only theirs.
    await store.update_operator("zhang.wei", at=T0 + 1, password_hash="x", end_sessions=True)
    assert await store.get_session(second.token_sha256) is None
    assert await store.get_session(other.token_sha256) is not None
    # A role change keeps the sessions unless asked.
    await store.create_session(session("t4", "zhang.wei"), expire_before=T0)
    await store.update_operator("zhang.wei", at=T0 + 2, role="viewer")
    kept = await store.get_session(session("t4", "zhang.wei").token_sha256)
    assert kept is not None and kept[1].role == "viewer"
    # Removing an operator removes its sessions.
    await store.remove_operator("li.na")
    assert await store.get_session(other.token_sha256) is None


async def test_creating_a_session_drops_the_expired_ones(harness: Harness) -> None:
    store = harness.store
    await store.add_operator(operator("zhang.wei"))
    stale = session("old", "zhang.wei", at=T0 - 7200, lifetime=3600)  # expired at T0 - 3600
    live = session("live", "zhang.wei", at=T0 - 60, lifetime=3600)
    for row in (stale, live):
        await store.create_session(row, expire_before=T0 - 7200)
    assert await store.get_session(stale.token_sha256) is not None  # the store keeps rows
    fresh = session("new", "zhang.wei")
    await store.create_session(fresh, expire_before=T0)
    assert await store.get_session(stale.token_sha256) is None
    assert await store.get_session(live.token_sha256) is not None
    assert await store.get_session(fresh.token_sha256) is not None


# The tables as the console created them in a node's SQLite file before the store owned them.
_OLD_CONSOLE_TABLES = """
CREATE TABLE console_operators (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE TABLE console_sessions (
    token_sha256 BLOB PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES console_operators (username) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (username);
INSERT INTO console_operators VALUES ('wang.fang', 'officer', '$argon2id$old', 1.5, 2.5);
"""


async def test_a_sqlite_file_with_the_consoles_tables_keeps_its_operators(harness: Harness) -> None:
    if harness.engine != "sqlite":
        return
    store = harness.store
    assert isinstance(store, SqliteStore)
    await store.close()
    path = store.path.with_name("older.db")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(_OLD_CONSOLE_TABLES)
    async with SqliteStore(path, bureau=store.bureau) as older:
        assert await older.get_operator("wang.fang") == OperatorRow(
            "wang.fang", "officer", "$argon2id$old", 1.5, 2.5
        )
        assert await older.add_operator(operator("zhao.lei"))
        await older.create_session(session("t", "wang.fang"), expire_before=T0)
        assert await older.get_session(session("t", "wang.fang").token_sha256) is not None
