"""Who a node is: its keys and certificates, checked to belong to its bureau, and the
gRPC options its servers and partner channels use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography.hazmat.primitives import serialization

from gateway.clock import utc_now
from gateway.config import NodeConfig
from gateway.errors import ConfigInvalid
from gateway.pki import (
    SigningCertificateVerifier,
    bureau_of,
    key_id,
    key_matches_certificate,
    load_certificate,
    load_certificates,
    load_crls,
    load_private_key,
    signing_suite_of,
    tls_name_problem,
)
from gateway.signing import Signer, suite_named

__all__ = ["NodeIdentity", "channel_options", "load_identity", "server_options"]


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    signer: Signer
    verifier: SigningCertificateVerifier
    server_credentials: grpc.ServerCredentials
    channel_credentials: grpc.ChannelCredentials


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigInvalid(f"cannot read {path}: {exc.strerror}") from exc


def load_identity(config: NodeConfig) -> NodeIdentity:
    """Load keys and certificates, and check they belong to this bureau."""
    bureau = config.bureau
    cas = load_certificates(config.tls.ca)
    signing_cert = load_certificate(config.signing.cert)
    if bureau_of(signing_cert) != bureau:
        raise ConfigInvalid(
            f"{config.source}: signing.cert {config.signing.cert} is for bureau "
            f"{bureau_of(signing_cert)}, not {bureau}"
        )
    tls_cert = load_certificate(config.tls.cert)
    if bureau_of(tls_cert) != bureau:
        raise ConfigInvalid(
            f"{config.source}: tls.cert {config.tls.cert} is for bureau {bureau_of(tls_cert)}, "
            f"not {bureau}"
        )
    name_problem = tls_name_problem(tls_cert, bureau)
    if name_problem is not None:
        # Partners verify that name: without it every partner refuses this node as a server.
        raise ConfigInvalid(
            f"{config.source}: tls.cert {config.tls.cert} {name_problem}, which partners "
            f"verify; re-issue it for the same key with `chuanyu-gateway certs init PKI_DIR "
            f"--bureau {bureau}` (see certs/README.md)"
        )
    suite = suite_named(config.signing.suite)
    signing_key = load_private_key(config.signing.key)
    suite.check_private_key(signing_key)
    if not key_matches_certificate(signing_cert, signing_key):
        raise ConfigInvalid(
            f"{config.source}: signing.key {config.signing.key} is not the key of "
            f"signing.cert {config.signing.cert}"
        )
    if signing_suite_of(signing_cert) != suite.name:
        raise ConfigInvalid(
            f"{config.source}: signing.suite is {suite.name} but signing.cert holds a "
            f"{signing_suite_of(signing_cert)} key"
        )
    crls = load_crls(config.tls.crl) if config.tls.crl is not None else []
    verifier = SigningCertificateVerifier(cas, crls=crls)
    # Our own certificate must pass the checks our partners will make.
    verifier.verify(signing_cert.public_bytes(serialization.Encoding.DER), now=utc_now())
    signer = Signer(
        bureau=bureau,
        suite=suite,
        private_key=signing_key,
        certificate_der=signing_cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(signing_cert),
    )
    ca_pem = _read(config.tls.ca)
    tls_key_pem, tls_cert_pem = _read(config.tls.key), _read(config.tls.cert)
    return NodeIdentity(
        signer=signer,
        verifier=verifier,
        server_credentials=grpc.ssl_server_credentials(
            [(tls_key_pem, tls_cert_pem)], root_certificates=ca_pem, require_client_auth=True
        ),
        channel_credentials=grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=tls_key_pem, certificate_chain=tls_cert_pem
        ),
    )


def _grpc_options(config: NodeConfig) -> list[tuple[str, int | str]]:
    size = config.exchange.max_message_bytes
    return [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def channel_options(config: NodeConfig) -> list[tuple[str, int | str]]:
    return [
        *_grpc_options(config),
        # The dispatcher keeps its own per-partner backoff and probes; gRPC's reconnect
        # backoff, shared through the global subchannel pool by every channel to an
        # address, must not stall it for minutes after the partner is back.
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]


def server_options(config: NodeConfig) -> list[tuple[str, int | str]]:
    return [
        *_grpc_options(config),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.max_connection_idle_ms", 300_000),
    ]
