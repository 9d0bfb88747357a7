"""``[storage]`` chooses the engine; a PostgreSQL store needs a DSN and a safe schema name."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import NodeConfig, StorageSettings, parse_config
from gateway.errors import ConfigInvalid
from gateway.store import PostgresStore, SqliteStore, key_file_for, open_offline, open_store
from gateway.store.postgres import PostgresOfflineReader, default_schema, valid_schema_name
from gateway.store.sqlite import SqliteOfflineReader


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


def _data(storage: dict[str, str], database: str) -> dict[str, object]:
    return {
        "node": {"bureau": "500151", "database": database},
        "tls": {"ca": "ca.pem", "cert": "c.pem", "key": "k.pem"},
        "signing": {"cert": "s.pem", "key": "sk.pem"},
        "agreements": {"directory": "agreements"},
        "storage": storage,
    }


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
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(_data(storage, "n.db"), tmp_path / "node.toml")
    assert "storage" in caught.value.message and problem in caught.value.message


def test_schema_names() -> None:
    assert default_schema("500151") == "chuanyu_500151"
    assert valid_schema_name("chuanyu_500151")
    for bad in ("", "1abc", "Upper", 'a"b', "a" * 64, "a;drop"):
        assert not valid_schema_name(bad)


def _config(tmp_path: Path, storage: dict[str, str]) -> NodeConfig:
    for name in ("ca.pem", "c.pem", "k.pem", "s.pem", "sk.pem"):
        (tmp_path / name).touch()
    (tmp_path / "agreements").mkdir(exist_ok=True)
    return parse_config(_data(storage, "data/n.db"), tmp_path / "node.toml")


def test_the_configuration_names_the_engine(tmp_path: Path) -> None:
    lite = _config(tmp_path, {})
    store = open_store(lite, None)
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "data" / "n.db"
    assert key_file_for(lite) == tmp_path / "data" / "n.db.keys.json"
    pg = _config(tmp_path, {"engine": "postgresql", "dsn": "postgresql://x/y", "key_file": "k"})
    shared = open_store(pg, None)
    assert isinstance(shared, PostgresStore) and shared.schema == "chuanyu_500151"
    assert key_file_for(pg) == tmp_path / "k"


def test_the_offline_reader_follows_the_configuration(tmp_path: Path) -> None:
    lite = open_offline(config=_config(tmp_path, {}))
    assert isinstance(lite, SqliteOfflineReader)
    assert lite.location == str(tmp_path / "data" / "n.db")
    assert lite.key_file == tmp_path / "data" / "n.db.keys.json"
    pg = open_offline(
        config=_config(
            tmp_path, {"engine": "postgresql", "dsn": "postgresql://x/y", "schema": "tl"}
        )
    )
    assert isinstance(pg, PostgresOfflineReader)
    assert pg.location == "schema tl" and pg.key_file == tmp_path / "data" / "n.db.keys.json"
    override = open_offline(path=tmp_path / "a.db", key_file=tmp_path / "keys.json")
    assert isinstance(override, SqliteOfflineReader) and override.key_file == tmp_path / "keys.json"
    assert isinstance(open_offline(path=tmp_path / "a.db"), SqliteOfflineReader)
    with pytest.raises(ConfigInvalid):
        open_offline()
