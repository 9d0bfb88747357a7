"""Where the files of a PKI directory live."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.pki.certificates import _checked_bureau


@dataclass(frozen=True)
class BureauPaths:
    """Where one bureau's certificates and private keys live."""

    tls_cert: Path
    tls_key: Path
    signing_cert: Path
    signing_key: Path
    # The signing pair replaced by the last rotation; still valid until it expires.
    previous_signing_cert: Path
    previous_signing_key: Path


@dataclass(frozen=True)
class PkiLayout:
    """The files of a PKI directory.

    ``created`` lists, in creation order, the files the :func:`init_pki` call
    that returned this layout wrote (empty when everything already existed).
    """

    directory: Path
    ca_cert: Path
    ca_key: Path
    created: tuple[Path, ...] = field(default=(), compare=False)

    @classmethod
    def at(cls, directory: Path) -> PkiLayout:
        """The layout rooted at ``directory`` (touches no file)."""
        return cls(directory=directory, ca_cert=directory / "ca.pem", ca_key=directory / "ca.key")

    @property
    def crl(self) -> Path:
        """The CA's certificate revocation list."""
        return self.directory / "crl.pem"

    def bureau(self, bureau: str) -> BureauPaths:
        """The paths of ``bureau``'s files; the bureau id must be a division code."""
        folder = self.directory / _checked_bureau(bureau)
        return BureauPaths(
            tls_cert=folder / "tls.pem",
            tls_key=folder / "tls.key",
            signing_cert=folder / "signing.pem",
            signing_key=folder / "signing.key",
            previous_signing_cert=folder / "signing-previous.pem",
            previous_signing_key=folder / "signing-previous.key",
        )
