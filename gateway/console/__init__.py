"""The operator console: an aiohttp application on its own port, run with the node.

Pages (overview, transfers, record detail, live tail, dead letters), the JSON API
behind them (``/api/openapi.json``), Prometheus ``/metrics``, ``/healthz`` and
``/readyz``. Operators log in; see ``docs/console.md``.
"""

from __future__ import annotations

from gateway.console.accounts import AccountStore, Permission, Role
from gateway.console.web import ROUTES, Console

__all__ = ["ROUTES", "AccountStore", "Console", "Permission", "Role"]
