"""Hostile and out-of-range input to the console: where a log-in may send the browser, what
every route answers to values it cannot take, and the headers on every kind of answer."""

from __future__ import annotations

import base64
import re

import aiohttp
import pytest
from console_support import ConsolePair, http_session, login

from gateway.console import Role
from gateway.console.auth import SECURITY_HEADERS, safe_next
from gateway.store.reads import encode_cursor

pytestmark = pytest.mark.e2e

# Every one of these would send the browser off this console, smuggle a header or a line,
# or hide what it is from the operator; each falls back to "/".
HOSTILE_NEXT = [
    "",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "/%2F%2Fevil.example/",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%5c%5cevil.example",
    "/%252F%252Fevil.example",
    "/%2F%252Fevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\nSet-Cookie: stolen=1",
    "/%0d%0aSet-Cookie:%20stolen=1",
    "/%09/evil.example",
    "/ /evil.example",
    " /transfers",
    "/transfers ",
    "/transfers\x00",
    "/transfers\x7f",
    "/transfers\x1b[2J",
    "/\u202e/evil.example",
    "/\u2066evil",
    "/\u3000/evil.example",
    "/\u0085",
    "/%E2%80%AEevil",
    "https://evil.example/",
    "https:/evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example/transfers",
    "transfers",
]
# Plain local paths, kept as they are (the guard's own redirect sends the first one).
LOCAL_NEXT = [
    "/",
    "/transfers",
    "/transfers?direction=outbound&limit=20",
    "/transfers?q=91500000MA5U000000",
    "/dead-letters",
]


def test_safe_next_keeps_plain_local_paths_only() -> None:
    kept = [value for value in HOSTILE_NEXT if safe_next(value) != "/"]
    assert not kept, kept
    assert [safe_next(value) for value in LOCAL_NEXT] == LOCAL_NEXT


_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_FORM_NEXT = re.compile(r'name="next" value="([^"]*)"')


async def _form_login(
    http: aiohttp.ClientSession, base: str, pair: ConsolePair, offered: str
) -> tuple[str, str]:
    """Open the log-in form with ``?next=offered``, then post the form with ``offered`` as
    its ``next`` (as a forged form would): (the form's next field, the redirect target)."""
    async with http.get(f"{base}/login", params={"next": offered}) as r:
        assert r.status == 200, offered
        html = await r.text()
    csrf = _FORM_CSRF.search(html)
    shown = _FORM_NEXT.search(html)
    assert csrf is not None and shown is not None
    account = pair.accounts[Role.VIEWER]
    form = {
        "csrf_token": csrf.group(1),
        "username": account.username,
        "password": account.password,
        "next": offered,
    }
    async with http.post(f"{base}/login", data=form, allow_redirects=False) as r:
        assert r.status == 302, (offered, r.status)
        return shown.group(1), r.headers["Location"]


async def test_log_in_never_sends_the_browser_elsewhere(console_pair: ConsolePair) -> None:
    base = console_pair.url()
    problems: list[str] = []
    async with http_session() as http:
        for offered in HOSTILE_NEXT:
            shown, target = await _form_login(http, base, console_pair, offered)
            if (shown, target) != ("/", "/"):
                problems.append(f"{offered!r}: form next {shown!r}, Location {target!r}")
        for offered in LOCAL_NEXT:
            shown, target = await _form_login(http, base, console_pair, offered)
            if target != offered:
                problems.append(f"{offered!r} lost: Location {target!r}")
    assert not problems, "\n".join(problems)


async def test_the_guard_redirect_returns_to_the_page_asked_for(console_pair: ConsolePair) -> None:
    base = console_pair.url()
    async with http_session() as http:
        async with http.get(
            f"{base}/transfers", params={"direction": "outbound"}, allow_redirects=False
        ) as r:
            assert r.status == 302
            location = r.headers["Location"]
        assert location.startswith("/login?next=")
        async with http.get(base + location) as r:
            html = await r.text()
        shown = _FORM_NEXT.search(html)
        assert shown is not None and shown.group(1) == "/transfers?direction=outbound"


# Values no route can take: each answers 400 with a message in Chinese, never a 500.
_BAD_TIMES = [
    "99999-01-01",
    "0001-01-01T00:00:00",  # Beijing midnight of year 1 is before year 1 in UTC
    "9999-12-31T23:59:59-12:00",  # after year 9999 in UTC
    "2026-13-01",
    "yesterday",
    "2026-01-01\x00",
]
_BAD_PAGE_SIZES = [
    "10**30",
    str(10**30),
    str(2**63),
    "0",
    "-1",
    "201",
    "1e3",
    "2.5",
    "\uff15",  # a full-width five
    " 5",
    "5_0",
]
_BAD_SEQUENCES = ["-1", str(2**63), str(10**30), "abc", "1.5", "\u0661", "+1", "1_0", ""]
_FOREIGN_CURSOR = base64.urlsafe_b64encode(b"\x00\xff not ours").decode()
_TRANSFER_CASES: list[dict[str, str]] = [
    *({"since": t} for t in _BAD_TIMES),
    *({"until": t} for t in _BAD_TIMES),
    *({"limit": n} for n in _BAD_PAGE_SIZES),
    {"cursor": "not-a-cursor"},
    {"cursor": _FOREIGN_CURSOR},
    {"cursor": encode_cursor("2026-01-01T00:00:00\x00", "x")},
    {"cursor": encode_cursor("2026-01-01T00:00:00", "x\x00\x1b[2J")},
    {"cursor": base64.urlsafe_b64encode(b'["2026", 7]').decode()},
    {"q": "91500000\x00"},
    {"peer": "510900\x1b[2J"},
    {"direction": "sideways"},
]
QUERY_CASES: list[tuple[str, dict[str, str], dict[str, str]]] = [
    *(("/api/transfers", query, {}) for query in _TRANSFER_CASES),
    *(("/transfers", query, {}) for query in _TRANSFER_CASES),
    *(("/api/events", {"after": n}, {}) for n in _BAD_SEQUENCES if n),
    *(("/api/events", {"limit": n}, {}) for n in ("0", "501", str(10**30), "x", "")),
    *(("/api/events/stream", {"after": n}, {}) for n in _BAD_SEQUENCES if n),
    *(
        ("/api/events/stream", {}, {"Last-Event-ID": n})
        for n in ("-1", str(2**63), str(10**30), "abc", "1.5", "+1", "7 7")
    ),
    ("/dead-letters", {"redriven": "x\x1b]0;owned\x07"}, {}),
    ("/dead-letters", {"failed": "x\r\ny"}, {}),
]
_CJK = re.compile(r"[\u4e00-\u9fff]")


async def test_out_of_range_query_values_answer_400_in_chinese(console_pair: ConsolePair) -> None:
    base = console_pair.url()
    problems: list[str] = []
    async with http_session() as http:
        await login(http, base, console_pair.accounts[Role.VIEWER])
        for path, query, headers in QUERY_CASES:
            async with http.get(base + path, params=query, headers=headers) as r:
                what = f"{path} {query or headers}"
                if r.status != 400:
                    problems.append(f"{what}: {r.status}")
                    continue
                if path.startswith("/api/"):
                    body = await r.json()
                    if body["error"] != "bad_request" or not _CJK.search(body["message"]):
                        problems.append(f"{what}: {body}")
                else:
                    html = await r.text()
                    if "bad_request" not in html or not _CJK.search(html):
                        problems.append(f"{what}: no Chinese message and code in the page")
    assert not problems, "\n".join(problems)


async def test_path_values_with_control_characters_are_refused(
    console_pair: ConsolePair,
) -> None:
    base = console_pair.url()
    async with http_session() as http:
        csrf = await login(http, base, console_pair.accounts[Role.ADMIN])
        for method, path in (
            ("GET", "/api/transfers/outbound/x%00y"),
            ("GET", "/transfers/inbound/x%1B%5B2J"),
            ("POST", "/api/dead-letters/x%00y/redrive"),
        ):
            async with http.request(
                method, base + path, headers={"X-CSRF-Token": csrf}, allow_redirects=False
            ) as r:
                assert r.status == 400, (path, r.status)
                if path.startswith("/api/"):
                    assert _CJK.search((await r.json())["message"]), path
                else:
                    assert _CJK.search(await r.text()), path


def _missing_headers(response: aiohttp.ClientResponse) -> list[str]:
    missing = [
        name for name, value in SECURITY_HEADERS.items() if response.headers.get(name) != value
    ]
    # Static files may be cached (aiohttp finds a missing one only as it sends the answer).
    static = response.url.path.startswith("/static/")
    if not static and response.headers.get("Cache-Control") != "no-store":
        missing.append("Cache-Control")
    return missing


async def test_redirects_and_errors_carry_the_security_headers(console_pair: ConsolePair) -> None:
    base = console_pair.url()
    problems: list[str] = []

    async def check(
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        status: int,
        data: dict[str, str] | None = None,
    ) -> None:
        async with http.request(method, base + path, data=data, allow_redirects=False) as r:
            if r.status != status:
                problems.append(f"{method} {path}: {r.status}, expected {status}")
            missing = _missing_headers(r)
            if missing:
                problems.append(f"{method} {path} ({r.status}) lacks {missing}")

    async with http_session() as anonymous:
        await check(anonymous, "GET", "/", 302)
        await check(anonymous, "GET", "/transfers?direction=inbound", 302)
        await check(anonymous, "GET", "/no-such-page", 404)
        await check(anonymous, "GET", "/static/no-such-file.css", 404)
        await check(anonymous, "DELETE", "/api/transfers", 405)
        await check(anonymous, "PUT", "/login", 405)
        await check(anonymous, "GET", "/api/transfers", 401)
    account = console_pair.accounts[Role.ADMIN]
    async with http_session() as http:
        async with http.get(base + "/login") as r:
            found = _FORM_CSRF.search(await r.text())
            assert found is not None
        form = {"csrf_token": found.group(1), "username": account.username, "next": "/"}
        await check(http, "POST", "/login", 401, data={**form, "password": "wrong"})
        async with http.get(base + "/login") as r:
            found = _FORM_CSRF.search(await r.text())
            assert found is not None
        form = {**form, "csrf_token": found.group(1), "password": account.password}
        await check(http, "POST", "/login", 302, data=form)
        csrf = await login(http, base, account)
        await check(http, "GET", "/transfers/outbound/no-such-message", 404)
        await check(http, "GET", "/api/transfers/outbound/no-such-message", 404)
        await check(http, "GET", "/api/transfers?limit=x", 400)
        await check(http, "GET", "/no-such-page", 404)
        await check(http, "DELETE", "/api/dead-letters", 405)
        await check(http, "POST", "/integrity/verify", 303, data={"csrf_token": csrf})
        await check(http, "POST", "/dead-letters/no-such/redrive", 303, data={"csrf_token": csrf})
        await check(http, "POST", "/logout", 302, data={"csrf_token": csrf})
    assert not problems, "\n".join(problems)
