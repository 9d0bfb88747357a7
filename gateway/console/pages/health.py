"""Liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.clock import utc_now
from gateway.console.health import certificate_statuses
from gateway.console.metrics import GaugeSnapshot

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["HealthPages"]


class HealthPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.backend = console.backend

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "alive", "bureau": self.backend.bureau})

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        now = utc_now()
        checks: dict[str, dict[str, Any]] = {}
        try:
            problem = await asyncio.wait_for(self.backend.check_store(), timeout=2.0)
        except TimeoutError:
            problem = "timed out"
        checks["store"] = {"ok": True} if not problem else {"ok": False, "error": problem}
        certs = certificate_statuses(self.backend.certificates())
        checks["certificates"] = {
            "ok": all(c.valid(now) for c in certs),
            **{c.name: {"valid": c.valid(now), "days_left": c.days_left(now)} for c in certs},
        }
        health = self.backend.peer_health()
        if any(p.reachable is None for p in health.values()):
            # A partner not heard from since start (or since it was re-routed): ask it now
            # rather than answer "unknown" until the next periodic probe.
            with contextlib.suppress(TimeoutError):
                health = await asyncio.wait_for(self.backend.probe_peers(), timeout=4.0)
        peers = {
            bureau: {"known": p.reachable is not None, "reachable": p.reachable}
            for bureau, p in health.items()
        }
        checks["peers"] = {"ok": all(p["known"] for p in peers.values()), **peers}
        ready = all(bool(c["ok"]) for c in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def metrics_text(self, request: web.Request) -> web.StreamResponse:
        now = utc_now()
        reads = self.backend.reads
        backlog = await reads.backlog_by_peer()
        inbound = await reads.inbound_counts()
        latest = await reads.log_latest(1)
        snapshot = GaugeSnapshot(
            inbox_undelivered=sum(c.undelivered for c in inbound),
            log_entries=latest[-1].seq if latest else 0,
        )
        for bureau, peer in self.backend.peer_health().items():
            b = backlog.get(bureau)
            snapshot.pending[bureau] = 0 if b is None else b.pending
            snapshot.dead_letters[bureau] = 0 if b is None else b.dead_lettered
            oldest = None if b is None else b.oldest_pending
            snapshot.oldest_pending_age[bureau] = (
                (now - dt.datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
            )
            if peer.reachable is not None:
                snapshot.peer_reachable[bureau] = 1.0 if peer.reachable else 0.0
        for cert in certificate_statuses(self.backend.certificates()):
            snapshot.certificate_expiry[cert.name] = cert.seconds_left(now)
        verdict = self.console.integrity.status.verdict
        snapshot.log_intact = None if verdict is None else float(verdict.ok)
        metrics = self.console.metrics
        metrics.update(snapshot)
        body = await asyncio.to_thread(generate_latest, metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
