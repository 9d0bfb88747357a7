"""Durable storage: the :class:`Store` interface and its engines."""

from __future__ import annotations

from gateway.store.base import InboundAcceptance, InboundRow, OutboundRow, OutboundState, Store
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore

__all__ = [
    "InboundAcceptance",
    "InboundRow",
    "OutboundRow",
    "OutboundState",
    "PostgresStore",
    "SqliteStore",
    "Store",
]
