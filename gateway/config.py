"""Node configuration: one TOML file, validated once at start into a frozen object.

Relative paths are resolved against the directory of the configuration file.
Nothing below the entry point reads the environment; everything a node needs
is here. Errors name the file, the key and the rule.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigInvalid
from gateway.identifiers import check_division_code

__all__ = [
    "ConsoleSettings",
    "ExchangeSettings",
    "ListenSettings",
    "NodeConfig",
    "PartnerConfig",
    "RetrySettings",
    "load_config",
    "parse_config",
]


def _bureau(value: str) -> str:
    problem = check_division_code(value)
    if problem is not None:
        raise ValueError(f"bureau id {value!r}: {problem.message}")
    return value


def _address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port")
    return value


BureauId = Annotated[str, AfterValidator(_bureau)]
Address = Annotated[str, AfterValidator(_address)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeSection(_Frozen):
    bureau: BureauId
    name: str = ""
    database: Path


class TlsSettings(_Frozen):
    ca: Path
    cert: Path
    key: Path
    # The cooperation CA's revocation list (certs revoke/crl); re-read when the file changes.
    crl: Path | None = None
    crl_reload_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0
    # Certificates expiring within this many days raise a warning (log, metric, health).
    expiry_warning_days: Annotated[int, Field(ge=1, le=365)] = 30


class SigningSettings(_Frozen):
    suite: str = "ed25519"
    cert: Path
    key: Path


class ListenSettings(_Frozen):
    peer: Address = "127.0.0.1:50051"
    # The local service speaks plaintext, so it must stay on a loopback address.
    local: Address = "127.0.0.1:50061"

    @model_validator(mode="after")
    def _local_is_loopback(self) -> ListenSettings:
        host = self.local.rpartition(":")[0].strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"listen.local must be a loopback address, got {host!r}")
        return self


class ExchangeSettings(_Frozen):
    freshness_seconds: Annotated[int, Field(ge=30, le=7 * 86400)] = 900
    max_clock_skew_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    max_message_bytes: Annotated[int, Field(ge=64 * 1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    call_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    stream_batch: Annotated[int, Field(ge=1, le=4096)] = 256
    stream_window: Annotated[int, Field(ge=1, le=1024)] = 64


class RetrySettings(_Frozen):
    base_seconds: Annotated[float, Field(gt=0, le=3600)] = 0.5
    cap_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0
    # Past either limit a record is dead-lettered with its last error (operators re-drive it).
    dead_letter_after_seconds: Annotated[float, Field(gt=0)] = 3 * 86400.0
    max_attempts: Annotated[int, Field(ge=1)] = 10_000


class PartnerConfig(_Frozen):
    bureau: BureauId
    address: Address
    # Empty: the agreement in force for the pair and record type is chosen per record.
    agreement: Annotated[str, Field(max_length=200)] = ""
    name: str = ""


class AgreementSettings(_Frozen):
    # One TOML file per cooperation agreement (agreements/README.md); all checked at start.
    directory: Path


class LimitSettings(_Frozen):
    """Per-partner admission limits on the partner port."""

    max_concurrent_calls: Annotated[int, Field(ge=1, le=10_000)] = 64
    calls_per_second: Annotated[float, Field(gt=0)] = 2000.0
    burst: Annotated[int, Field(ge=1)] = 500
    # Bulk streams one partner may hold open at once; one more is refused, not queued.
    max_streams_per_peer: Annotated[int, Field(ge=1, le=10_000)] = 16
    # HTTP/2 streams (calls of any shape) one connection may have open at once.
    max_streams_per_connection: Annotated[int, Field(ge=1, le=10_000)] = 100
    # Refusals of one peer for one reason are logged in full once per interval and
    # counted after that, so a hostile caller cannot grow the transfer log at its rate.
    rejection_log_seconds: Annotated[float, Field(ge=1, le=86_400)] = 60.0


class StorageSettings(_Frozen):
    # "sqlite": the file named by node.database. "postgresql": the schema `schema` of the
    # database at `dsn`, which several replicas of this node may share (docs/storage.md).
    engine: Literal["sqlite", "postgresql"] = "sqlite"
    # A libpq connection URI, e.g. postgresql://gateway@db.internal:5432/chuanyu.
    dsn: str | None = None
    # Default chuanyu_<bureau>. ("schema" would shadow a pydantic method, hence the alias.)
    schema_name: Annotated[
        str | None, Field(alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    ] = None
    # How long a replica holds outbox rows it claimed for delivery (PostgreSQL); a crashed
    # replica's rows go to another after this long.
    lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 120.0
    # Keys that encrypt stored envelopes (personal data) at rest. Default: beside the
    # database as <database>.keys.json, created on first start with mode 0600.
    key_file: Path | None = None
    # How long a write waits for a lock held by another process before failing UNAVAILABLE.
    busy_timeout_ms: Annotated[int, Field(ge=10, le=60_000)] = 5000
    # While commits fail, how often the node probes the store to come back by itself.
    probe_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0

    @model_validator(mode="after")
    def _engine_has_what_it_needs(self) -> StorageSettings:
        if self.engine == "postgresql" and not self.dsn:
            raise ValueError("dsn is required when engine is postgresql")
        if self.engine == "sqlite" and (self.dsn is not None or self.schema_name is not None):
            raise ValueError("dsn and schema apply only to engine postgresql")
        return self


class RetentionSettings(_Frozen):
    # How often the job looks for payloads past their agreement's retention period.
    interval_seconds: Annotated[float, Field(gt=0)] = 3600.0


class ReconcileSettings(_Frozen):
    # Every interval each node reconciles the interval before the last with every partner.
    interval_seconds: Annotated[float, Field(gt=0)] = 3600.0


class LocalFilesSettings(_Frozen):
    """Folders through which the bureau's local systems exchange files in their own format."""

    adapter: Annotated[str, Field(min_length=1)]
    # Watched: files dropped here are decoded and sent (then moved to done/ or rejected/).
    outbound: Path | None = None
    # Each received record is written here as one file, atomically.
    inbound: Path | None = None
    poll_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    # Larger files are streamed record by record (read twice: check all, then send),
    # so a file of any size flows through in bounded memory.
    stream_above_bytes: Annotated[int, Field(ge=0)] = 8 * 1024 * 1024


class ConsoleSettings(_Frozen):
    """The operator console (web dashboard, JSON API, metrics, health) on its own port."""

    listen: Address = "127.0.0.1:8080"
    # File holding the Prometheus scrape token; without it /metrics needs a logged-in session.
    metrics_token_file: Path | None = None
    # Secure cookies need HTTPS, except on localhost (browsers treat it as secure).
    secure_cookies: bool = True
    session_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 480


class LoggingSettings(_Frozen):
    file: Path | None = None
    level: str = "INFO"


class NodeConfig(_Frozen):
    """Everything one node needs, checked at start."""

    source: Path = Path("<memory>")
    node: NodeSection
    tls: TlsSettings
    signing: SigningSettings
    listen: ListenSettings = ListenSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    retry: RetrySettings = RetrySettings()
    logging: LoggingSettings = LoggingSettings()
    agreements: AgreementSettings
    storage: StorageSettings = StorageSettings()
    limits: LimitSettings = LimitSettings()
    retention: RetentionSettings = RetentionSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    local_files: LocalFilesSettings | None = None
    console: ConsoleSettings | None = None
    partners: tuple[PartnerConfig, ...] = ()

    @field_validator("partners")
    @classmethod
    def _partners_distinct(
        cls, partners: tuple[PartnerConfig, ...], info: ValidationInfo
    ) -> tuple[PartnerConfig, ...]:
        node = info.data.get("node")
        seen: set[str] = set()
        for partner in partners:
            if node is not None and partner.bureau == node.bureau:
                raise ValueError(f"partner {partner.bureau} is this node itself")
            if partner.bureau in seen:
                raise ValueError(f"partner {partner.bureau} is listed twice")
            seen.add(partner.bureau)
        return partners

    @property
    def bureau(self) -> str:
        return self.node.bureau

    def partner(self, bureau: str) -> PartnerConfig | None:
        return next((p for p in self.partners if p.bureau == bureau), None)


_PATH_KEYS = (
    ("node", "database"),
    ("tls", "ca"),
    ("tls", "cert"),
    ("tls", "key"),
    ("tls", "crl"),
    ("storage", "key_file"),
    ("signing", "cert"),
    ("signing", "key"),
    ("logging", "file"),
    ("agreements", "directory"),
    ("local_files", "outbound"),
    ("local_files", "inbound"),
    ("console", "metrics_token_file"),
)
_MUST_EXIST = (
    ("tls", "ca"),
    ("tls", "cert"),
    ("tls", "key"),
    ("signing", "cert"),
    ("signing", "key"),
)


def parse_config(data: dict[str, Any], source: Path) -> NodeConfig:
    """Validate a parsed TOML document; relative paths resolve beside ``source``."""
    base = source.parent
    data = copy.deepcopy(data)
    for section, key in _PATH_KEYS:
        table = data.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            table[key] = str((base / table[key]).resolve())
    try:
        config = NodeConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigInvalid(f"{source}: {problems}") from None
    for section, key in (*_MUST_EXIST, ("tls", "crl")):
        path = getattr(getattr(config, section), key)
        if path is not None and not Path(path).is_file():
            raise ConfigInvalid(f"{source}: {section}.{key}: file {path} does not exist")
    return config


def load_config(path: Path) -> NodeConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigInvalid(f"cannot read configuration {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, path)
