"""Node configuration: validated once, relative paths beside the file, errors name file and key."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest

from gateway.config import load_config, parse_config
from gateway.errors import ConfigInvalid

CONFIG_TOML = """\
[node]
bureau = "500151"
name = "重庆市铜梁区市场监督管理局"
database = "../data/500151.db"

[tls]
ca = "../certs/ca.pem"
cert = "../certs/500151/tls.pem"
key = "../certs/500151/tls.key"

[signing]
suite = "ed25519"
cert = "../certs/500151/signing.pem"
key = "../certs/500151/signing.key"

[listen]
peer = "0.0.0.0:50051"
local = "127.0.0.1:50061"

[exchange]
freshness_seconds = 600

[logging]
file = "logs/500151.log"

[agreements]
directory = "../agreements"

[[partners]]
bureau = "510900"
name = "遂宁市市场监督管理局"
address = "gw.suining.example:50051"
agreement = "SUI-TONG-MR-2024"
"""

GOOD: dict[str, Any] = tomllib.loads(CONFIG_TOML)

FILES = [
    "certs/ca.pem",
    "certs/500151/tls.pem",
    "certs/500151/tls.key",
    "certs/500151/signing.pem",
    "certs/500151/signing.key",
]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """``tmp_path/config/node.toml`` with the certificate files it names beside it."""
    for name in FILES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("placeholder\n")
    config = tmp_path / "config" / "node.toml"
    config.parent.mkdir()
    config.write_text(CONFIG_TOML, encoding="utf-8")
    return config


def good() -> dict[str, Any]:
    return copy.deepcopy(GOOD)


def test_good_config(source: Path) -> None:
    config = parse_config(good(), source)
    assert config.source == source
    assert config.bureau == "500151"
    assert config.node.name == "重庆市铜梁区市场监督管理局"
    assert config.signing.suite == "ed25519"
    assert config.listen.peer == "0.0.0.0:50051"
    assert config.exchange.freshness_seconds == 600
    assert config.exchange.max_clock_skew_seconds == 300  # default
    assert config.retry.base_seconds == 0.5  # whole section defaulted
    partner = config.partner("510900")
    assert partner is not None
    assert partner.agreement == "SUI-TONG-MR-2024"
    assert config.partner("510100") is None


def test_relative_paths_resolve_beside_the_file(source: Path, tmp_path: Path) -> None:
    config = parse_config(good(), source)
    root = tmp_path.resolve()
    assert config.node.database == root / "data" / "500151.db"
    assert config.tls.ca == root / "certs" / "ca.pem"
    assert config.tls.cert == root / "certs" / "500151" / "tls.pem"
    assert config.tls.key == root / "certs" / "500151" / "tls.key"
    assert config.signing.cert == root / "certs" / "500151" / "signing.pem"
    assert config.signing.key == root / "certs" / "500151" / "signing.key"
    assert config.logging.file == root / "config" / "logs" / "500151.log"


def test_absolute_paths_are_kept(source: Path, tmp_path: Path) -> None:
    data = good()
    data["tls"]["ca"] = str(tmp_path / "certs" / "ca.pem")
    data["node"]["database"] = str(tmp_path / "elsewhere" / "node.db")
    config = parse_config(data, source)
    assert config.tls.ca == (tmp_path / "certs" / "ca.pem").resolve()
    assert config.node.database == (tmp_path / "elsewhere" / "node.db").resolve()


def test_load_config_reads_toml(source: Path) -> None:
    assert load_config(source) == parse_config(good(), source)


def test_config_is_frozen(source: Path) -> None:
    config = parse_config(good(), source)
    with pytest.raises(pydantic.ValidationError):
        config.node.bureau = "510900"


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigInvalid, match=r"missing\.toml"):
        load_config(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[node\nbureau = 1\n")
    with pytest.raises(ConfigInvalid, match=r"broken\.toml: not valid TOML"):
        load_config(broken)


Mutation = Callable[[dict[str, Any]], object]


def _drop(section: str, key: str) -> Mutation:
    return lambda data: data[section].pop(key)


def _put(section: str, key: str, value: Any) -> Mutation:
    return lambda data: data[section].__setitem__(key, value)


def _put_partner(key: str, value: Any) -> Mutation:
    return lambda data: data["partners"][0].__setitem__(key, value)


# (id, change, key named in the message, words of the rule)
ERRORS: list[tuple[str, Mutation, str, str]] = [
    ("bureau-not-a-division", _put("node", "bureau", "5001"), "node.bureau", "6 digits"),
    ("bureau-unknown-province", _put("node", "bureau", "990000"), "node.bureau",
     "province"),
    ("database-missing", _drop("node", "database"), "node.database", "Field required"),
    ("ca-file-missing", _put("tls", "ca", "../certs/none.pem"), "tls.ca", "does not exist"),
    ("tls-key-file-missing", _put("tls", "key", "nowhere.key"), "tls.key", "does not exist"),
    ("signing-cert-missing", _put("signing", "cert", "../certs/x.pem"), "signing.cert",
     "does not exist"),
    ("signing-key-is-a-directory", _put("signing", "key", "../certs"), "signing.key",
     "does not exist"),
    ("peer-not-host-port", _put("listen", "peer", "localhost"), "listen.peer", "host:port"),
    ("peer-port-too-big", _put("listen", "peer", "127.0.0.1:70000"), "listen.peer",
     "host:port"),
    ("local-not-loopback", _put("listen", "local", "0.0.0.0:50061"), "listen.local",
     "loopback"),
    ("local-lan-address", _put("listen", "local", "192.168.1.10:50061"), "listen.local",
     "loopback"),
    ("local-no-host", _put("listen", "local", ":50061"), "listen.local", "host:port"),
    ("freshness-too-short", _put("exchange", "freshness_seconds", 10),
     "exchange.freshness_seconds", "greater than or equal to 30"),
    ("unknown-exchange-key", _put("exchange", "freshnes_seconds", 600),
     "exchange.freshnes_seconds", "Extra inputs are not permitted"),
    ("retry-zero", lambda d: d.__setitem__("retry", {"base_seconds": 0}), "retry.base_seconds",
     "greater than 0"),
    ("rejection-log-too-often", lambda d: d.__setitem__("limits", {"rejection_log_seconds": 0}),
     "limits.rejection_log_seconds", "greater than or equal to 1"),
    ("no-streams-per-peer", lambda d: d.__setitem__("limits", {"max_streams_per_peer": 0}),
     "limits.max_streams_per_peer", "greater than or equal to 1"),
    ("streams-per-connection-unbounded",
     lambda d: d.__setitem__("limits", {"max_streams_per_connection": 100_000}),
     "limits.max_streams_per_connection", "less than or equal to 10000"),
    ("partner-bad-bureau", _put_partner("bureau", "abc"), "partners.0.bureau", "6 digits"),
    ("partner-bad-address", _put_partner("address", "gw.suining.example"),
     "partners.0.address", "host:port"),
    ("no-agreements-section", lambda d: d.pop("agreements"), "agreements", "Field required"),
    ("unknown-section", lambda d: d.__setitem__("listener", {}), "listener",
     "Extra inputs are not permitted"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "key", "rule"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_each_error_names_file_and_key(source: Path, change: Mutation, key: str, rule: str) -> None:
    data = good()
    change(data)
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(data, source)
    message = caught.value.message
    assert message.startswith(f"{source}: ")
    assert f"{key}: " in message or f"{key} " in message, message
    assert rule in message
    assert caught.value.reason == "CONFIG_INVALID"


@pytest.mark.parametrize(
    "local", ["127.0.0.1:50061", "localhost:50061", "[::1]:50061", "127.0.0.1:0"]
)
def test_loopback_local_listeners(source: Path, local: str) -> None:
    data = good()
    data["listen"]["local"] = local
    assert parse_config(data, source).listen.local == local


def test_local_listener_defaults_to_loopback(source: Path) -> None:
    data = good()
    del data["listen"]
    config = parse_config(data, source)
    assert config.listen.local.startswith("127.0.0.1:")


def _second_partner(bureau: str) -> dict[str, Any]:
    return {"bureau": bureau, "address": "127.0.0.1:50052", "agreement": "OTHER-2024"}


def test_several_partners(source: Path) -> None:
    data = good()
    data["partners"].append(_second_partner("510100"))
    config = parse_config(data, source)
    assert [p.bureau for p in config.partners] == ["510900", "510100"]


@pytest.mark.parametrize(
    ("bureau", "words"), [("510900", "510900 is listed twice"), ("500151", "is this node itself")]
)
def test_partner_listed_twice_or_being_the_node(source: Path, bureau: str, words: str) -> None:
    data = good()
    data["partners"].append(_second_partner(bureau))
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(data, source)
    assert caught.value.message.startswith(f"{source}: ")
    assert words in caught.value.message


def test_partner_listed_twice_names_the_partners_key(source: Path) -> None:
    data = good()
    data["partners"].append(_second_partner("510900"))
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(data, source)
    assert "(top)" not in caught.value.message
    assert "partners" in caught.value.message
