"""Operator accounts, sessions and log-in throttling.

The node's store keeps operators and sessions as rows
(:class:`~gateway.store.reads.OperatorRecords`, on either engine); what the rows
mean is decided here. Passwords are argon2id hashes; a session is a random token of
which only the SHA-256 is stored, so a copy of the database does not hand out live
sessions.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.errors import ConfigInvalid
from gateway.store.reads import OperatorRecords, OperatorRow, SessionRow

__all__ = [
    "ROLE_PERMISSIONS",
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


def _operator(row: OperatorRow) -> Operator:
    return Operator(row.username, Role(row.role), row.created_at, row.updated_at)


class AccountStore:
    """Operators and sessions of one node, kept as rows by the node's store.

    Hashing runs in a worker thread (argon2 takes tens of milliseconds by design), so
    a log-in never stalls the event loop.
    """

    def __init__(self, records: OperatorRecords, *, hasher: PasswordHasher | None = None) -> None:
        self.records = records
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash = ""

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    # -- operators -----------------------------------------------------------

    async def add(self, username: str, role: Role, password: str) -> Operator:
        check_username(username)
        check_password_strength(password)
        now = time.time()
        row = OperatorRow(username, role.value, await self._hash(password), now, now)
        if not await self.records.add_operator(row):
            raise ConfigInvalid(f"operator {username} already exists")
        return Operator(username, role, now, now)

    async def set_password(self, username: str, password: str) -> None:
        """Change a password and end every session of that operator."""
        check_password_strength(password)
        await self._require(username)
        digest = await self._hash(password)
        if not await self.records.update_operator(
            username, at=time.time(), password_hash=digest, end_sessions=True
        ):
            raise ConfigInvalid(f"no operator {username}")

    async def set_role(self, username: str, role: Role) -> None:
        if not await self.records.update_operator(username, at=time.time(), role=role.value):
            raise ConfigInvalid(f"no operator {username}")

    async def remove(self, username: str) -> None:
        if not await self.records.remove_operator(username):
            raise ConfigInvalid(f"no operator {username}")

    async def get(self, username: str) -> Operator | None:
        row = await self.records.get_operator(username)
        return None if row is None else _operator(row)

    async def list(self) -> list[Operator]:
        return [_operator(r) for r in await self.records.list_operators()]

    async def _require(self, username: str) -> Operator:
        operator = await self.get(username)
        if operator is None:
            raise ConfigInvalid(f"no operator {username}")
        return operator

    async def authenticate(self, username: str, password: str) -> Operator | None:
        """The operator if the password is right; ``None`` otherwise (same cost either way)."""
        row = await self.records.get_operator(username)
        if row is None and not self._dummy_hash:
            # Verified against when the username is unknown, so the answer takes as long
            # either way.
            self._dummy_hash = await self._hash(secrets.token_urlsafe(16))
        stored = self._dummy_hash if row is None else row.password_hash
        if not await asyncio.to_thread(self._verify, stored, password) or row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            await self.records.update_operator(
                username, at=row.updated_at, password_hash=await self._hash(password)
            )
        return _operator(row)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- sessions ------------------------------------------------------------

    async def create_session(
        self, operator: Operator, lifetime_seconds: float
    ) -> tuple[str, Session]:
        """A new session; the token is returned once and only its digest is stored."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        expires = now + lifetime_seconds
        row = SessionRow(_token_digest(token), operator.username, csrf, now, expires)
        await self.records.create_session(row, expire_before=now)
        return token, Session(operator, csrf, expires)

    async def session(self, token: str) -> Session | None:
        found = await self.records.get_session(_token_digest(token))
        if found is None:
            return None
        row, operator = found
        if row.expires_at <= time.time():
            await self.end_session(token)
            return None
        return Session(_operator(operator), row.csrf_token, row.expires_at)

    async def end_session(self, token: str) -> None:
        await self.records.end_session(_token_digest(token))


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
