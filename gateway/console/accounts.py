"""Operator accounts, sessions and log-in throttling, kept beside the node's own tables.

Operators and sessions live in the node's SQLite file, in tables only the console
and the ``operators`` command touch (never the transfer log, whose chain head
belongs to the store's writer). Passwords are argon2id hashes; a session is a
random token of which only the SHA-256 is stored, so a copy of the database does
not hand out live sessions. Everything here is synchronous: the console calls it
in a worker thread, the command line directly.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.errors import ConfigInvalid, StoreUnavailable

__all__ = [
    "AccountStore",
    "LoginThrottle",
    "Operator",
    "Permission",
    "Role",
    "Session",
    "check_password_strength",
    "check_username",
]

MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_operators (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_sha256 BLOB PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES console_operators (username) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (username);
"""


class Permission(enum.StrEnum):
    """What a route needs. Roles are sets of permissions, not a ladder (see ROLE_PERMISSIONS)."""

    PUBLIC = "public"
    VIEW = "view"  # every page and read-only API, personal information masked
    PERSONAL_DATA = "personal_data"  # unmask a record's personal information (logged)
    REDRIVE = "redrive"  # put a dead letter back in the queue
    METRICS = "metrics"  # a session, or the scrape token


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OFFICER = "officer"
    ADMIN = "admin"


# Separation of duties: the admin runs the exchange (re-drives dead letters) but has no
# need to read complainants' names or ID numbers; the officer handles cases and does.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.VIEW, Permission.METRICS}),
    Role.OFFICER: frozenset({Permission.VIEW, Permission.METRICS, Permission.PERSONAL_DATA}),
    Role.ADMIN: frozenset({Permission.VIEW, Permission.METRICS, Permission.REDRIVE}),
}


@dataclass(frozen=True, slots=True)
class Operator:
    username: str
    role: Role
    created_at: float
    updated_at: float

    def may(self, permission: Permission) -> bool:
        return permission is Permission.PUBLIC or permission in ROLE_PERMISSIONS[self.role]


@dataclass(frozen=True, slots=True)
class Session:
    operator: Operator
    csrf_token: str
    expires_at: float


def check_username(username: str) -> str:
    """Usernames are staff ids, not real names: they are written into the transfer log."""
    if not _USERNAME.fullmatch(username):
        raise ConfigInvalid(
            f"username {username[:70]!r} must be 2-64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigInvalid(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password:
        raise ConfigInvalid("password must not start or end with white space")


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AccountStore:
    """Operators and sessions in one node database. Thread-safe (one connection, a lock)."""

    def __init__(self, path: Path, *, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._dummy_hash = ""

    def open(self) -> None:
        """Create the tables if needed (blocking: the console calls this in a thread)."""
        # Verified against when the username is unknown, so the answer takes as long either way.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open operator accounts in {self.path}: {exc}") from exc
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> AccountStore:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        if self._conn is None:
            raise StoreUnavailable("operator accounts are not open")
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"operator accounts: {exc}") from exc

    # -- operators -----------------------------------------------------------

    def add(self, username: str, role: Role, password: str) -> Operator:
        check_username(username)
        check_password_strength(password)
        if self.get(username) is not None:
            raise ConfigInvalid(f"operator {username} already exists")
        now = time.time()
        self._execute(
            "INSERT INTO console_operators VALUES (?,?,?,?,?)",
            (username, role.value, self._hasher.hash(password), now, now),
        )
        return Operator(username, role, now, now)

    def set_password(self, username: str, password: str) -> None:
        """Change a password and end every session of that operator."""
        check_password_strength(password)
        self._require(username)
        self._execute(
            "UPDATE console_operators SET password_hash = ?, updated_at = ? WHERE username = ?",
            (self._hasher.hash(password), time.time(), username),
        )
        self._execute("DELETE FROM console_sessions WHERE username = ?", (username,))

    def set_role(self, username: str, role: Role) -> None:
        self._require(username)
        self._execute(
            "UPDATE console_operators SET role = ?, updated_at = ? WHERE username = ?",
            (role.value, time.time(), username),
        )

    def remove(self, username: str) -> None:
        self._require(username)
        self._execute("DELETE FROM console_sessions WHERE username = ?", (username,))
        self._execute("DELETE FROM console_operators WHERE username = ?", (username,))

    def get(self, username: str) -> Operator | None:
        rows = self._execute(
            "SELECT username, role, created_at, updated_at FROM console_operators "
            "WHERE username = ?",
            (username,),
        )
        return _operator(rows[0]) if rows else None

    def list(self) -> list[Operator]:
        rows = self._execute(
            "SELECT username, role, created_at, updated_at FROM console_operators ORDER BY username"
        )
        return [_operator(r) for r in rows]

    def _require(self, username: str) -> Operator:
        operator = self.get(username)
        if operator is None:
            raise ConfigInvalid(f"no operator {username}")
        return operator

    def authenticate(self, username: str, password: str) -> Operator | None:
        """The operator if the password is right; ``None`` otherwise (same cost either way)."""
        rows = self._execute(
            "SELECT password_hash FROM console_operators WHERE username = ?", (username,)
        )
        stored = str(rows[0][0]) if rows else self._dummy_hash
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if not rows:
            return None
        if self._hasher.check_needs_rehash(stored):
            self._execute(
                "UPDATE console_operators SET password_hash = ? WHERE username = ?",
                (self._hasher.hash(password), username),
            )
        return self.get(username)

    # -- sessions ------------------------------------------------------------

    def create_session(self, operator: Operator, lifetime_seconds: float) -> tuple[str, Session]:
        """A new session; the token is returned once and only its digest is stored."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        expires = now + lifetime_seconds
        self._execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))
        self._execute(
            "INSERT INTO console_sessions VALUES (?,?,?,?,?)",
            (_token_digest(token), operator.username, csrf, now, expires),
        )
        return token, Session(operator, csrf, expires)

    def session(self, token: str) -> Session | None:
        rows = self._execute(
            "SELECT o.username, o.role, o.created_at, o.updated_at, s.csrf_token, s.expires_at "
            "FROM console_sessions AS s JOIN console_operators AS o USING (username) "
            "WHERE s.token_sha256 = ?",
            (_token_digest(token),),
        )
        if not rows:
            return None
        row = rows[0]
        expires_at = float(row[5])  # type: ignore[arg-type]
        if expires_at <= time.time():
            self.end_session(token)
            return None
        return Session(_operator(row[:4]), str(row[4]), expires_at)

    def end_session(self, token: str) -> None:
        self._execute(
            "DELETE FROM console_sessions WHERE token_sha256 = ?", (_token_digest(token),)
        )


def _operator(row: tuple[object, ...]) -> Operator:
    return Operator(
        username=str(row[0]),
        role=Role(str(row[1])),
        created_at=float(row[2]),  # type: ignore[arg-type]
        updated_at=float(row[3]),  # type: ignore[arg-type]
    )


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last_at: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed log-ins per username and per client address, with a lock that grows.

    After ``limit`` failures in a row the key is locked for ``base_seconds``; each
    further failure doubles it, up to ``max_seconds``. A quiet ``forget_seconds``
    forgets the key. An address gets a higher limit than a username: several
    operators may sit behind one address.
    """

    def __init__(
        self,
        *,
        user_limit: int = 5,
        address_limit: int = 20,
        base_seconds: float = 30.0,
        max_seconds: float = 3600.0,
        forget_seconds: float = 3600.0,
        max_keys: int = 10_000,
    ) -> None:
        self._limits = {"user": user_limit, "address": address_limit}
        self._base = base_seconds
        self._max = max_seconds
        self._forget = forget_seconds
        self._max_keys = max_keys
        self._failures: dict[tuple[str, str], _Failures] = {}

    def retry_after(self, username: str, address: str, now: float | None = None) -> float:
        """Seconds until either key may try again; 0 when neither is locked."""
        now = time.monotonic() if now is None else now
        waits = [
            f.locked_until - now
            for key in (("user", username), ("address", address))
            if (f := self._failures.get(key)) is not None
        ]
        return max([0.0, *waits])

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._prune(now)
        for key in (("user", username), ("address", address)):
            failures = self._failures.setdefault(key, _Failures())
            failures.count += 1
            failures.last_at = now
            over = failures.count - self._limits[key[0]]
            if over >= 0:
                failures.locked_until = now + min(self._max, self._base * 2**over)

    def succeeded(self, username: str) -> None:
        # Only the username is forgiven: an attacker's own good log-in must not reset the
        # address that is spraying other operators' passwords.
        self._failures.pop(("user", username), None)

    def _prune(self, now: float) -> None:
        stale = [
            key
            for key, f in self._failures.items()
            if now - f.last_at > self._forget and f.locked_until <= now
        ]
        for key in stale:
            del self._failures[key]
        if len(self._failures) > self._max_keys:
            # Under a spray of usernames keep the most recent keys, never grow without bound.
            keep = sorted(self._failures.items(), key=lambda kv: kv[1].last_at)[-self._max_keys :]
            self._failures = dict(keep)
