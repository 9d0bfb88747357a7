"""Loading a directory of agreement files: all of them or none."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gateway.agreements.book import AgreementBook
from gateway.agreements.model import (
    Agreement,
    AgreementFileInvalid,
    AgreementProblem,
)
from gateway.agreements.parsing import parse_agreement
from gateway.errors import ConfigInvalid


def load_agreements(directory: Path) -> AgreementBook:
    """Read and validate every ``*.toml`` in ``directory``; refuse all if one is wrong."""
    if not directory.is_dir():
        raise ConfigInvalid(f"{directory}: agreements directory does not exist")
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ConfigInvalid(
            f"{directory}: no agreement files (*.toml): without an agreement nothing may cross"
        )
    agreements: list[Agreement] = []
    problems: list[AgreementProblem] = []
    for path in files:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(AgreementProblem(source, "(file)", "file.unreadable", str(exc)))
            continue
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(AgreementProblem(source, "(file)", "toml.syntax", str(exc)))
            continue
        try:
            agreements.append(parse_agreement(data, source))
        except AgreementFileInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise AgreementFileInvalid(problems)
    return AgreementBook(agreements)
