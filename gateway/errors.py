"""Every error the gateway raises, under one root.

::

    GatewayError                  unclassified: taken as ours (never answered INTERNAL)
    ├── PeerError                 the caller's fault: we refuse what it sent
    │   ├── RecordInvalid           a record breaks a field rule (carries violations)
    │   │   └── LocalFormatError      (gateway.adapter) a local file breaks its format
    │   │       ├── LocalFileInvalid      decoding refused the whole file
    │   │       └── RecordNotEncodable    a record the local format cannot hold
    │   ├── EnvelopeMalformed       bytes that do not parse as an envelope/header/record
    │   ├── PayloadDigestMismatch   payload bytes differ from the signed digest
    │   ├── SignatureInvalid        signature does not verify / suite or key id mismatch
    │   ├── CertificateRejected     signing certificate untrusted, expired, wrong usage
    │   ├── SenderMismatch          TLS peer or signer is not the header's sender
    │   ├── PeerNotPartner          TLS peer is not a configured partner
    │   ├── WrongReceiver           header names another node
    │   ├── EnvelopeStale           created-at outside the freshness window
    │   ├── UnknownCorrelation      feedback answers a record we do not know
    │   ├── MessageIdReused         a message id already accepted, offered with other content
    │   ├── MessageTooLarge         a request over [exchange] max_message_bytes (carries limit)
    │   ├── UnknownPeer             local caller names a bureau we have no route to
    │   ├── NotFound                local caller asks for something we do not have
    │   │   └── AdapterNotFound       (gateway.adapter) no adapter of that name installed
    │   ├── IllegalTransition       an outbound record is not in a state the request fits
    │   ├── AgreementRefused        (gateway.agreements) outside the agreement named
    │   └── EncodeContextInvalid    (gateway.adapter) a batch header value is missing
    └── GatewayFault              our fault: retrying later may help
        ├── StoreUnavailable        the durable store cannot commit
        ├── PeerUnavailable         the partner node cannot be reached
        │   └── TlsServerNotPartner   the server answering is not the partner bureau
        ├── Overloaded              a partner is over its call limits (carries retry_after)
        ├── ConfigInvalid           configuration refused at start
        │   └── AgreementFileInvalid  (gateway.agreements) an agreement file breaks a rule
        ├── AdapterBroken           (gateway.adapter) an installed adapter fails to load
        ├── AnonymisationFailed     (gateway.retention) a record cannot be anonymised
        └── VaultError              (gateway.vault) a stored blob cannot be decrypted

Each class carries a stable upper-case ``reason`` (sent to callers as
``google.rpc.ErrorInfo.reason``). gRPC status codes are assigned in exactly one
place, :mod:`gateway.node.status`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CertificateRejected",
    "ConfigInvalid",
    "EnvelopeMalformed",
    "EnvelopeStale",
    "FieldViolation",
    "GatewayError",
    "GatewayFault",
    "IllegalTransition",
    "MessageIdReused",
    "MessageTooLarge",
    "NotFound",
    "Overloaded",
    "PayloadDigestMismatch",
    "PeerError",
    "PeerNotPartner",
    "PeerUnavailable",
    "RecordInvalid",
    "SenderMismatch",
    "SignatureInvalid",
    "StoreUnavailable",
    "TlsServerNotPartner",
    "UnknownCorrelation",
    "UnknownPeer",
    "WrongReceiver",
]


class GatewayError(Exception):
    """Root of every error raised by Chuanyu Gateway."""

    reason = "GATEWAY_ERROR"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class PeerError(GatewayError):
    """The caller sent something we refuse; sending it again unchanged will not help."""


class GatewayFault(GatewayError):
    """Something on our side failed; the caller may retry later."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One broken rule: where (dotted path), which rule, and a message safe to log."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.rule}]"


class RecordInvalid(PeerError):
    reason = "RECORD_INVALID"

    def __init__(self, violations: list[FieldViolation], *, context: str = "record") -> None:
        self.violations = tuple(violations)
        summary = "; ".join(str(v) for v in self.violations[:5])
        more = len(self.violations) - 5
        if more > 0:
            summary += f"; and {more} more"
        super().__init__(f"{context} is invalid: {summary}")


class EnvelopeMalformed(PeerError):
    reason = "ENVELOPE_MALFORMED"


class PayloadDigestMismatch(PeerError):
    reason = "PAYLOAD_DIGEST_MISMATCH"


class SignatureInvalid(PeerError):
    reason = "SIGNATURE_INVALID"


class CertificateRejected(PeerError):
    reason = "CERTIFICATE_REJECTED"


class SenderMismatch(PeerError):
    reason = "SENDER_MISMATCH"


class PeerNotPartner(PeerError):
    reason = "PEER_NOT_PARTNER"


class WrongReceiver(PeerError):
    reason = "WRONG_RECEIVER"


class EnvelopeStale(PeerError):
    reason = "ENVELOPE_STALE"


class UnknownCorrelation(PeerError):
    reason = "UNKNOWN_CORRELATION"


class MessageIdReused(PeerError):
    """A (sender, message id) already in the inbox arrives with another payload or header."""

    reason = "MESSAGE_ID_REUSED"


class MessageTooLarge(PeerError):
    """A request bigger than the node accepts; the caller must split it, not retry it."""

    reason = "MESSAGE_TOO_LARGE"

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"request of {size} bytes is over this node's limit of {limit} bytes")


class UnknownPeer(PeerError):
    reason = "UNKNOWN_PEER"


class NotFound(PeerError):
    reason = "NOT_FOUND"


class IllegalTransition(PeerError):
    """The request does not apply to the record's state (re-driving a delivered record)."""

    reason = "ILLEGAL_TRANSITION"


class StoreUnavailable(GatewayFault):
    reason = "STORE_UNAVAILABLE"


class PeerUnavailable(GatewayFault):
    reason = "PEER_UNAVAILABLE"


class TlsServerNotPartner(PeerUnavailable):
    """The server at a partner's address holds a certificate that does not name that
    partner bureau: our routing is wrong or someone stands in between. Nothing is sent;
    records wait for the right server, as for an unreachable partner."""

    reason = "TLS_SERVER_NOT_PARTNER"


class Overloaded(GatewayFault):
    """A partner is over its limit; ``retry_after`` (seconds) says when to come back."""

    reason = "PEER_OVER_LIMIT"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigInvalid(GatewayFault):
    reason = "CONFIG_INVALID"
