"""The console's JSON API, authorisation on every endpoint, metrics, health, log-in rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from console_support import (
    COMPLAINANT_NAME,
    COMPLAINANT_PHONE,
    COMPLAINT,
    REGISTRATION,
    SUINING,
    TONGLIANG,
    Account,
    ConsolePair,
    console,
    eventually,
    http_session,
    log_entries,
    login,
    outbound_state,
    record,
    send_local,
)
from prometheus_client.parser import text_string_to_metric_families

from gateway.console import ROUTES, Role
from gateway.console.openapi import openapi_document

pytestmark = pytest.mark.e2e

# The document the server serves, built from the same table: the tests are driven by it.
DOCUMENT = openapi_document(ROUTES, TONGLIANG)
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
]
PAGES = [spec for spec in ROUTES if spec.kind == "page" and spec.permission.value != "public"]
SAMPLE_ID = "00000000-0000-4000-8000-000000000000"


def _url(path: str) -> str:
    return path.format(direction="outbound", message_id=SAMPLE_ID)


async def _send_and_deliver(pair: ConsolePair, data: dict[str, Any]) -> str:
    message_id = await send_local(pair.tongliang, record(data))

    async def delivered() -> bool:
        return await outbound_state(pair.tongliang, message_id) == "delivered"

    await eventually(delivered, what=f"delivery of {message_id}")
    return message_id


async def test_served_document_is_the_table(console_pair: ConsolePair) -> None:
    async with http_session() as http:
        await login(http, console_pair.url(), console_pair.accounts[Role.VIEWER])
        async with http.get(console_pair.url() + "/api/openapi.json") as r:
            assert r.status == 200
            served = await r.json()
    assert served == DOCUMENT
    assert served["openapi"] == "3.1.0"
    assert {"/api/transfers", "/api/events/stream", "/metrics", "/readyz"} <= set(served["paths"])


async def test_every_api_endpoint_is_guarded(console_pair: ConsolePair) -> None:
    """Driven by the OpenAPI document: no session → 401, a role without the permission → 403."""
    base = console_pair.url()
    problems: list[str] = []
    clients = {}
    for role, account in console_pair.accounts.items():
        http = http_session()
        clients[role] = (http, await login(http, base, account))
    try:
        async with http_session() as anonymous:
            for method, path, operation in OPERATIONS:
                permission = operation["x-chuanyu-permission"]
                async with anonymous.request(method, base + _url(path), allow_redirects=False) as r:
                    if permission == "public":
                        # Reachable without a session (an empty log-in post is refused for
                        # its content, not for want of a session).
                        if r.status not in ((200, 403) if method == "POST" else (200, 503)):
                            problems.append(f"{method} {path} public, got {r.status}")
                        continue
                    if r.status != 401 or (await r.json())["error"] != "unauthenticated":
                        problems.append(f"{method} {path} without a session: {r.status}")
                allowed = set(operation["x-chuanyu-roles"])
                for role, (http, csrf) in clients.items():
                    if path == "/api/events/stream" and role.value in allowed:
                        continue  # an endless stream: test_events_api_and_live_stream reads it
                    async with http.request(
                        method,
                        base + _url(path),
                        headers={"X-CSRF-Token": csrf},
                        allow_redirects=False,
                    ) as r:
                        if role.value in allowed and r.status in (401, 403):
                            problems.append(f"{role.value} may {method} {path}: {r.status}")
                        if role.value not in allowed and r.status != 403:
                            problems.append(f"{role.value} must not {method} {path}: {r.status}")
    finally:
        for http, _ in clients.values():
            await http.close()
    assert not problems, "\n".join(problems)
    assert len(OPERATIONS) >= 15


async def test_every_page_is_guarded(console_pair: ConsolePair) -> None:
    """Pages: no session → redirect to the log-in page; a role without the permission → 403."""
    base = console_pair.url()
    problems: list[str] = []
    for spec in PAGES:
        async with http_session() as http:
            async with http.request(
                spec.method, base + _url(spec.path), allow_redirects=False
            ) as r:
                if r.status != 302 or not r.headers["Location"].startswith("/login"):
                    problems.append(f"{spec.method} {spec.path} without a session: {r.status}")
        for role, account in console_pair.accounts.items():
            if role.value in DOCUMENT_ROLES[spec.permission.value]:
                continue
            async with http_session() as http:
                csrf = await login(http, base, account)
                async with http.request(
                    spec.method,
                    base + _url(spec.path),
                    data={"csrf_token": csrf},
                    allow_redirects=False,
                ) as r:
                    if r.status != 403:
                        problems.append(f"{role.value} must not {spec.method} {spec.path}")
    assert not problems, "\n".join(problems)


DOCUMENT_ROLES = {
    "view": {"viewer", "officer", "admin"},
    "personal_data": {"officer"},
    "redrive": {"admin"},
}


async def test_transfers_filters_search_and_keyset_pages(console_pair: ConsolePair) -> None:
    ids = [await _send_and_deliver(console_pair, COMPLAINT)]
    ids.append(await _send_and_deliver(console_pair, REGISTRATION))
    for n in range(3):
        ids.append(
            await _send_and_deliver(
                console_pair, {**COMPLAINT, "complaint_number": f"TS500151202611270010{n}"}
            )
        )
    base = console_pair.url()
    async with http_session() as http:
        await login(http, base, console_pair.accounts[Role.VIEWER])

        async def items(**params: str) -> dict[str, Any]:
            async with http.get(base + "/api/transfers", params=params) as r:
                assert r.status == 200, await r.text()
                result: dict[str, Any] = await r.json()
                return result

        everything = await items(direction="outbound")
        assert [i["message_id"] for i in everything["items"]] == ids[::-1]
        assert all(i["status"] == "delivered" for i in everything["items"])
        assert (await items(record_type="business_registration"))["items"][0]["message_id"] == ids[
            1
        ]
        by_uscc = await items(q=REGISTRATION["uscc"])
        assert [i["message_id"] for i in by_uscc["items"]] == [ids[1]]
        by_number = await items(q=COMPLAINT["complaint_number"])
        assert [i["message_id"] for i in by_number["items"]] == [ids[0]]
        assert [i["message_id"] for i in (await items(q=ids[2]))["items"]] == [ids[2]]
        assert (await items(status="dead_lettered"))["items"] == []
        assert (await items(since="2999-01-01T00:00"))["items"] == []
        # Keyset pages of two: every row once, newest first, then no cursor.
        seen: list[str] = []
        page = await items(direction="outbound", limit="2")
        while True:
            seen += [i["message_id"] for i in page["items"]]
            if not page["next_cursor"]:
                break
            page = await items(direction="outbound", limit="2", cursor=page["next_cursor"])
        assert seen == ids[::-1]
        async with http.get(base + "/api/transfers", params={"status": "lost"}) as r:
            assert r.status == 400
        async with http.get(base + "/api/transfers", params={"cursor": "garbage!"}) as r:
            assert r.status == 400
        # Suining's side lists the same records as inbound.
    async with http_session() as http:
        suining_url = console_pair.url(console_pair.suining)
        assert (await http.get(suining_url + "/api/transfers")).status == 401


async def test_detail_masks_and_reveal_is_logged(console_pair: ConsolePair) -> None:
    message_id = await _send_and_deliver(console_pair, COMPLAINT)
    base = console_pair.url()
    path = f"/api/transfers/outbound/{message_id}"
    async with http_session() as http:
        await login(http, base, console_pair.accounts[Role.VIEWER])
        async with http.get(base + path) as r:
            detail = await r.json()
        text = json.dumps(detail, ensure_ascii=False)
    assert COMPLAINANT_NAME not in text and COMPLAINANT_PHONE not in text
    assert detail["record"]["complainant"]["name"] == "李*"
    assert detail["record"]["complainant"]["phone"] == "138****8000"
    assert detail["masked"] is True
    assert set(detail["personal_fields"]) == {"complainant.name", "complainant.phone"}
    assert detail["signature"]["verdict"] == "valid"
    assert detail["receipt"]["verdict"] == "valid"
    assert detail["header"]["receiver"] == SUINING
    assert [e["kind"] for e in detail["timeline"]][:2] == ["signed", "sent"]

    async with http_session() as http:
        csrf = await login(http, base, console_pair.accounts[Role.OFFICER])
        async with http.post(base + path + "/reveal") as r:
            assert r.status == 403  # no CSRF token
        async with http.post(base + path + "/reveal", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
            revealed = await r.json()
    assert revealed["record"]["complainant"]["name"] == COMPLAINANT_NAME
    assert revealed["masked"] is False
    viewed = await log_entries(console_pair.tongliang, "personal_data_viewed")
    assert len(viewed) == 1
    assert viewed[0].message_id == message_id
    assert json.loads(viewed[0].detail) == {
        "fields": ["complainant.name", "complainant.phone"],
        "operator": console_pair.accounts[Role.OFFICER].username,
    }
    assert COMPLAINANT_NAME not in viewed[0].detail  # the log names fields, never values


async def test_metrics_parse_and_count_per_peer(console_pair: ConsolePair) -> None:
    await _send_and_deliver(console_pair, COMPLAINT)
    async with http_session() as http:
        url = console_pair.url() + "/metrics"
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(url, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}) as r:
            assert r.status == 401
        headers = {"Authorization": f"Bearer {console_pair.metrics_token}"}
        async with http.get(url, headers=headers) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    key = (("outcome", "delivered"), ("peer", SUINING), ("record_type", "consumer_complaint"))
    assert samples[("chuanyu_deliveries_total", key)] == 1
    assert samples[("chuanyu_local_sends_total", (("outcome", "queued"), COMPLAINT_TYPE))] == 1
    assert ("chuanyu_delivery_seconds_count", key[1:]) in samples
    assert samples[("chuanyu_outbox_pending", (("peer", SUINING),))] == 0
    assert samples[("chuanyu_certificate_expiry_seconds", (("certificate", "tls"),))] > 86400
    assert samples[("chuanyu_certificate_expiry_seconds", (("certificate", "signing"),))] > 86400
    assert "chuanyu_inbound_envelopes" in families
    # The partner counted the same envelope as accepted, in its own registry.
    async with http_session() as http:
        suining = console_pair.url(console_pair.suining)
        account = console_pair.accounts[Role.VIEWER]
        assert (
            await http.post(
                suining + "/login", json={"username": account.username, "password": "x" * 12}
            )
        ).status == 401
    registry = console(console_pair.suining).metrics.registry
    value = registry.get_sample_value(
        "chuanyu_inbound_envelopes_total",
        {"peer": TONGLIANG, "record_type": "consumer_complaint", "outcome": "accepted"},
    )
    assert value == 1


COMPLAINT_TYPE = ("record_type", "consumer_complaint")


async def test_metrics_with_a_session(console_pair: ConsolePair) -> None:
    async with http_session() as http:
        await login(http, console_pair.url(), console_pair.accounts[Role.VIEWER])
        async with http.get(console_pair.url() + "/metrics") as r:
            assert r.status == 200
            list(text_string_to_metric_families(await r.text()))


async def test_health_and_readiness(console_pair: ConsolePair) -> None:
    async with http_session() as http:
        async with http.get(console_pair.url() + "/healthz") as r:
            assert r.status == 200
            assert (await r.json())["status"] == "alive"

        async def ready() -> bool:
            async with http.get(console_pair.url() + "/readyz") as r:
                return r.status == 200

        await eventually(ready, what="readiness")
        async with http.get(console_pair.url() + "/readyz") as r:
            body = await r.json()
    assert body["ready"] is True
    assert body["checks"]["store"]["ok"] is True
    assert body["checks"]["certificates"]["tls"]["valid"] is True
    assert body["checks"]["peers"][SUINING]["known"] is True


async def test_login_throttling_answers_429(console_pair: ConsolePair) -> None:
    account = console_pair.accounts[Role.ADMIN]
    wrong = Account(account.username, "not-the-password", account.role)
    async with http_session() as http:
        for _ in range(5):
            async with http.post(
                console_pair.url() + "/login",
                json={"username": wrong.username, "password": wrong.password},
            ) as r:
                assert r.status == 401
        # Locked now, even with the right password.
        async with http.post(
            console_pair.url() + "/login",
            json={"username": account.username, "password": account.password},
        ) as r:
            assert r.status == 429
            assert int(r.headers["Retry-After"]) > 0
        # Another operator from the same address is not locked yet.
        await login(http, console_pair.url(), console_pair.accounts[Role.VIEWER])


async def test_csrf_and_origin_are_checked(console_pair: ConsolePair) -> None:
    base = console_pair.url()
    async with http_session() as http:
        csrf = await login(http, base, console_pair.accounts[Role.VIEWER])
        async with http.post(base + "/api/integrity/verify") as r:
            assert r.status == 403
            assert (await r.json())["error"] == "csrf"
        async with http.post(
            base + "/api/integrity/verify", headers={"X-CSRF-Token": csrf + "x"}
        ) as r:
            assert r.status == 403
        async with http.post(
            base + "/api/integrity/verify",
            headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
        ) as r:
            assert r.status == 403
        async with http.post(base + "/api/integrity/verify", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
            verdict = await r.json()
    assert verdict["ok"] is True
    assert verdict["entries"] >= 0


async def test_session_cookie_flags_and_logout(console_pair: ConsolePair) -> None:
    account = console_pair.accounts[Role.VIEWER]
    credentials = {"username": account.username, "password": account.password}
    async with http_session() as http:
        async with http.post(console_pair.url() + "/login", json=credentials) as r:
            cookie = r.headers["Set-Cookie"]
            csrf = (await r.json())["csrf_token"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        async with http.get(console_pair.url() + "/api/session") as r:
            assert (await r.json())["role"] == "viewer"
        async with http.post(
            console_pair.url() + "/logout", data={"csrf_token": csrf}, allow_redirects=False
        ) as r:
            assert r.status == 302
        async with http.get(console_pair.url() + "/api/session") as r:
            assert r.status == 401
    # Suining runs with the default secure_cookies = true.
    from console_support import add_operators

    suining_accounts = await add_operators(console_pair.suining)
    viewer = suining_accounts[Role.VIEWER]
    async with http_session() as http:
        async with http.post(
            console_pair.url(console_pair.suining) + "/login",
            json={"username": viewer.username, "password": viewer.password},
        ) as r:
            assert r.status == 200
            assert "Secure" in r.headers["Set-Cookie"]


async def test_removed_operator_loses_session(console_pair: ConsolePair) -> None:
    account = console_pair.accounts[Role.OFFICER]
    async with http_session() as http:
        await login(http, console_pair.url(), account)
        await console(console_pair.tongliang).accounts.remove(account.username)
        async with http.get(console_pair.url() + "/api/session") as r:
            assert r.status == 401


async def test_dead_letter_redrive_api(dead_letter_pair: ConsolePair) -> None:
    pair = dead_letter_pair
    message_id = await send_local(pair.tongliang, record(COMPLAINT))

    async def dead() -> bool:
        return await outbound_state(pair.tongliang, message_id) == "dead_lettered"

    await eventually(dead, what="dead letter")
    base = pair.url()
    async with http_session() as http:
        csrf = await login(http, base, pair.accounts[Role.ADMIN])
        async with http.get(base + "/api/dead-letters") as r:
            items = (await r.json())["items"]
        assert [i["message_id"] for i in items] == [message_id]
        assert "UNAVAILABLE" in items[0]["last_error"]
        pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
        url = f"{base}/api/dead-letters/{message_id}/redrive"
        async with http.post(url, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        async with http.post(url, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 409  # no longer a dead letter

    async def delivered() -> bool:
        return await outbound_state(pair.tongliang, message_id) == "delivered"

    await eventually(delivered, what="delivery after re-drive")
    redriven = await log_entries(pair.tongliang, "redriven")
    assert json.loads(redriven[0].detail)["operator"] == pair.accounts[Role.ADMIN].username


async def test_events_api_and_live_stream(console_pair: ConsolePair) -> None:
    base = console_pair.url()
    async with http_session() as http:
        await login(http, base, console_pair.accounts[Role.VIEWER])
        async with http.get(base + "/api/events", params={"after": "0"}) as r:
            before = (await r.json())["items"]
        last = before[-1]["seq"] if before else 0
        async with http.get(base + "/api/events/stream", params={"after": str(last)}) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            message_id = await send_local(console_pair.tongliang, record(COMPLAINT))
            data: dict[str, Any] = {}
            async for line in stream.content:
                if line.startswith(b"data: "):
                    data = json.loads(line[6:])
                    if data["message_id"] == message_id:
                        break
    assert data["kind"] == "signed"
    assert data["seq"] > last
