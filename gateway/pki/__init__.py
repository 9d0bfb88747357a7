"""The cooperation PKI: dev certificates, loading, and signing-certificate checks.

A cooperation root CA issues every bureau two certificates, both binding the
bureau's division code in a URI subject alternative name
(``urn:chuanyu:bureau:500151``):

- a **TLS** certificate (ECDSA P-256, serverAuth + clientAuth) for mutual-TLS gRPC,
  which also carries the DNS name ``<bureau>.bureau.chuanyu.internal``
  (:func:`bureau_dns_name`): partner channels verify that name, not the address
  they dial, so only the partner bureau's own certificate passes;
- a **signing** certificate (Ed25519 or SM2, digitalSignature + contentCommitment,
  no TLS extended key usage) for envelopes and receipts.

Layout of a PKI directory made by :func:`init_pki` (and grown by
:func:`revoke_certificate`, :func:`issue_crl` and :func:`rotate_signing_key`)::

    DIR/ca.pem, DIR/ca.key
    DIR/crl.pem                                   revoked serials, signed by the CA
    DIR/<bureau>/tls.pem, DIR/<bureau>/tls.key
    DIR/<bureau>/signing.pem, DIR/<bureau>/signing.key              the key in use
    DIR/<bureau>/signing-previous.pem, signing-previous.key          the one before it
    DIR/<bureau>/signing-<keyid8>.pem, signing-<keyid8>.key          every key, by key id

The CA stays ECDSA P-256 whatever the signing suite: an SM2 signing certificate
is an ECDSA-signed certificate carrying an SM2 public key. pyca ``cryptography``
cannot build one (it has no SM2 key type), so :func:`_issue_for_foreign_key`
builds it with a placeholder key and swaps the SubjectPublicKeyInfo before the CA
signs the TBSCertificate; pyca, Tongsuo and ``openssl verify`` all accept the result.

Private keys are unencrypted PKCS#8 PEM with mode 0600: they are development keys
made on the machine that uses them and are never committed.

The package has two halves. :func:`init_pki`, :func:`issue_signing_certificate`,
:func:`rotate_signing_key`, :func:`revoke_certificate`, :func:`issue_crl`,
:func:`expiring_certificates` and the ``load_*`` functions read and write files and
report problems as :class:`~gateway.errors.ConfigInvalid`. Everything else —
:class:`SigningCertificateVerifier`, :func:`bureau_of`, :func:`key_id`,
:func:`certificate_expiry` — works on bytes and certificate objects only and
reports a peer's bad certificate as :class:`~gateway.errors.CertificateRejected`
with one of the ``CERTIFICATE_*`` reasons below. No ``cryptography`` exception
escapes this package.

Revocation fails closed: once a configured CRL is past its next-update, every
certificate of its CA is refused with ``CRL_EXPIRED`` (a
:class:`~gateway.errors.ConfigInvalid`, our fault: the cure is a fresh CRL, not a
change by the peer) until a fresh CRL is loaded. A stale CRL cannot tell a
compromised signing key from a good one, and the records are non-repudiable.
"""

from __future__ import annotations

from gateway.pki.certificates import (
    BUREAU_DNS_SUFFIX,
    BUREAU_URI_PREFIX,
    CERTIFICATE_EXPIRED,
    CERTIFICATE_MALFORMED,
    CERTIFICATE_NO_BUREAU,
    CERTIFICATE_NOT_YET_VALID,
    CERTIFICATE_REVOKED,
    CERTIFICATE_UNTRUSTED,
    CERTIFICATE_USAGE,
    CRL_EXPIRED,
    SIGNING_SUITES,
    CertificateRole,
    bureau_dns_name,
    bureau_of,
    bureau_of_pem,
    certificate_expiry,
    certificate_role,
    is_issued_by,
    key_id,
    key_matches_certificate,
    revocation_reason,
    signing_suite_of,
    tls_name_problem,
)
from gateway.pki.expiry import (
    CertificateExpiry,
    expiring_certificates,
)
from gateway.pki.issuing import (
    init_pki,
    issue_signing_certificate,
)
from gateway.pki.layout import (
    BureauPaths,
    PkiLayout,
)
from gateway.pki.loading import (
    load_certificate,
    load_certificates,
    load_crls,
    load_private_key,
)
from gateway.pki.revocation import (
    issue_crl,
    revoke_certificate,
)
from gateway.pki.rotation import (
    RotatedSigningKey,
    rotate_signing_key,
)
from gateway.pki.verification import (
    SigningCertificateVerifier,
    VerifiedSigner,
    is_crl_issued_by,
)

__all__ = [
    "BUREAU_DNS_SUFFIX",
    "BUREAU_URI_PREFIX",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_MALFORMED",
    "CERTIFICATE_NOT_YET_VALID",
    "CERTIFICATE_NO_BUREAU",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_UNTRUSTED",
    "CERTIFICATE_USAGE",
    "CRL_EXPIRED",
    "SIGNING_SUITES",
    "BureauPaths",
    "CertificateExpiry",
    "CertificateRole",
    "PkiLayout",
    "RotatedSigningKey",
    "SigningCertificateVerifier",
    "VerifiedSigner",
    "bureau_dns_name",
    "bureau_of",
    "bureau_of_pem",
    "certificate_expiry",
    "certificate_role",
    "expiring_certificates",
    "init_pki",
    "is_crl_issued_by",
    "is_issued_by",
    "issue_crl",
    "issue_signing_certificate",
    "key_id",
    "key_matches_certificate",
    "load_certificate",
    "load_certificates",
    "load_crls",
    "load_private_key",
    "revocation_reason",
    "revoke_certificate",
    "rotate_signing_key",
    "signing_suite_of",
    "tls_name_problem",
]
