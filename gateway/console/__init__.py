"""The operator console: an aiohttp application on its own port, run with the node.

Pages (overview, transfers, record detail, live tail, dead letters), the JSON API
behind them (``/api/openapi.json``), Prometheus ``/metrics``, ``/healthz`` and
``/readyz``. Operators log in; see ``docs/console.md``. The console is built over a
:class:`ConsoleBackend` (what it needs of a node) by :mod:`gateway.app`.
"""

from __future__ import annotations

from gateway.console.accounts import AccountStore, Permission, Role
from gateway.console.app import Console
from gateway.console.backend import ConsoleBackend, PeerStatus
from gateway.console.routes import ROUTES, RouteSpec

__all__ = [
    "ROUTES",
    "AccountStore",
    "Console",
    "ConsoleBackend",
    "PeerStatus",
    "Permission",
    "Role",
    "RouteSpec",
]
