"""The console's aiohttp application: pages, JSON API, live tail, metrics and health.

Every route is declared once in :data:`ROUTES` with the permission it needs; the
same table wires the handlers, guards them, and is the OpenAPI document at
``/api/openapi.json``. A page and its API share the code that reads the data
and differ only in how they answer (HTML or JSON) and how they refuse: a page
without a session redirects to ``/login``, an API call gets 401; a role without
the permission gets 403 either way. Every POST carries the session's CSRF token
(form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web
from cryptography import x509
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.config import ConsoleSettings
from gateway.console import labels, queries
from gateway.console.accounts import AccountStore, LoginThrottle, Permission, Session
from gateway.console.health import (
    CertificateStatus,
    IntegrityMonitor,
    PeerProber,
    certificate_status,
)
from gateway.console.metrics import GaugeSnapshot, NodeMetrics
from gateway.console.openapi import openapi_document
from gateway.console.record_view import build_record_view
from gateway.errors import ConfigInvalid, GatewayError, StoreUnavailable
from gateway.pki import load_certificate
from gateway.translog import Direction, EventKind, LogEvent

if TYPE_CHECKING:
    from gateway.node import GatewayNode

__all__ = ["ROUTES", "Console", "RouteSpec"]

_log = logging.getLogger("chuanyu.console")
_HERE = Path(__file__).parent
_BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_SESSION = web.RequestKey("chuanyu_session", Session)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route: who may call it, and what the OpenAPI document says about it."""

    method: str
    path: str
    handler: str  # name of the Console method
    permission: Permission
    kind: str  # "page" (HTML) or "api" (JSON, SSE or metrics text)
    summary: str
    query: tuple[tuple[str, str], ...] = ()  # (name, description)
    content_type: str = "application/json"
    csrf: bool = True  # POST only; the log-in form has its own pre-session token


_TRANSFER_QUERY = (
    ("direction", "outbound | inbound"),
    ("peer", "partner bureau id"),
    ("record_type", "business_registration | consumer_complaint | enforcement_referral | feedback"),
    ("status", "pending | delivered | rejected | dead_lettered | received"),
    ("since", "ISO 8601 time, inclusive (no offset: Beijing time)"),
    ("until", "ISO 8601 time, exclusive (no offset: Beijing time)"),
    ("q", "message id, USCC, complaint number or referral number (exact)"),
    ("cursor", "next_cursor of the previous page"),
    ("limit", "rows per page, 1-200 (default 50)"),
)

V, PD, RD, PUB, MET = (
    Permission.VIEW,
    Permission.PERSONAL_DATA,
    Permission.REDRIVE,
    Permission.PUBLIC,
    Permission.METRICS,
)
_D = "/{direction}/{message_id}"

ROUTES: tuple[RouteSpec, ...] = (
    # Unauthenticated: liveness, readiness, the log-in page and its assets.
    RouteSpec("GET", "/healthz", "healthz", PUB, "api", "Process alive"),
    RouteSpec(
        "GET", "/readyz", "readyz", PUB, "api", "Store writable, certificates valid, peers known"
    ),
    RouteSpec("GET", "/login", "login_page", PUB, "page", "Log-in form"),
    RouteSpec("POST", "/login", "login", PUB, "api", "Log in (form or JSON)", csrf=False),
    # Pages
    RouteSpec("POST", "/logout", "logout", V, "page", "Log out"),
    RouteSpec("GET", "/", "overview_page", V, "page", "Overview"),
    RouteSpec("GET", "/transfers", "transfers_page", V, "page", "Transfers", _TRANSFER_QUERY),
    RouteSpec("GET", "/transfers" + _D, "detail_page", V, "page", "Record detail (PI masked)"),
    RouteSpec(
        "POST",
        "/transfers" + _D + "/reveal",
        "reveal_page",
        PD,
        "page",
        "Record detail with PI (logged)",
    ),
    RouteSpec("GET", "/tail", "tail_page", V, "page", "Live tail of the transfer log"),
    RouteSpec("GET", "/dead-letters", "dead_letters_page", V, "page", "Dead letters"),
    RouteSpec(
        "POST",
        "/dead-letters/{message_id}/redrive",
        "redrive_page",
        RD,
        "page",
        "Re-drive a dead letter",
    ),
    RouteSpec("POST", "/integrity/verify", "verify_page", V, "page", "Verify the transfer log now"),
    # JSON API
    RouteSpec("GET", "/api/openapi.json", "openapi", V, "api", "This document"),
    RouteSpec(
        "GET", "/api/session", "session_api", V, "api", "The logged-in operator and CSRF token"
    ),
    RouteSpec(
        "GET",
        "/api/overview",
        "overview_api",
        V,
        "api",
        "Counts, backlog, throughput, certificates, integrity, peers",
    ),
    RouteSpec(
        "GET",
        "/api/transfers",
        "transfers_api",
        V,
        "api",
        "Transfers, newest first, keyset-paged",
        _TRANSFER_QUERY,
    ),
    RouteSpec("GET", "/api/transfers" + _D, "detail_api", V, "api", "Record detail (PI masked)"),
    RouteSpec(
        "POST",
        "/api/transfers" + _D + "/reveal",
        "reveal_api",
        PD,
        "api",
        "Record detail with PI (logged in the transfer log)",
    ),
    RouteSpec(
        "GET",
        "/api/events",
        "events_api",
        V,
        "api",
        "Transfer-log entries after a sequence number",
        (("after", "sequence number (default: the latest 50)"), ("limit", "1-500")),
    ),
    RouteSpec(
        "GET",
        "/api/events/stream",
        "events_stream",
        V,
        "api",
        "New transfer-log entries as server-sent events",
        (("after", "sequence number (default: from now; Last-Event-ID wins)"),),
        content_type="text/event-stream",
    ),
    RouteSpec(
        "GET",
        "/api/dead-letters",
        "dead_letters_api",
        V,
        "api",
        "Dead letters with their last error",
    ),
    RouteSpec(
        "POST",
        "/api/dead-letters/{message_id}/redrive",
        "redrive_api",
        RD,
        "api",
        "Re-drive a dead letter",
    ),
    RouteSpec("GET", "/api/integrity", "integrity_api", V, "api", "Last hash-chain verification"),
    RouteSpec("POST", "/api/integrity/verify", "verify_api", V, "api", "Verify the hash chain now"),
    RouteSpec(
        "GET",
        "/metrics",
        "metrics_text",
        MET,
        "api",
        "Prometheus metrics (session or bearer token)",
        content_type=CONTENT_TYPE_LATEST,
    ),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _beijing(value: str | None) -> str:
    if not value:
        return ""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return when.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _parse_time(value: str, name: str) -> str:
    """An ISO time from a form or query (no offset: Beijing) as the store's UTC text."""
    if not value:
        return ""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Refused(400, "bad_request", f"{name}: not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_BEIJING)
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _safe_next(value: str) -> str:
    # Only same-site paths: never "//host" or "/\\host", which browsers treat as another site.
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


@dataclass
class _PeerView:
    peer: str
    name: str
    address: str
    reachable: bool | None
    last_error: str
    last_success_at: str
    probe_ok: bool | None
    probe_at: str
    pending: int = 0
    dead_letters: int = 0
    oldest_pending: str | None = None
    oldest_age_seconds: float | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


class Console:
    """Serves the console for one node. ``port`` is known after :meth:`start`."""

    def __init__(
        self,
        node: GatewayNode,
        settings: ConsoleSettings,
        *,
        integrity_interval: float = 900.0,
        probe_interval: float = 30.0,
        tail_poll: float = 0.5,
    ) -> None:
        if node.config.storage.engine != "sqlite":
            # Its read models query the node's SQLite file directly; say so rather than
            # show an empty console.
            raise ConfigInvalid(
                f"{node.config.source}: console: the operator console needs the sqlite storage "
                f"engine (this node uses {node.config.storage.engine})"
            )
        self.node = node
        self.settings = settings
        self.port = 0
        self.metrics = NodeMetrics()
        node.hooks.add(self.metrics)
        self.accounts = AccountStore(node.config.node.database)
        self.reads = queries.ReadPool(node.config.node.database)
        self.throttle = LoginThrottle()
        self.integrity = IntegrityMonitor(node.config.node.database, integrity_interval)
        self.prober = PeerProber(
            node.identity.channel_credentials,
            lambda: {b: d.address for b, d in node.dispatchers.items()},
            probe_interval,
        )
        self._tail_poll = tail_poll
        self._metrics_token = self._read_metrics_token(settings.metrics_token_file)
        self._closing = asyncio.Event()
        self._cookie = f"chuanyu_console_{node.bureau}"
        self._login_cookie = f"chuanyu_login_{node.bureau}"
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._templates.filters["bj"] = _beijing
        self._templates.globals.update(
            record_types=labels.RECORD_TYPE_LABELS,
            directions=labels.DIRECTION_LABELS,
            events=labels.EVENT_LABELS,
            fields=labels.FIELD_LABELS,
            roles=labels.ROLE_LABELS,
            status_label=labels.status_label,
            status_filters=labels.STATUS_FILTER_LABELS,
            bureau=node.bureau,
            node_name=node.config.node.name or labels.BUREAU_NAMES.get(node.bureau, node.bureau),
            peer_name=self._peer_name,
        )
        self.app = web.Application(middlewares=[self._headers_middleware])
        self.app.router.add_static("/static/", _HERE / "static", name="static")
        for spec in ROUTES:
            self.app.router.add_route(spec.method, spec.path, self._guard(spec))
        self._runner: web.AppRunner | None = None

    @staticmethod
    def _read_metrics_token(path: Path | None) -> str:
        if path is None:
            return ""
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigInvalid(
                f"console.metrics_token_file {path}: cannot read: {exc.strerror}"
            ) from exc
        if len(token) < 16:
            raise ConfigInvalid(f"console.metrics_token_file {path}: token shorter than 16")
        return token

    def _peer_name(self, bureau: str) -> str:
        partner = self.node.config.partner(bureau)
        if partner is not None and partner.name:
            return partner.name
        return labels.BUREAU_NAMES.get(bureau, bureau)

    # -- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._open_database)
        host, _, port = self.settings.listen.rpartition(":")
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            await asyncio.to_thread(self._close_database)
            raise ConfigInvalid(f"console cannot listen on {self.settings.listen}: {exc}") from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else int(port)
        self.integrity.start()
        self.prober.start()
        _log.info("console of bureau %s on port %d", self.node.bureau, self.port)

    def _open_database(self) -> None:
        self.accounts.open()
        conn = self.accounts._conn
        assert conn is not None
        started = time.perf_counter()
        queries.ensure_indexes(conn)
        if time.perf_counter() - started > 1:
            _log.info("console indexes built in %.1f s", time.perf_counter() - started)

    def _close_database(self) -> None:
        self.reads.close()
        self.accounts.close()

    async def stop(self) -> None:
        self._closing.set()  # ends live-tail streams, so shutdown does not wait for them
        await self.integrity.stop()
        await self.prober.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.to_thread(self._close_database)

    # -- guard: sessions, roles, CSRF -----------------------------------------

    @web.middleware
    async def _headers_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:
            response.headers.update(_SECURITY_HEADERS)
            if request.path != "/healthz" and not request.path.startswith("/static/"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _guard(self, spec: RouteSpec) -> Handler:
        handler: Handler = getattr(self, spec.handler)

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                if spec.permission is not Permission.PUBLIC:
                    await self._authorise(request, spec)
                return await handler(request)
            except _Refused as refused:
                return self._refusal(request, spec, refused)
            except StoreUnavailable as exc:
                _log.error("console: %s", exc.message)
                return self._refusal(
                    request, spec, _Refused(503, "store_unavailable", "数据库暂时不可用")
                )

        return guarded

    async def _authorise(self, request: web.Request, spec: RouteSpec) -> None:
        if spec.permission is Permission.METRICS and self._bearer_ok(request):
            return
        token = request.cookies.get(self._cookie, "")
        session = await self._session_for(token) if token else None
        if session is None:
            raise _Refused(401, "unauthenticated", "请先登录")
        request[_SESSION] = session
        if not session.operator.may(spec.permission):
            raise _Refused(403, "forbidden", "当前角色无权执行此操作")
        if spec.method == "POST" and spec.csrf:
            await self._check_csrf(request, session.csrf_token)

    async def _session_for(self, token: str) -> Session | None:
        return await asyncio.to_thread(self.accounts.session, token)

    def _bearer_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not self._metrics_token or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self._metrics_token.encode())

    async def _check_csrf(self, request: web.Request, expected: str) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and origin != "null" and origin.split("://", 1)[-1] != request.host:
            raise _Refused(403, "csrf", "请求来源不符")
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            sent = str(form.get("csrf_token", ""))
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise _Refused(403, "csrf", "CSRF 校验失败，请刷新页面后重试")

    def _refusal(
        self, request: web.Request, spec: RouteSpec, refused: _Refused
    ) -> web.StreamResponse:
        if spec.kind == "api":
            response = web.json_response(
                {"error": refused.code, "message": refused.message}, status=refused.status
            )
            if refused.status == 401 and spec.permission is Permission.METRICS:
                response.headers["WWW-Authenticate"] = 'Bearer realm="chuanyu-metrics"'
            return response
        if refused.status == 401:
            target = request.path_qs if request.method == "GET" else "/"
            raise web.HTTPFound(f"/login?next={_quote(target)}")
        return self._render(
            request,
            "error.html",
            {"title": "无法完成", "message": refused.message, "status": refused.status},
            status=refused.status,
        )

    def _render(
        self,
        request: web.Request,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
    ) -> web.Response:
        session = request.get(_SESSION)
        page = self._templates.get_template(template).render(
            operator=None if session is None else session.operator,
            csrf_token="" if session is None else session.csrf_token,
            may_reveal=session is not None and session.operator.may(Permission.PERSONAL_DATA),
            may_redrive=session is not None and session.operator.may(Permission.REDRIVE),
            path=request.path,
            **context,
        )
        return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")

    # -- health ----------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "alive", "bureau": self.node.bureau})

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        now = dt.datetime.now(dt.UTC)
        checks: dict[str, dict[str, Any]] = {}
        try:
            # An empty job through the store's own writer: proves the writer thread runs and
            # can take the write lock, without adding a log entry.
            await asyncio.wait_for(self.node.store.append_log([]), timeout=2.0)
            checks["store"] = {"ok": True}
        except (GatewayError, TimeoutError) as exc:
            message = exc.message if isinstance(exc, GatewayError) else "timed out"
            checks["store"] = {"ok": False, "error": message}
        certs = self._certificates()
        checks["certificates"] = {
            "ok": all(c.valid(now) for c in certs),
            **{c.name: {"valid": c.valid(now), "days_left": c.days_left(now)} for c in certs},
        }
        peers: dict[str, Any] = {}
        for bureau, dispatcher in self.node.dispatchers.items():
            probe = self.prober.results.get(bureau)
            reachable = dispatcher.health.reachable
            if reachable is None and probe is not None:
                reachable = probe.serving
            peers[bureau] = {"known": reachable is not None, "reachable": reachable}
        checks["peers"] = {"ok": all(p["known"] for p in peers.values()), **peers}
        ready = all(bool(c["ok"]) for c in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    def _certificates(self) -> list[CertificateStatus]:
        signing = x509.load_der_x509_certificate(self.node.identity.signer.certificate_der)
        try:
            tls = load_certificate(self.node.config.tls.cert)
        except GatewayError:
            return [certificate_status("signing", signing)]
        return [certificate_status("tls", tls), certificate_status("signing", signing)]

    # -- log in / out ------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        return self._login_form(request, "", status=200)

    def _login_form(self, request: web.Request, error: str, *, status: int) -> web.Response:
        login_csrf = secrets.token_urlsafe(24)
        response = self._render(
            request,
            "login.html",
            {
                "title": "登录",
                "error": error,
                "login_csrf": login_csrf,
                "next": _safe_next(request.query.get("next", "/")),
            },
            status=status,
        )
        response.set_cookie(
            self._login_cookie,
            login_csrf,
            httponly=True,
            samesite="Strict",
            secure=self.settings.secure_cookies,
            path="/login",
        )
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        is_json = request.content_type == "application/json"
        if is_json:
            try:
                body = await request.json()
            except ValueError:
                raise _Refused(400, "bad_request", "请求体不是 JSON") from None
            if not isinstance(body, dict):
                raise _Refused(400, "bad_request", "请求体应为对象")
            username, password = str(body.get("username", "")), str(body.get("password", ""))
            target = "/"
        else:
            form = await request.post()
            username, password = str(form.get("username", "")), str(form.get("password", ""))
            target = _safe_next(str(form.get("next", "/")))
            # Log-in CSRF: the form must come from our own page (cookie and field agree).
            expected = request.cookies.get(self._login_cookie, "")
            sent = str(form.get("csrf_token", ""))
            if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                return self._login_form(request, "页面已过期，请重新登录", status=403)
        username = username.strip().lower()
        address = request.remote or "unknown"
        wait = self.throttle.retry_after(username, address)
        if wait > 0:
            message = f"登录失败次数过多，请 {int(wait) + 1} 秒后再试"
            headers = {"Retry-After": str(int(wait) + 1)}
            if is_json:
                return web.json_response(
                    {"error": "too_many_attempts", "message": message},
                    status=429,
                    headers=headers,
                )
            locked = self._login_form(request, message, status=429)
            locked.headers.update(headers)
            return locked
        operator = await asyncio.to_thread(self.accounts.authenticate, username, password)
        if operator is None:
            self.throttle.failed(username, address)
            _log.warning("console log-in failed for %r from %s", username[:64], address)
            if is_json:
                return web.json_response(
                    {"error": "unauthenticated", "message": "用户名或密码错误"}, status=401
                )
            return self._login_form(request, "用户名或密码错误", status=401)
        self.throttle.succeeded(username)
        token, session = await asyncio.to_thread(
            self.accounts.create_session, operator, self.settings.session_minutes * 60.0
        )
        _log.info("console log-in: %s (%s)", operator.username, operator.role.value)
        response: web.Response
        if is_json:
            response = web.json_response(
                {
                    "username": operator.username,
                    "role": operator.role.value,
                    "csrf_token": session.csrf_token,
                    "expires_at": session.expires_at,
                }
            )
        else:
            # Built, not raised: the session cookie must ride on this redirect.
            response = web.Response(status=302, headers={"Location": target})
        response.set_cookie(
            self._cookie,
            token,
            httponly=True,
            samesite="Strict",
            secure=self.settings.secure_cookies,
            path="/",
            max_age=self.settings.session_minutes * 60,
        )
        response.del_cookie(self._login_cookie, path="/login")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        token = request.cookies.get(self._cookie, "")
        if token:
            await asyncio.to_thread(self.accounts.end_session, token)
        response = web.Response(status=302, headers={"Location": "/login"})
        response.del_cookie(self._cookie, path="/")
        return response

    async def session_api(self, request: web.Request) -> web.StreamResponse:
        session = request[_SESSION]
        return web.json_response(
            {
                "username": session.operator.username,
                "role": session.operator.role.value,
                "csrf_token": session.csrf_token,
                "expires_at": session.expires_at,
                "permissions": sorted(p.value for p in Permission if session.operator.may(p)),
            }
        )

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(openapi_document(ROUTES, self.node.bureau))

    # -- overview ------------------------------------------------------------------

    async def _overview(self) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)

        def read(conn: Any) -> tuple[Any, ...]:
            return (
                queries.outbound_counts(conn),
                queries.inbound_counts(conn),
                queries.pending_by_peer(conn),
                queries.throughput(conn, now),
            )

        outbound, inbound, pending, hours = await self.reads.run(read)
        peers: dict[str, _PeerView] = {}
        for bureau, dispatcher in self.node.dispatchers.items():
            health = dispatcher.health
            probe = self.prober.results.get(bureau)
            peers[bureau] = _PeerView(
                peer=bureau,
                name=self._peer_name(bureau),
                address=dispatcher.address,
                reachable=health.reachable,
                last_error=health.last_error,
                last_success_at=health.last_success_at.isoformat()
                if health.last_success_at
                else "",
                probe_ok=None if probe is None else probe.serving,
                probe_at="" if probe is None else probe.checked_at.isoformat(),
            )

        def peer(bureau: str) -> _PeerView:
            if bureau not in peers:
                peers[bureau] = _PeerView(
                    bureau, self._peer_name(bureau), "", None, "", "", None, ""
                )
            return peers[bureau]

        blank = dict.fromkeys(
            ("sent", "pending", "dead_lettered", "rejected", "received", "awaiting_local"), 0
        )
        for state, bureau, record_type, count in outbound:
            key = {"delivered": "sent"}.get(state, state)
            row = peer(bureau).counts.setdefault(record_type, dict(blank))
            row[key] = row.get(key, 0) + count
        for bureau, record_type, received, awaiting in inbound:
            row = peer(bureau).counts.setdefault(record_type, dict(blank))
            row["received"] += received
            row["awaiting_local"] += awaiting
        for bureau, (count, dead, oldest) in pending.items():
            view = peer(bureau)
            view.pending, view.dead_letters, view.oldest_pending = count, dead, oldest
            if oldest:
                view.oldest_age_seconds = (now - dt.datetime.fromisoformat(oldest)).total_seconds()
        certs = self._certificates()
        return {
            "now": now.isoformat(),
            "peers": peers,
            "throughput": hours,
            "certificates": certs,
            "integrity": self.integrity.status,
        }

    async def overview_page(self, request: web.Request) -> web.StreamResponse:
        data = await self._overview()
        now = dt.datetime.now(dt.UTC)
        return self._render(
            request,
            "overview.html",
            {
                "title": "概览",
                "peers": list(data["peers"].values()),
                "chart": _chart(data["throughput"]),
                "certificates": [
                    {
                        "name": c.name,
                        "label": "TLS 证书" if c.name == "tls" else "签名证书",
                        "not_after": c.not_after.isoformat(),
                        "days_left": c.days_left(now),
                        "valid": c.valid(now),
                    }
                    for c in data["certificates"]
                ],
                "integrity": data["integrity"].as_json(),
            },
        )

    async def overview_api(self, request: web.Request) -> web.StreamResponse:
        data = await self._overview()
        now = dt.datetime.now(dt.UTC)
        return web.json_response(
            {
                "bureau": self.node.bureau,
                "now": data["now"],
                "peers": [
                    {
                        "peer": p.peer,
                        "address": p.address,
                        "reachable": p.reachable,
                        "last_error": p.last_error,
                        "last_success_at": p.last_success_at or None,
                        "probe_ok": p.probe_ok,
                        "probe_at": p.probe_at or None,
                        "pending": p.pending,
                        "dead_letters": p.dead_letters,
                        "oldest_pending_at": p.oldest_pending,
                        "oldest_pending_age_seconds": p.oldest_age_seconds,
                        "by_record_type": p.counts,
                    }
                    for p in data["peers"].values()
                ],
                "throughput": [
                    {"hour": h, "sent": s, "received": r} for h, s, r in data["throughput"]
                ],
                "certificates": {
                    c.name: {
                        "subject": c.subject,
                        "not_after": c.not_after.isoformat(),
                        "days_left": c.days_left(now),
                        "valid": c.valid(now),
                    }
                    for c in data["certificates"]
                },
                "integrity": data["integrity"].as_json(),
            }
        )

    async def integrity_api(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.integrity.status.as_json())

    async def verify_api(self, request: web.Request) -> web.StreamResponse:
        status = await self.integrity.verify()
        return web.json_response(status.as_json())

    async def verify_page(self, request: web.Request) -> web.StreamResponse:
        await self.integrity.verify()
        raise web.HTTPSeeOther("/")

    # -- transfers -------------------------------------------------------------------

    def _transfer_filter(self, request: web.Request) -> queries.TransferFilter:
        query = request.query
        direction = query.get("direction", "")
        status = query.get("status", "")
        record_type = query.get("record_type", "")
        if direction and direction not in queries.DIRECTIONS:
            raise _Refused(400, "bad_request", "direction 取值无效")
        if status and status not in queries.STATUSES:
            raise _Refused(400, "bad_request", "status 取值无效")
        if record_type and record_type not in labels.RECORD_TYPE_LABELS:
            raise _Refused(400, "bad_request", "record_type 取值无效")
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            raise _Refused(400, "bad_request", "limit 应为整数") from None
        return queries.TransferFilter(
            direction=direction,
            peer=query.get("peer", "").strip(),
            record_type=record_type,
            status=status,
            since=_parse_time(query.get("since", ""), "since"),
            until=_parse_time(query.get("until", ""), "until"),
            q=query.get("q", "").strip(),
            cursor=query.get("cursor", ""),
            limit=limit,
        )

    async def _transfers(self, request: web.Request) -> queries.TransferPage:
        f = self._transfer_filter(request)
        try:
            return await self.reads.run(lambda conn: queries.list_transfers(conn, f))
        except ValueError as exc:
            raise _Refused(400, "bad_request", str(exc)) from None

    async def transfers_api(self, request: web.Request) -> web.StreamResponse:
        page = await self._transfers(request)
        return web.json_response(
            {"items": [r.as_json() for r in page.rows], "next_cursor": page.next_cursor or None}
        )

    async def transfers_page(self, request: web.Request) -> web.StreamResponse:
        page = await self._transfers(request)
        params = {k: v for k, v in request.query.items() if k != "cursor" and v}
        next_link = ""
        if page.next_cursor:
            next_link = "/transfers?" + _urlencode({**params, "cursor": page.next_cursor})
        return self._render(
            request,
            "transfers.html",
            {
                "title": "传输记录",
                "rows": page.rows,
                "filters": {k: request.query.get(k, "") for k, _ in _TRANSFER_QUERY},
                "peers": sorted(self.node.dispatchers),
                "next_link": next_link,
                "first_link": "/transfers?" + _urlencode(params)
                if "cursor" in request.query
                else "",
            },
        )

    async def _detail(self, request: web.Request, *, unmask: bool) -> dict[str, Any]:
        direction = request.match_info["direction"]
        message_id = request.match_info["message_id"]
        if direction not in queries.DIRECTIONS:
            raise _Refused(404, "not_found", "没有这条记录")
        bureau = self.node.bureau

        def read(conn: Any) -> tuple[Any, list[queries.LogRow]]:
            return (
                queries.stored_message(conn, direction, message_id, bureau),
                queries.message_timeline(conn, message_id),
            )

        message, timeline = await self.reads.run(read)
        if message is None:
            raise _Refused(404, "not_found", "没有这条记录")
        issuer = message.peer if direction == "outbound" else bureau
        at_rest = self.node.store.at_rest
        envelope = (
            at_rest.open_outbound(message_id, message.envelope)
            if direction == "outbound"
            else at_rest.open_inbound(message.peer, message_id, message.envelope)
        )
        view = await asyncio.to_thread(
            build_record_view,
            envelope,
            message.receipt,
            receipt_issuer=issuer,
            verifier=self.node.identity.verifier,
            unmask=unmask,
        )
        if unmask:
            session = request[_SESSION]
            # Logged before the data leaves: if the log cannot take it, nothing is shown.
            await self.node.store.append_log(
                [
                    LogEvent(
                        EventKind.PERSONAL_DATA_VIEWED,
                        Direction(direction),
                        peer=message.peer,
                        message_id=message.message_id,
                        record_type=message.record_type,
                        detail={
                            "operator": session.operator.username,
                            "fields": view.personal_fields,
                        },
                    )
                ]
            )
            _log.info(
                "personal data of %s shown to %s", message.message_id, session.operator.username
            )
            timeline = await self.reads.run(lambda conn: queries.message_timeline(conn, message_id))
        return {"message": message, "view": view, "timeline": timeline}

    def _detail_json(self, data: dict[str, Any]) -> dict[str, Any]:
        message = data["message"]
        return {
            "direction": message.direction,
            "message_id": message.message_id,
            "peer": message.peer,
            "record_type": message.record_type,
            "record_key": message.record_key,
            "status": message.status,
            "at": message.at,
            "attempts": message.attempts,
            "last_error": message.last_error,
            **data["view"].as_json(),
            "timeline": [e.as_json() for e in data["timeline"]],
        }

    async def detail_api(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._detail_json(await self._detail(request, unmask=False)))

    async def reveal_api(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._detail_json(await self._detail(request, unmask=True)))

    async def detail_page(self, request: web.Request) -> web.StreamResponse:
        data = await self._detail(request, unmask=False)
        return self._render(request, "detail.html", {"title": "记录详情", **_detail_context(data)})

    async def reveal_page(self, request: web.Request) -> web.StreamResponse:
        data = await self._detail(request, unmask=True)
        return self._render(request, "detail.html", {"title": "记录详情", **_detail_context(data)})

    # -- transfer log: list and live tail ------------------------------------------------

    async def events_api(self, request: web.Request) -> web.StreamResponse:
        try:
            limit = max(1, min(500, int(request.query.get("limit", "200"))))
            after = request.query.get("after")
            after_seq = None if after is None else int(after)
        except ValueError:
            raise _Refused(400, "bad_request", "after 和 limit 应为整数") from None
        if after_seq is None:
            rows = await self.reads.run(lambda conn: queries.log_latest(conn, min(limit, 50)))
        else:
            rows = await self.reads.run(lambda conn: queries.log_after(conn, after_seq, limit))
        return web.json_response({"items": [r.as_json() for r in rows]})

    async def tail_page(self, request: web.Request) -> web.StreamResponse:
        rows = await self.reads.run(lambda conn: queries.log_latest(conn, 50))
        return self._render(
            request,
            "tail.html",
            {"title": "实时日志", "rows": rows, "last_seq": rows[-1].seq if rows else 0},
        )

    async def events_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: each new transfer-log entry as ``event: entry``, id = seq."""
        raw = request.headers.get("Last-Event-ID") or request.query.get("after", "")
        try:
            after = int(raw) if raw else None
        except ValueError:
            raise _Refused(400, "bad_request", "after 应为整数") from None
        if after is None:
            latest = await self.reads.run(lambda conn: queries.log_latest(conn, 1))
            after = latest[-1].seq if latest else 0
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                **_SECURITY_HEADERS,
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        last_check = time.monotonic()
        token = request.cookies.get(self._cookie, "")
        position = after
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while not self._closing.is_set():
                rows = await self.reads.run(partial(queries.log_after, after_seq=position))
                for row in rows:
                    data = json.dumps(row.as_json(), ensure_ascii=False)
                    await response.write(f"id: {row.seq}\nevent: entry\ndata: {data}\n\n".encode())
                    position = row.seq
                if time.monotonic() - last_check > 10:
                    # A session that ended (log-out, expiry, removed operator) ends the stream.
                    last_check = time.monotonic()
                    if await self._session_for(token) is None:
                        break
                    await response.write(b": keep-alive\n\n")
                if not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), self._tail_poll)
        return response

    # -- dead letters -------------------------------------------------------------------

    async def dead_letters_api(self, request: web.Request) -> web.StreamResponse:
        rows = await self.reads.run(queries.dead_letters)
        return web.json_response({"items": [r.as_json() for r in rows]})

    async def dead_letters_page(self, request: web.Request) -> web.StreamResponse:
        rows = await self.reads.run(queries.dead_letters)
        return self._render(
            request,
            "dead_letters.html",
            {
                "title": "死信",
                "rows": rows,
                "redriven": request.query.get("redriven", ""),
                "failed": request.query.get("failed", ""),
            },
        )

    async def _redrive(self, request: web.Request) -> tuple[str, bool]:
        message_id = request.match_info["message_id"]
        operator = request[_SESSION].operator.username
        done = await self.node.redrive(message_id, operator=operator)
        if done:
            _log.info("dead letter %s re-driven by %s", message_id, operator)
        return message_id, done

    async def redrive_api(self, request: web.Request) -> web.StreamResponse:
        message_id, done = await self._redrive(request)
        if not done:
            raise _Refused(409, "not_dead_lettered", "该报文不在死信中")
        return web.json_response({"message_id": message_id, "redriven": True})

    async def redrive_page(self, request: web.Request) -> web.StreamResponse:
        message_id, done = await self._redrive(request)
        key = "redriven" if done else "failed"
        raise web.HTTPSeeOther(f"/dead-letters?{_urlencode({key: message_id})}")

    # -- metrics -----------------------------------------------------------------------

    async def metrics_text(self, request: web.Request) -> web.StreamResponse:
        now = dt.datetime.now(dt.UTC)

        def read(conn: Any) -> tuple[Any, ...]:
            undelivered = conn.execute(
                "SELECT count(*) FROM inbox WHERE delivered_at IS NULL"
            ).fetchone()[0]
            entries = conn.execute("SELECT coalesce(max(seq), 0) FROM transfer_log").fetchone()[0]
            return queries.pending_by_peer(conn), int(undelivered), int(entries)

        pending, undelivered, entries = await self.reads.run(read)
        snapshot = GaugeSnapshot(inbox_undelivered=undelivered, log_entries=entries)
        for bureau, dispatcher in self.node.dispatchers.items():
            count, dead, oldest = pending.get(bureau, (0, 0, None))
            snapshot.pending[bureau] = count
            snapshot.dead_letters[bureau] = dead
            snapshot.oldest_pending_age[bureau] = (
                (now - dt.datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
            )
            reachable = dispatcher.health.reachable
            probe = self.prober.results.get(bureau)
            if reachable is None and probe is not None:
                reachable = probe.serving
            if reachable is not None:
                snapshot.peer_reachable[bureau] = 1.0 if reachable else 0.0
        for cert in self._certificates():
            snapshot.certificate_expiry[cert.name] = cert.seconds_left(now)
        verdict = self.integrity.status.verdict
        snapshot.log_intact = None if verdict is None else float(verdict.ok)
        self.metrics.update(snapshot)
        body = await asyncio.to_thread(generate_latest, self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _urlencode(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def _chart(hours: list[tuple[str, int, int]]) -> dict[str, Any]:
    """Bar geometry for the throughput chart (a hand-written SVG in the template)."""
    width, height, pad = 720, 180, 24
    peak = max([1, *(max(s, r) for _, s, r in hours)])
    slot = (width - pad) / max(1, len(hours))
    bars = []
    for i, (hour, sent, received) in enumerate(hours):
        x = pad + i * slot
        hs = (height - pad) * sent / peak
        hr = (height - pad) * received / peak
        bars.append(
            {
                "hour": _beijing(hour.replace(":00", ":00:00+00:00"))[11:16],
                "sent": sent,
                "received": received,
                "xs": round(x + 1, 1),
                "xr": round(x + slot / 2, 1),
                "w": round(slot / 2 - 1.5, 1),
                "ys": round(height - pad - hs, 1),
                "hs": round(hs, 1),
                "yr": round(height - pad - hr, 1),
                "hr": round(hr, 1),
                "label": i % 3 == 0,
                "x": round(x, 1),
            }
        )
    return {"width": width, "height": height, "pad": pad, "peak": peak, "bars": bars}


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """(path, label key, text) rows of a record, nested models flattened to dotted paths."""
    rows: list[tuple[str, str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            rows.extend(_flatten(value, f"{prefix}{key}."))
        return rows
    path = prefix.rstrip(".")
    if isinstance(data, list):
        if all(not isinstance(v, dict | list) for v in data):
            text = "；".join(str(v) for v in data)
            return [(path, path, text)]
        for i, value in enumerate(data):
            rows.extend(_flatten(value, f"{path}.{i + 1}."))
        return rows
    if data is None:
        return []  # an optional field the record does not have
    return [(path, path, str(data))]


def _detail_context(data: dict[str, Any]) -> dict[str, Any]:
    view = data["view"]
    pi = set(view.personal_fields)
    return {
        "message": data["message"],
        "view": view,
        "record_rows": [
            {"path": path, "value": text, "pi": path in pi}
            for path, _, text in _flatten(view.record)
        ],
        "timeline": data["timeline"],
    }
