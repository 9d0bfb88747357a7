"""Every route of the console, declared once.

:data:`ROUTES` is the one declaration that wires a handler, the permission its guard
checks, and the route's entry in the OpenAPI document at ``/api/openapi.json``
(:mod:`gateway.console.openapi`). ``handler`` names a method of one of the page
objects in :mod:`gateway.console.pages`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST

from gateway.console.accounts import Permission

__all__ = ["ROUTES", "TRANSFER_QUERY", "RouteSpec"]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route: who may call it, and what the OpenAPI document says about it."""

    method: str
    path: str
    handler: str  # name of a page object's method (and the OpenAPI operationId)
    permission: Permission
    kind: str  # "page" (HTML) or "api" (JSON, SSE or metrics text)
    summary: str
    query: tuple[tuple[str, str], ...] = ()  # (name, description)
    content_type: str = "application/json"
    csrf: bool = True  # POST only; the log-in form has its own pre-session token


TRANSFER_QUERY = (
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
    RouteSpec("GET", "/transfers", "transfers_page", V, "page", "Transfers", TRANSFER_QUERY),
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
        TRANSFER_QUERY,
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
