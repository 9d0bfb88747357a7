"""The CA's certificate revocation list: issuing it and revoking certificates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.errors import ConfigInvalid
from gateway.pki.certificates import (
    _aware,
    _describe,
    is_issued_by,
)
from gateway.pki.issuer import (
    _check_valid_days,
    _Issuer,
    _load_ca_certificate,
    _write_atomically,
)
from gateway.pki.layout import PkiLayout
from gateway.pki.loading import load_crls
from gateway.pki.verification import is_crl_issued_by

_CRL_VALID_DAYS = 30


def _next_crl_number(crl: x509.CertificateRevocationList | None) -> int:
    if crl is None:
        return 1
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    except x509.ExtensionNotFound:
        return 1


def _load_own_crl(layout: PkiLayout, ca: x509.Certificate) -> x509.CertificateRevocationList | None:
    if not layout.crl.exists():
        return None
    crls = load_crls(layout.crl)
    if len(crls) != 1 or not is_crl_issued_by(crls[0], ca):
        raise ConfigInvalid(
            f"{layout.crl} is not one CRL signed by {layout.ca_cert}; remove it to start afresh "
            "(its revocations are then lost)"
        )
    return crls[0]


def issue_crl(
    layout: PkiLayout,
    *,
    revoke: Sequence[tuple[x509.Certificate, x509.ReasonFlags]] = (),
    valid_days: int = _CRL_VALID_DAYS,
    now: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """Re-issue the CA's CRL at ``layout.crl``, adding the ``revoke`` certificates.

    The whole CRL is rebuilt and re-signed each time: the entries of the current
    ``crl.pem`` (which must be signed by the CA) are kept, the CRL number goes up,
    this-update is ``now`` and next-update ``valid_days`` later (never beyond the
    CA's own expiry). A certificate already listed keeps its first entry. Run it
    before next-update passes, or verifiers holding the CRL fail closed.
    """
    now = _aware(now)
    _check_valid_days(valid_days)
    issuer = _Issuer(layout, _load_ca_certificate(layout.ca_cert), None)
    current = _load_own_crl(layout, issuer.cert)
    entries: dict[int, x509.RevokedCertificate] = {}
    if current is not None:
        entries = {entry.serial_number: entry for entry in current}
    for cert, reason in revoke:
        if not is_issued_by(cert, issuer.cert):
            raise ConfigInvalid(
                f"cannot revoke {_describe(cert)}: it is not issued by {layout.ca_cert}"
            )
        if cert.serial_number in entries:
            continue
        revoked = x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
        revoked = revoked.revocation_date(now)
        # RFC 5280 §5.3.1: leave the reason out rather than say "unspecified".
        if reason is not x509.ReasonFlags.unspecified:
            revoked = revoked.add_extension(x509.CRLReason(reason), critical=False)
        entries[cert.serial_number] = revoked.build()
    next_update = min(now + dt.timedelta(days=valid_days), issuer.cert.not_valid_after_utc)
    ca_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(_next_crl_number(current)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    for entry in entries.values():
        builder = builder.add_revoked_certificate(entry)
    crl = issuer.sign_crl(builder)
    _write_atomically(layout.crl, crl.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return crl


def revoke_certificate(
    layout: PkiLayout,
    cert: x509.Certificate,
    *,
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    valid_days: int = _CRL_VALID_DAYS,
    now: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """Add ``cert`` (issued by the layout's CA) to the CRL and re-issue it."""
    return issue_crl(layout, revoke=[(cert, reason)], valid_days=valid_days, now=now)
