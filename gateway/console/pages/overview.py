"""The overview: per partner reachability, backlog and counts; throughput; certificates;
the log's integrity (and verifying it now)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.clock import utc_now
from gateway.console.health import CertificateStatus, certificate_statuses
from gateway.console.labels import beijing_text

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["OverviewPages", "throughput_chart"]


@dataclass
class _PeerView:
    peer: str
    name: str
    address: str = ""
    reachable: bool | None = None
    last_error: str = ""
    checked_at: str = ""
    pending: int = 0
    dead_letters: int = 0
    oldest_pending: str | None = None
    oldest_age_seconds: float | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


_BLANK = dict.fromkeys(
    ("sent", "pending", "dead_lettered", "rejected", "received", "awaiting_local"), 0
)


class OverviewPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.backend = console.backend

    async def _overview(self, now: dt.datetime) -> dict[str, Any]:
        reads = self.backend.reads
        outbound = await reads.outbound_counts()
        inbound = await reads.inbound_counts()
        backlog = await reads.backlog_by_peer()
        hours = await reads.throughput(now)
        peers: dict[str, _PeerView] = {}
        for bureau, health in self.backend.peer_health().items():
            peers[bureau] = _PeerView(
                peer=bureau,
                name=self.console.peer_name(bureau),
                address=health.address,
                reachable=health.reachable,
                last_error=health.error,
                checked_at="" if health.checked_at is None else health.checked_at.isoformat(),
            )

        def peer(bureau: str) -> _PeerView:
            if bureau not in peers:
                peers[bureau] = _PeerView(bureau, self.console.peer_name(bureau))
            return peers[bureau]

        for o in outbound:
            key = {"delivered": "sent"}.get(o.state, o.state)
            row = peer(o.peer).counts.setdefault(o.record_type, dict(_BLANK))
            row[key] = row.get(key, 0) + o.count
        for i in inbound:
            row = peer(i.peer).counts.setdefault(i.record_type, dict(_BLANK))
            row["received"] += i.received
            row["awaiting_local"] += i.undelivered
        for bureau, b in backlog.items():
            view = peer(bureau)
            view.pending, view.dead_letters, view.oldest_pending = (
                b.pending,
                b.dead_lettered,
                b.oldest_pending,
            )
            if b.oldest_pending:
                oldest = dt.datetime.fromisoformat(b.oldest_pending)
                view.oldest_age_seconds = (now - oldest).total_seconds()
        return {
            "now": now.isoformat(),
            "peers": peers,
            "throughput": hours,
            "certificates": certificate_statuses(self.backend.certificates()),
            "integrity": self.console.integrity.status,
        }

    async def overview_page(self, request: web.Request) -> web.StreamResponse:
        now = utc_now()
        data = await self._overview(now)
        certificates: list[CertificateStatus] = data["certificates"]
        return self.console.render(
            request,
            "overview.html",
            {
                "title": "概览",
                "peers": list(data["peers"].values()),
                "chart": throughput_chart(data["throughput"]),
                "certificates": [
                    {
                        "name": c.name,
                        "label": "TLS 证书" if c.name == "tls" else "签名证书",
                        **_validity(c, now),
                    }
                    for c in certificates
                ],
                "integrity": data["integrity"].as_json(),
            },
        )

    async def overview_api(self, request: web.Request) -> web.StreamResponse:
        now = utc_now()
        data = await self._overview(now)
        certificates: list[CertificateStatus] = data["certificates"]
        return web.json_response(
            {
                "bureau": self.backend.bureau,
                "now": data["now"],
                "peers": [
                    {
                        "peer": p.peer,
                        "address": p.address,
                        "reachable": p.reachable,
                        "last_error": p.last_error,
                        "checked_at": p.checked_at or None,
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
                    c.name: {"subject": c.subject, **_validity(c, now)} for c in certificates
                },
                "integrity": data["integrity"].as_json(),
            }
        )

    async def integrity_api(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.console.integrity.status.as_json())

    async def verify_api(self, request: web.Request) -> web.StreamResponse:
        status = await self.console.integrity.verify()
        return web.json_response(status.as_json())

    async def verify_page(self, request: web.Request) -> web.StreamResponse:
        await self.console.integrity.verify()
        raise web.HTTPSeeOther("/")


def _validity(cert: CertificateStatus, now: dt.datetime) -> dict[str, Any]:
    return {
        "not_after": cert.not_after.isoformat(),
        "days_left": cert.days_left(now),
        "valid": cert.valid(now),
    }


def throughput_chart(hours: list[tuple[str, int, int]]) -> dict[str, Any]:
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
                "hour": beijing_text(hour.replace(":00", ":00:00+00:00"))[11:16],
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
