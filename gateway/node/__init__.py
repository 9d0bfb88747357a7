"""The node: gRPC services, inbound acceptance, outbox dispatch, wired together."""

from __future__ import annotations

from gateway.node.node import GatewayNode, NodeIdentity, load_identity

__all__ = ["GatewayNode", "NodeIdentity", "load_identity"]
