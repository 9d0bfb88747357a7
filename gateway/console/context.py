"""What a page may use of the console it is served by.

Pages depend on this protocol, not on :class:`~gateway.console.app.Console`, so the
application imports its pages and no page imports the application.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import web

from gateway.config import ConsoleSettings
from gateway.console.accounts import AccountStore, LoginThrottle
from gateway.console.auth import Guard
from gateway.console.backend import ConsoleBackend
from gateway.console.health import IntegrityMonitor
from gateway.console.metrics import NodeMetrics

__all__ = ["PageContext"]


class PageContext(Protocol):
    backend: ConsoleBackend
    settings: ConsoleSettings
    accounts: AccountStore
    metrics: NodeMetrics
    throttle: LoginThrottle
    guard: Guard
    integrity: IntegrityMonitor
    tail_poll: float
    closing: asyncio.Event

    def peer_name(self, bureau: str) -> str:
        """The partner's name as configured, else its bureau's, else its code."""

    def render(
        self,
        request: web.Request,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
    ) -> web.Response:
        """A page from ``template``, with the operator's session in its context."""
