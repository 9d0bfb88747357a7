"""The console's aiohttp application: routes wired from :data:`ROUTES`, guarded, rendered.

A page and its API share the code that reads the data and differ only in how they
answer (HTML or JSON) and how they refuse (:mod:`gateway.console.errors` gives the
status; a page without a session is sent to the log-in form).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from gateway.config import ConsoleSettings
from gateway.console import labels
from gateway.console.accounts import AccountStore, LoginThrottle, Permission
from gateway.console.auth import SECURITY_HEADERS, SESSION, Guard
from gateway.console.backend import ConsoleBackend
from gateway.console.errors import Refusal, http_error
from gateway.console.health import IntegrityMonitor
from gateway.console.metrics import NodeMetrics
from gateway.console.pages import page_objects
from gateway.console.routes import ROUTES, RouteSpec
from gateway.errors import ConfigInvalid, GatewayError

__all__ = ["Console"]

_log = logging.getLogger("chuanyu.console")
_HERE = Path(__file__).parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """Serves the console for one node. ``port`` is known after :meth:`start`."""

    def __init__(
        self,
        backend: ConsoleBackend,
        settings: ConsoleSettings,
        *,
        integrity_interval: float = 900.0,
        probe_interval: float = 30.0,
        tail_poll: float = 0.5,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.port = 0
        self.metrics = NodeMetrics()
        backend.add_metrics_hook(self.metrics)
        self.accounts = AccountStore(backend.operators)
        self.throttle = LoginThrottle()
        self.guard = Guard(self.accounts, backend.bureau, settings)
        self.integrity = IntegrityMonitor(backend.verify_log, integrity_interval)
        self.tail_poll = tail_poll
        self.closing = asyncio.Event()
        self._probe_interval = probe_interval
        self._probe_task: asyncio.Task[None] | None = None
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._templates.filters["bj"] = labels.beijing_text
        self._templates.globals.update(
            record_types=labels.RECORD_TYPE_LABELS,
            directions=labels.DIRECTION_LABELS,
            events=labels.EVENT_LABELS,
            fields=labels.FIELD_LABELS,
            roles=labels.ROLE_LABELS,
            status_label=labels.status_label,
            status_filters=labels.STATUS_FILTER_LABELS,
            bureau=backend.bureau,
            node_name=backend.node_name or labels.BUREAU_NAMES.get(backend.bureau, backend.bureau),
            peer_name=self.peer_name,
        )
        self.app = web.Application(middlewares=[self._headers_middleware])
        self.app.router.add_static("/static/", _HERE / "static", name="static")
        handlers = _handlers(page_objects(self))
        for spec in ROUTES:
            self.app.router.add_route(spec.method, spec.path, self._guarded(spec, handlers))
        self._runner: web.AppRunner | None = None

    def peer_name(self, bureau: str) -> str:
        name = self.backend.partner_names().get(bureau, "")
        return name or labels.BUREAU_NAMES.get(bureau, bureau)

    # -- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        host, _, port = self.settings.listen.rpartition(":")
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
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
        self.integrity.start()
        self._probe_task = asyncio.create_task(self._probe_peers(), name="console-peer-probe")
        _log.info("console of bureau %s on port %d", self.backend.bureau, self.port)

    async def _probe_peers(self) -> None:
        # So a node with nothing to send still learns whether its partners answer.
        while True:
            try:
                await self.backend.probe_peers()
            except GatewayError as exc:
                _log.warning("partner health probe failed: %s", exc.message)
            await asyncio.sleep(self._probe_interval)

    async def stop(self) -> None:
        self.closing.set()  # ends live-tail streams, so shutdown does not wait for them
        await self.integrity.stop()
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
            self._probe_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- every request ---------------------------------------------------------

    @web.middleware
    async def _headers_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        # Raised answers too: the guard's redirect to the log-in form, a page's 303, and
        # aiohttp's own 404 and 405 are pages a browser shows or follows like any other.
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _secure(request, exc)
            raise
        if not response.prepared:
            _secure(request, response)
        return response

    def _guarded(self, spec: RouteSpec, handlers: dict[str, Handler]) -> Handler:
        handler = handlers[spec.handler]

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                await self.guard.authorise(request, spec)
                return await handler(request)
            except (Refusal, GatewayError) as exc:
                return self._refusal(request, spec, exc)

        return guarded

    def _refusal(
        self, request: web.Request, spec: RouteSpec, exc: Refusal | GatewayError
    ) -> web.StreamResponse:
        error = http_error(exc)
        headers = {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(int(error.retry_after) + 1)
        if spec.kind == "api":
            response = web.json_response(
                {"error": error.code, "message": error.message},
                status=error.status,
                headers=headers,
            )
            if error.status == 401 and spec.permission is Permission.METRICS:
                response.headers["WWW-Authenticate"] = 'Bearer realm="chuanyu-metrics"'
            return response
        if error.status == 401:
            target = request.path_qs if request.method == "GET" else "/"
            raise web.HTTPFound(f"/login?next={quote(target, safe='')}")
        page = self.render(
            request,
            "error.html",
            {
                "title": "无法完成",
                "message": error.message,
                "status": error.status,
                "code": error.code,
            },
            status=error.status,
        )
        page.headers.update(headers)
        return page

    def render(
        self,
        request: web.Request,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
    ) -> web.Response:
        session = request.get(SESSION)
        page = self._templates.get_template(template).render(
            operator=None if session is None else session.operator,
            csrf_token="" if session is None else session.csrf_token,
            may_reveal=session is not None and session.operator.may(Permission.PERSONAL_DATA),
            may_redrive=session is not None and session.operator.may(Permission.REDRIVE),
            path=request.path,
            **context,
        )
        return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    cacheable = request.path == "/healthz" or request.path.startswith("/static/")
    if not cacheable or response.status >= 300:
        response.headers.setdefault("Cache-Control", "no-store")


def _handlers(pages: list[object]) -> dict[str, Handler]:
    """Each route's handler: the one page object with a method of that name."""
    found: dict[str, Handler] = {}
    for spec in ROUTES:
        owners = [p for p in pages if callable(getattr(p, spec.handler, None))]
        if len(owners) != 1:
            raise RuntimeError(f"route handler {spec.handler}: {len(owners)} pages define it")
        found[spec.handler] = getattr(owners[0], spec.handler)
    return found
