"""The PostgreSQL schema of one node, its migrations, and the rules for schema names."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
import asyncpg.pool

from gateway.store.tables import LATER_INDEXES, POSTGRES_TABLES
from gateway.translog import GENESIS_HASH

__all__ = ["default_schema", "prepare", "valid_schema_name"]

if TYPE_CHECKING:  # the driver's classes are generic in its stubs only
    Conn: TypeAlias = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_DDL = (
    POSTGRES_TABLES
    + f"""
-- The chain head: one row, locked by every writing transaction of every replica.
CREATE TABLE IF NOT EXISTS log_head (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO log_head VALUES (1, 0, '\\x{GENESIS_HASH.hex()}') ON CONFLICT DO NOTHING;
"""
)


def default_schema(bureau: str) -> str:
    """The schema a node uses when the configuration names none."""
    return f"chuanyu_{bureau}".lower()


def valid_schema_name(name: str) -> bool:
    """Lower-case letters, digits and underscores, not starting with a digit, ≤ 63 bytes."""
    return _SCHEMA_NAME.fullmatch(name) is not None


async def prepare(conn: Conn, schema: str) -> None:
    """Create what is missing in ``schema`` and bring one made by an earlier version up to
    date (the caller holds the schema's advisory lock, in a transaction)."""
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.execute(_DDL)
    found = await conn.fetchval(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'outbox' AND column_name = 'age_from'"
    )
    if found is None:
        await conn.execute("ALTER TABLE outbox ADD COLUMN age_from TIMESTAMPTZ")
        await conn.execute("UPDATE outbox SET age_from = created_at")
    await conn.execute(LATER_INDEXES)
