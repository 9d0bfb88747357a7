"""Which certificate files expire soon."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway.pki.certificates import (
    CertificateRole,
    _aware,
    bureau_of,
    certificate_expiry,
    certificate_role,
    key_id,
)
from gateway.pki.loading import load_certificate


@dataclass(frozen=True)
class CertificateExpiry:
    """One certificate file and how long it has left."""

    path: Path
    bureau: str | None
    role: CertificateRole
    key_id: str
    not_after: dt.datetime
    remaining: dt.timedelta

    @property
    def expired(self) -> bool:
        return self.remaining < dt.timedelta(0)


def expiring_certificates(
    paths: Iterable[Path], within_days: float, now: dt.datetime | None = None
) -> list[CertificateExpiry]:
    """The certificates among ``paths`` that expire within ``within_days`` (or have expired).

    Soonest first. Meant for the node's log, metrics and health at start and
    periodically; a missing or unreadable file is a ``ConfigInvalid``.
    """
    now = _aware(now)
    horizon = dt.timedelta(days=within_days)
    found: list[CertificateExpiry] = []
    for path in paths:
        cert = load_certificate(path)
        remaining = certificate_expiry(cert, now)
        if remaining <= horizon:
            found.append(
                CertificateExpiry(
                    path=path,
                    bureau=bureau_of(cert),
                    role=certificate_role(cert),
                    key_id=key_id(cert),
                    not_after=cert.not_valid_after_utc,
                    remaining=remaining,
                )
            )
    return sorted(found, key=lambda item: item.remaining)
