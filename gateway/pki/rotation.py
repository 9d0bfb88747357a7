"""Rotating a bureau's signing key while the old one stays valid."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from gateway.errors import ConfigInvalid
from gateway.pki.certificates import (
    _aware,
    bureau_of,
    is_issued_by,
    key_id,
    key_matches_certificate,
)
from gateway.pki.issuer import (
    _BACKDATE,
    _check_valid_days,
    _Issuer,
    _load_ca_certificate,
    _write_cert,
    _write_key,
)
from gateway.pki.issuing import (
    _check_signing_suite,
    _new_signing_key,
    _signing_certificate,
    _suite_of_key,
)
from gateway.pki.layout import PkiLayout
from gateway.pki.loading import (
    load_certificate,
    load_private_key,
)
from gateway.signing import Ed25519Suite


@dataclass(frozen=True)
class RotatedSigningKey:
    """What :func:`rotate_signing_key` did: the new pair in use, the old one kept."""

    bureau: str
    suite: str
    key_id: str
    previous_key_id: str
    # signing.pem / signing.key, now the new pair.
    cert: Path
    key: Path
    # signing-<keyid8>.pem / .key: the new pair under its own name.
    archived_cert: Path
    archived_key: Path
    # signing-previous.pem / .key: the pair that was in use before.
    previous_cert: Path
    previous_key: Path


def _archive_paths(folder: Path, cert: x509.Certificate) -> tuple[Path, Path]:
    stem = f"signing-{key_id(cert)[:8]}"
    return folder / f"{stem}.pem", folder / f"{stem}.key"


def rotate_signing_key(
    layout: PkiLayout,
    bureau: str,
    *,
    suite: str | None = None,
    valid_days: int = 825,
    now: dt.datetime | None = None,
) -> RotatedSigningKey:
    """Give ``bureau`` a new signing key and certificate while the old one stays valid.

    The old pair is copied to ``signing-previous.*`` and ``signing-<keyid8>.*``, the
    new pair is written to ``signing-<keyid8>.*`` and then over ``signing.*``. Nothing
    is revoked: envelopes signed with the old key carry its certificate and still
    verify against the CA until it expires (or is revoked with
    :func:`revoke_certificate`). ``suite`` defaults to the current key's suite;
    another suite switches the bureau to it. A node signs with the new key from its
    next start.
    """
    now = _aware(now)
    _check_valid_days(valid_days)
    paths = layout.bureau(bureau)
    issuer = _Issuer(layout, _load_ca_certificate(layout.ca_cert), None)
    old_cert = load_certificate(paths.signing_cert)
    old_key = load_private_key(paths.signing_key)
    if not key_matches_certificate(old_cert, old_key):
        # The only way to get here through this module is a rotation interrupted
        # between writing signing.key and signing.pem; both pairs are archived.
        raise ConfigInvalid(
            f"{paths.signing_cert} does not match {paths.signing_key} (an interrupted "
            f"rotation?): copy a matching signing-<keyid8>.pem/.key pair from "
            f"{paths.signing_cert.parent} over signing.pem/.key and rotate again"
        )
    if not is_issued_by(old_cert, issuer.cert) or bureau_of(old_cert) != bureau:
        raise ConfigInvalid(
            f"{paths.signing_cert} is not a signing certificate of bureau {bureau} issued by "
            f"{layout.ca_cert}"
        )
    chosen = _check_signing_suite(suite or _suite_of_key(old_key) or Ed25519Suite.name)
    new_key = _new_signing_key(chosen)
    new_cert = _signing_certificate(
        issuer,
        new_key.public_key(),
        bureau,
        not_before=now - _BACKDATE,
        valid_days=valid_days,
    )
    folder = paths.signing_cert.parent
    archived_cert, archived_key = _archive_paths(folder, new_cert)
    old_archived_cert, old_archived_key = _archive_paths(folder, old_cert)
    # Order matters: every pair is safe under its own name before signing.* changes.
    _write_key(archived_key, new_key)
    _write_cert(archived_cert, new_cert)
    if not old_archived_key.exists():
        _write_key(old_archived_key, old_key)
        _write_cert(old_archived_cert, old_cert)
    _write_key(paths.previous_signing_key, old_key)
    _write_cert(paths.previous_signing_cert, old_cert)
    _write_key(paths.signing_key, new_key)
    _write_cert(paths.signing_cert, new_cert)
    return RotatedSigningKey(
        bureau=bureau,
        suite=chosen,
        key_id=key_id(new_cert),
        previous_key_id=key_id(old_cert),
        cert=paths.signing_cert,
        key=paths.signing_key,
        archived_cert=archived_cert,
        archived_key=archived_key,
        previous_cert=paths.previous_signing_cert,
        previous_key=paths.previous_signing_key,
    )
