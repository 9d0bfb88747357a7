"""Reconciliation between partners: signed checkpoints and the exact ids one side lacks.

Either node may ask its partner for a period. Both sign a checkpoint of what they
hold (counts per record type, digests of the id sets, the transfer-log head), and
the partner sends the ids behind its counts. The caller names:

* ``missing_at_peer`` — sent by us, with the partner's signed receipt in hand, yet
  absent from the partner's inbox;
* ``missing_here`` — sent by the partner with our receipt, absent from our inbox.

Periods are counted by the receiver's clock (see :mod:`gateway.checkpoint`), so
equal stores give equal sets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from chuanyu.exchange.v1 import operator_service_pb2 as opb
from gateway.checkpoint import ids_digest, sign_checkpoint, verify_checkpoint
from gateway.clock import to_timestamp, utc_now
from gateway.codec import to_datetime
from gateway.errors import EnvelopeMalformed, GatewayError, PeerNotPartner, SignatureInvalid
from gateway.node.partner import PartnerClient
from gateway.pki import SigningCertificateVerifier
from gateway.signing import Signer
from gateway.store.base import Store
from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["Reconciler"]

_log = logging.getLogger("chuanyu.reconcile")
_MAX_PERIOD = dt.timedelta(days=366)


def _period(start: Timestamp, end: Timestamp) -> tuple[dt.datetime, dt.datetime]:
    begin = to_datetime(start, field="period_start")
    finish = to_datetime(end, field="period_end")
    if not begin < finish or finish - begin > _MAX_PERIOD:
        raise EnvelopeMalformed(
            f"reconciliation period {begin.isoformat()} … {finish.isoformat()} is empty, "
            "reversed or longer than a year"
        )
    return begin, finish


@dataclass(slots=True)
class Reconciler:
    bureau: str
    partners: frozenset[str]
    signer: Signer
    verifier: SigningCertificateVerifier
    store: Store
    clients: Mapping[str, PartnerClient]

    async def answer(
        self, request: xpb.ReconcileRequest, *, tls_peer: str | None
    ) -> xpb.ReconcileResponse:
        """The partner asks: sign our account of the period and show the ids behind it."""
        if tls_peer is None or tls_peer not in self.partners:
            raise PeerNotPartner(f"TLS peer {tls_peer} is not a partner of bureau {self.bureau}")
        now = utc_now()
        theirs = verify_checkpoint(
            request.checkpoint, issuer=tls_peer, verifier=self.verifier, now=now
        )
        start, end = _period(request.period_start, request.period_end)
        account = await self.store.period_account(tls_peer, start, end)
        ours = sign_checkpoint(
            self.signer, peer=tls_peer, period_start=start, period_end=end, account=account, now=now
        )
        await self.store.append_log(
            [
                LogEvent(
                    EventKind.CHECKPOINT,
                    Direction.INBOUND,
                    peer=tls_peer,
                    detail={
                        "period": f"{start.isoformat()}/{end.isoformat()}",
                        "their_log_seq": int(theirs.log_seq),
                        "their_log_head": theirs.log_head.hex(),
                        "sent": len(account.all_sent()),
                        "received": len(account.all_received()),
                    },
                )
            ]
        )
        return xpb.ReconcileResponse(
            checkpoint=ours,
            received_message_ids=sorted(account.all_received()),
            sent_message_ids=sorted(account.all_sent()),
        )

    async def reconcile(
        self, peer: str, start: dt.datetime, end: dt.datetime
    ) -> opb.ReconcilePeriodResponse:
        """Ask ``peer`` for the period and name what each side lacks."""
        client = self.clients.get(peer)
        if client is None:
            raise PeerNotPartner(f"bureau {peer} is not a partner of bureau {self.bureau}")
        now = utc_now()
        account = await self.store.period_account(peer, start, end)
        ours = sign_checkpoint(
            self.signer, peer=peer, period_start=start, period_end=end, account=account, now=now
        )
        response = await client.reconcile(
            xpb.ReconcileRequest(
                period_start=to_timestamp(start), period_end=to_timestamp(end), checkpoint=ours
            )
        )
        theirs = verify_checkpoint(
            response.checkpoint, issuer=peer, verifier=self.verifier, now=now
        )
        peer_received = frozenset(response.received_message_ids)
        peer_sent = frozenset(response.sent_message_ids)
        # The ids must be the ones the partner signed for.
        if (
            ids_digest(peer_received) != theirs.received_ids_sha256
            or ids_digest(peer_sent) != theirs.sent_ids_sha256
        ):
            raise SignatureInvalid(
                f"bureau {peer} sent ids that differ from its signed checkpoint",
                reason="CHECKPOINT_IDS_MISMATCH",
            )
        missing_at_peer = sorted(account.all_sent() - peer_received)
        missing_here = sorted(peer_sent - account.all_received())
        await self.store.append_log(
            [
                LogEvent(
                    EventKind.CHECKPOINT,
                    Direction.OUTBOUND,
                    peer=peer,
                    detail={
                        "period": f"{start.isoformat()}/{end.isoformat()}",
                        "their_log_seq": int(theirs.log_seq),
                        "their_log_head": theirs.log_head.hex(),
                        "missing_at_peer": ",".join(missing_at_peer[:50]),
                        "missing_here": ",".join(missing_here[:50]),
                        "gaps": len(missing_at_peer) + len(missing_here),
                    },
                )
            ]
        )
        if missing_at_peer or missing_here:
            _log.warning(
                "reconciliation with %s for %s…%s: %d missing there, %d missing here",
                peer,
                start.isoformat(),
                end.isoformat(),
                len(missing_at_peer),
                len(missing_here),
            )
        return opb.ReconcilePeriodResponse(
            peer=peer,
            period_start=to_timestamp(start),
            period_end=to_timestamp(end),
            missing_at_peer=missing_at_peer,
            missing_here=missing_here,
            ours=ours,
            theirs=response.checkpoint,
        )

    async def run(self, interval_seconds: float) -> None:
        """Every interval, reconcile the interval before the last with every partner."""
        while True:
            await asyncio.sleep(interval_seconds)
            end = utc_now() - dt.timedelta(seconds=interval_seconds)
            start = end - dt.timedelta(seconds=interval_seconds)
            for peer in sorted(self.clients):
                try:
                    await self.reconcile(peer, start, end)
                except GatewayError as exc:
                    _log.warning("periodic reconciliation with %s failed: %s", peer, exc.message)
