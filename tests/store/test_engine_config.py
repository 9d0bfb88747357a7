"""``[storage]`` chooses the engine; a PostgreSQL store needs a DSN and a safe schema name."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import StorageSettings, parse_config
from gateway.errors import ConfigInvalid
from gateway.store.postgres import default_schema, valid_schema_name


def test_sqlite_is_the_default() -> None:
    settings = StorageSettings()
    assert settings.engine == "sqlite" and settings.dsn is None and settings.schema_name is None


def test_postgresql_takes_dsn_and_schema_from_toml_keys() -> None:
    settings = StorageSettings.model_validate(
        {"engine": "postgresql", "dsn": "postgresql://gw@db/chuanyu", "schema": "tl_main"}
    )
    assert settings.dsn == "postgresql://gw@db/chuanyu"
    assert settings.schema_name == "tl_main"
    assert settings.lease_seconds == 120.0


@pytest.mark.parametrize(
    ("storage", "problem"),
    [
        ({"engine": "postgresql"}, "dsn is required when engine is postgresql"),
        ({"engine": "postgresql", "dsn": "postgresql://x/y", "schema": "Bad-Name"}, "pattern"),
        ({"dsn": "postgresql://x/y"}, "apply only to engine postgresql"),
        ({"engine": "mysql"}, "sqlite"),
    ],
)
def test_bad_storage_sections_are_named(
    storage: dict[str, str], problem: str, tmp_path: Path
) -> None:
    data = {
        "node": {"bureau": "500151", "database": "n.db"},
        "tls": {"ca": "ca.pem", "cert": "c.pem", "key": "k.pem"},
        "signing": {"cert": "s.pem", "key": "sk.pem"},
        "agreements": {"directory": "agreements"},
        "storage": storage,
    }
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(data, tmp_path / "node.toml")
    assert "storage" in caught.value.message and problem in caught.value.message


def test_schema_names() -> None:
    assert default_schema("500151") == "chuanyu_500151"
    assert valid_schema_name("chuanyu_500151")
    for bad in ("", "1abc", "Upper", 'a"b', "a" * 64, "a;drop"):
        assert not valid_schema_name(bad)
