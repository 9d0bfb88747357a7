"""The operator console: an aiohttp application on its own port, run with the node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config import ConsoleSettings
from gateway.errors import ConfigInvalid

if TYPE_CHECKING:
    from gateway.node import GatewayNode

__all__ = ["Console"]


class Console:
    """Serves the console for one node. ``port`` is known after :meth:`start`."""

    def __init__(self, node: GatewayNode, settings: ConsoleSettings) -> None:
        self.node = node
        self.settings = settings
        self.port = 0
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self._runner: web.AppRunner | None = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "bureau": self.node.bureau})

    async def start(self) -> None:
        host, _, port = self.settings.listen.rpartition(":")
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigInvalid(f"console cannot listen on {self.settings.listen}: {exc}") from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else int(port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
