"""gRPC servicers: thin adapters between the wire and the node's services.

One module per service (:mod:`.exchange` for partners, :mod:`.local` for the
bureau's systems, :mod:`.operator` for operators' tools) and one wrapper per call
shape (:mod:`.calls`), where requests are parsed and errors become statuses, and
one interceptor (:mod:`.admission`) that lets only partners call the partner port.
"""

from __future__ import annotations

from gateway.node.grpc.admission import PartnersOnly
from gateway.node.grpc.calls import HARD_LIMIT_HEADROOM, tls_peer_bureau
from gateway.node.grpc.exchange import EXCHANGE_SERVICE, exchange_handler
from gateway.node.grpc.local import LOCAL_SERVICE, local_handler
from gateway.node.grpc.operator import OPERATOR_SERVICE, operator_handler

__all__ = [
    "EXCHANGE_SERVICE",
    "HARD_LIMIT_HEADROOM",
    "LOCAL_SERVICE",
    "OPERATOR_SERVICE",
    "PartnersOnly",
    "exchange_handler",
    "local_handler",
    "operator_handler",
    "tls_peer_bureau",
]
