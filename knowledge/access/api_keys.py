"""API keys: how other programs (the OpenAI-compatible API, the REST API, the MCP server) act
as one user, with that user's roles, collections, persona and rate limit.

A key is shown once, when it is created; only its SHA-256 is stored (keys are 256 random bits,
so a fast hash is as safe as a slow one and costs nothing per request). Each key has scopes
that cap what it may do on top of the user's roles: ``read`` (search, ask, list, feedback),
``upload`` (upload and delete documents, their jobs), ``admin`` (manage other users' keys;
only for users whose roles give the admin page). Keys expire; revoked keys stay listed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, Index, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.access.audit import AuditLog
from knowledge.core.db import Base, UTCDateTime, utc_now
from knowledge.core.errors import KdeskError, NotFoundError

log = logging.getLogger("kdesk.api_keys")

Scope = Literal["read", "upload", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "upload", "admin")
KeyStatus = Literal["active", "expired", "revoked"]
PREFIX = "kdesk_"  # every key starts with it: secret scanners and people recognise it
SHOWN = 12  # characters of the key shown in lists ("kdesk_AbCdEf…")
LAST_USED_EVERY = timedelta(seconds=60)  # last-used time written at most this often per key
MAX_NAME = 100
Clock = Callable[[], datetime]


class InvalidApiKeyError(KdeskError):
    """No key, an unknown one, a revoked or an expired one (the API answers 401)."""


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user", "user"),)
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    shown: Mapped[str] = mapped_column(String(SHOWN))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))  # comma-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    user: str
    name: str
    shown: str  # the key's first characters, for recognising it in a list
    scopes: tuple[Scope, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def hashed(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_scopes(scopes: str | Iterable[str]) -> tuple[Scope, ...]:
    """ "read,upload" or ["read", "upload"] -> the scopes in canonical order; unknown ones are
    a clear error."""
    names = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = {n.strip().lower() for n in names if n.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise KdeskError(f"Unknown scope(s): {', '.join(unknown)}. Scopes: {', '.join(SCOPES)}.")
    if not wanted:
        raise KdeskError(f"Give a key at least one scope: {', '.join(SCOPES)}.")
    return tuple(s for s in SCOPES if s in wanted)


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        user=row.user,
        name=row.name,
        shown=row.shown,
        scopes=parse_scopes(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


class ApiKeyBook:
    def __init__(self, engine: Engine, audit: AuditLog, *, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock

    def create(
        self,
        user: str,
        name: str,
        scopes: Sequence[str] | str,
        *,
        expires_days: int | None,
        actor: str | None = None,
        channel: str = "",
    ) -> tuple[ApiKey, str]:
        """A new key of ``user``; returns it with its secret, which is never shown again.
        ``expires_days`` None: the key does not expire."""
        user = user.strip().lower()
        label = " ".join(name.split())
        if not label:
            raise KdeskError('Give the key a name, e.g. where it is used ("ticket bot").')
        if len(label) > MAX_NAME:
            raise KdeskError(f"A key's name has at most {MAX_NAME} characters.")
        if expires_days is not None and not 1 <= expires_days <= 3650:
            raise KdeskError("A key expires after 1 to 3,650 days (or never).")
        wanted = parse_scopes(scopes)
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        row = ApiKeyRow(
            key_id=secrets.token_hex(6),
            user=user,
            name=label,
            shown=secret[:SHOWN],
            secret_hash=hashed(secret),
            scopes=",".join(wanted),
            created_at=now,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
        )
        with Session(self.engine) as session, session.begin():
            session.add(row)
            session.flush()
            key = _key(row)
        self.audit.record(
            actor or user,
            "api_key_created",
            user,
            channel=channel,
            key=key.key_id,
            scopes=list(wanted),
            expires_days=expires_days,
        )
        return key, secret

    def keys(self, user: str | None = None) -> list[ApiKey]:
        """The keys of ``user`` (everyone's when None), newest first."""
        statement = select(ApiKeyRow).order_by(ApiKeyRow.created_at.desc())
        if user is not None:
            statement = statement.where(ApiKeyRow.user == user.strip().lower())
        with Session(self.engine) as session:
            return [_key(r) for r in session.scalars(statement)]

    def key(self, key_id: str) -> ApiKey:
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id.strip())
            if row is None:
                raise NotFoundError(f"No API key with id {key_id}.")
            return _key(row)

    def revoke(self, key_id: str, actor: str, *, channel: str = "") -> ApiKey:
        """Revoke a key (who may is checked by the caller: its user or an admin). Revoking a
        revoked key changes nothing."""
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiKeyRow, key_id.strip())
            if row is None:
                raise NotFoundError(f"No API key with id {key_id}.")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                row.revoked_by = actor
                revoked = True
            else:
                revoked = False
            session.flush()
            key = _key(row)
        if revoked:
            self.audit.record(actor, "api_key_revoked", key.user, channel=channel, key=key.key_id)
        return key

    def revoke_all(self, user: str, actor: str, *, channel: str = "") -> int:
        """Revoke every active key of ``user`` (their account is being removed)."""
        active = [k for k in self.keys(user) if k.revoked_at is None]
        for key in active:
            self.revoke(key.key_id, actor, channel=channel)
        return len(active)

    def authenticate(self, secret: str | None, *, channel: str = "api") -> ApiKey:
        """The active key with this secret, its last-used time brought up to date; anything
        else is InvalidApiKeyError (revoked and expired keys are audited as their user's)."""
        if not secret or not secret.startswith(PREFIX):
            raise InvalidApiKeyError(
                "An API key is needed: send it as 'Authorization: Bearer kdesk_…' "
                "(create one on the Account page or with `kdesk keys create`)."
            )
        digest = hashed(secret.strip())
        with Session(self.engine) as session:
            row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.secret_hash == digest)).first()
            key = _key(row) if row is not None else None
        if key is None:  # looked up by its hash: timing tells nothing about the secret
            log.info("unknown API key", extra={"fields": {"shown": secret[:SHOWN]}})
            raise InvalidApiKeyError("This API key is not valid.")
        now = self.clock()
        status = key.status(now)
        if status != "active":
            self.audit.record(
                key.user,
                "api_key_refused",
                key.key_id,
                outcome="denied",
                channel=channel,
                status=status,
            )
            raise InvalidApiKeyError(f"This API key is {status}. Create a new one.")
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
            with self.engine.begin() as connection:
                connection.execute(
                    update(ApiKeyRow).where(ApiKeyRow.key_id == key.key_id).values(last_used_at=now)
                )
        return key
