"""Who may call a route: sessions, roles, CSRF, and the metrics scrape token.

A page without a session redirects to ``/login``, an API call gets 401; a role
without the permission gets 403 either way (the redirect is the guard's, in
:mod:`gateway.console.app`). Every POST carries the session's CSRF token (form
field ``csrf_token`` or header ``X-CSRF-Token``) and, when the browser sends one, an
``Origin`` of this console.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from gateway.config import ConsoleSettings
from gateway.console.accounts import (
    AccountStore,
    LoginThrottle,
    Operator,
    Permission,
    Role,
    Session,
)
from gateway.console.errors import CsrfRejected, Forbidden, Unauthenticated
from gateway.console.routes import RouteSpec
from gateway.errors import ConfigInvalid

__all__ = [
    "SECURITY_HEADERS",
    "SESSION",
    "AccountStore",
    "Guard",
    "LoginThrottle",
    "Operator",
    "Permission",
    "Role",
    "Session",
    "read_metrics_token",
    "safe_next",
]

SESSION = web.RequestKey("chuanyu_session", Session)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def read_metrics_token(path: Path | None) -> str:
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


_DECODINGS = 4


def safe_next(value: str) -> str:
    """``value`` if it is a plain path on this console, else ``"/"``.

    Browsers read ``//host``, ``/\\host`` and ``/<TAB>/host`` (they drop tabs and line
    breaks) as another site, and some servers and proxies decode ``%2F`` and ``%5C`` before
    they route: so the raw value must be printable ASCII without white space, and it and
    every percent-decoding of it must start with one ``/`` and hold no backslash, control
    or white-space character."""
    if not value.isascii() or not _plain_path(value):
        return "/"
    form = value
    for _ in range(_DECODINGS):
        decoded = unquote(form)
        if decoded == form:
            return value
        if not _plain_path(decoded):
            return "/"
        form = decoded
    return "/"  # still encoded after that many rounds: nobody writes a link like that


def _plain_path(text: str) -> bool:
    return (
        text.startswith("/")
        and not text.startswith("//")
        and "\\" not in text
        and all(c.isprintable() and not c.isspace() for c in text)
    )


class Guard:
    """Checks a request against its route's permission; remembers its session."""

    def __init__(self, accounts: AccountStore, bureau: str, settings: ConsoleSettings) -> None:
        self.accounts = accounts
        self.settings = settings
        self.cookie = f"chuanyu_console_{bureau}"
        self.login_cookie = f"chuanyu_login_{bureau}"
        self._metrics_token = read_metrics_token(settings.metrics_token_file)

    async def authorise(self, request: web.Request, spec: RouteSpec) -> None:
        if spec.permission is Permission.PUBLIC:
            return
        if spec.permission is Permission.METRICS and self._bearer_ok(request):
            return
        session = await self.session_of(request)
        if session is None:
            raise Unauthenticated("请先登录")
        request[SESSION] = session
        if not session.operator.may(spec.permission):
            raise Forbidden("当前角色无权执行此操作")
        if spec.method == "POST" and spec.csrf:
            await self._check_csrf(request, session.csrf_token)

    async def session_of(self, request: web.Request) -> Session | None:
        """The request's live session, if its cookie names one."""
        token = request.cookies.get(self.cookie, "")
        return await self.accounts.session(token) if token else None

    def _bearer_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not self._metrics_token or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self._metrics_token.encode())

    async def _check_csrf(self, request: web.Request, expected: str) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and origin != "null" and origin.split("://", 1)[-1] != request.host:
            raise CsrfRejected("请求来源不符")
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            sent = str(form.get("csrf_token", ""))
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise CsrfRejected("CSRF 校验失败，请刷新页面后重试")

    def set_session_cookie(self, response: web.StreamResponse, token: str) -> None:
        self._set_cookie(response, self.cookie, token, "/", self.settings.session_minutes * 60)

    def set_login_cookie(self, response: web.StreamResponse, login_csrf: str) -> None:
        self._set_cookie(response, self.login_cookie, login_csrf, "/login", None)

    def _set_cookie(
        self, response: web.StreamResponse, name: str, value: str, path: str, max_age: int | None
    ) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="Strict",
            secure=self.settings.secure_cookies,
            path=path,
            max_age=max_age,
        )
