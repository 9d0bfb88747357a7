"""The node: gRPC services, inbound acceptance, outbox dispatch, wired together."""

from __future__ import annotations

from gateway.node.node import GatewayNode, NodeIdentity, Surface, load_identity
from gateway.node.partner import PartnerHealth

__all__ = ["GatewayNode", "NodeIdentity", "PartnerHealth", "Surface", "load_identity"]
