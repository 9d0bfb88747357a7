"""Log in and out, the session, and the OpenAPI document."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.console.accounts import Operator, Permission
from gateway.console.auth import SESSION, safe_next
from gateway.console.errors import BadRequest, TooManyAttempts, Unauthenticated, http_error
from gateway.console.openapi import openapi_document
from gateway.console.routes import ROUTES

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["LoginPages"]

_log = logging.getLogger("chuanyu.console")


class LoginPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.guard = console.guard
        self.accounts = console.accounts

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        return self._login_form(request, "", status=200)

    def _login_form(self, request: web.Request, error: str, *, status: int) -> web.Response:
        login_csrf = secrets.token_urlsafe(24)
        response = self.console.render(
            request,
            "login.html",
            {
                "title": "登录",
                "error": error,
                "login_csrf": login_csrf,
                "next": safe_next(request.query.get("next", "/")),
            },
            status=status,
        )
        self.guard.set_login_cookie(response, login_csrf)
        return response

    async def _credentials(self, request: web.Request) -> tuple[str, str, str] | web.Response:
        """(username, password, where to go next) from a JSON or form log-in; a form that
        did not come from our own log-in page gets the form again."""
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise BadRequest("请求体不是 JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("请求体应为对象")
            return str(body.get("username", "")), str(body.get("password", "")), "/"
        form = await request.post()
        # Log-in CSRF: the form must come from our own page (cookie and field agree).
        expected = request.cookies.get(self.guard.login_cookie, "")
        sent = str(form.get("csrf_token", ""))
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return self._login_form(request, "页面已过期，请重新登录", status=403)
        return (
            str(form.get("username", "")),
            str(form.get("password", "")),
            safe_next(str(form.get("next", "/"))),
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        is_json = request.content_type == "application/json"
        credentials = await self._credentials(request)
        if isinstance(credentials, web.Response):
            return credentials
        username, password, target = credentials
        username = username.strip().lower()
        address = request.remote or "unknown"
        wait = self.console.throttle.retry_after(username, address)
        if wait > 0:
            locked = TooManyAttempts(
                f"登录失败次数过多，请 {int(wait) + 1} 秒后再试", retry_after=wait
            )
            if is_json:
                raise locked
            error = http_error(locked)
            page = self._login_form(request, error.message, status=error.status)
            page.headers["Retry-After"] = str(int(wait) + 1)
            return page
        operator = await self.accounts.authenticate(username, password)
        if operator is None:
            self.console.throttle.failed(username, address)
            _log.warning("console log-in failed for %r from %s", username[:64], address)
            if is_json:
                raise Unauthenticated("用户名或密码错误")
            return self._login_form(
                request, "用户名或密码错误", status=http_error(Unauthenticated("")).status
            )
        self.console.throttle.succeeded(username)
        return await self._signed_in(operator, target, is_json=is_json)

    async def _signed_in(self, operator: Operator, target: str, *, is_json: bool) -> web.Response:
        token, session = await self.accounts.create_session(
            operator, self.console.settings.session_minutes * 60.0
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
        self.guard.set_session_cookie(response, token)
        response.del_cookie(self.guard.login_cookie, path="/login")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        token = request.cookies.get(self.guard.cookie, "")
        if token:
            await self.accounts.end_session(token)
        response = web.Response(status=302, headers={"Location": "/login"})
        response.del_cookie(self.guard.cookie, path="/")
        return response

    async def session_api(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION]
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
        return web.json_response(openapi_document(ROUTES, self.console.backend.bureau))
