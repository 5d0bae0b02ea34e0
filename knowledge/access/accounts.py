"""User accounts: local ones (argon2id password hashes, lock-out after repeated failures, a
forced change of one-time passwords) and the users an OIDC provider signs in.

Local names are case-insensitive (stored lower-case). Passwords are never stored or logged:
only their argon2 hashes. A one-time password (bootstrap, ``kdesk users add`` without
``--password-stdin``, a reset) must be changed at the first sign-in.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Boolean, Engine, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.access.api_keys import ApiKeyBook
from knowledge.access.audit import AuditLog
from knowledge.access.oidc import (
    ClaimMapping,
    _verified_email,
    meant_for,
    oidc_user_name,
    roles_from_claims,
    unverified_email,
)
from knowledge.access.rolebook import RoleBook
from knowledge.core.db import Base, UTCDateTime, utc_now
from knowledge.core.errors import KdeskError, NotFoundError

log = logging.getLogger("kdesk.accounts")

BOOTSTRAP_ADMIN = "admin"
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,199}$")
ONE_TIME_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a terminal
MAX_PASSWORD = 1024  # argon2 hashes anything; this only bounds the work per attempt
WRONG_CREDENTIALS = "Wrong user name or password."
Clock = Callable[[], datetime]


class SignInError(KdeskError):
    """Sign-in refused. The message never says whether the user name exists."""


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    auth: Mapped[str] = mapped_column(String(10))  # "local" or "oidc"
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_sign_in: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@dataclass(frozen=True)
class Account:
    name: str
    auth: str
    email: str | None
    must_change_password: bool
    locked_until: datetime | None
    created_at: datetime
    last_sign_in: datetime | None
    roles: tuple[str, ...] = ()

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def normalized_name(name: str) -> str:
    cleaned = name.strip().lower()
    if not USER_NAME.match(cleaned):
        raise KdeskError(
            "A user name has letters, digits, dots, dashes, underscores, @ or + (no spaces)."
        )
    return cleaned


def one_time_password() -> str:
    """Four groups of four characters (about 79 bits), easy to read off a terminal."""
    chars = "".join(secrets.choice(ONE_TIME_ALPHABET) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


def password_problem(password: str, name: str, min_length: int) -> str | None:
    if len(password) < min_length:
        return f"A password needs at least {min_length} characters."
    if len(password) > MAX_PASSWORD:
        return f"A password has at most {MAX_PASSWORD} characters."
    if password.strip().lower() == name.lower() or len(set(password)) < 4:
        return "Choose a password that is harder to guess."
    return None


class AccountBook:
    def __init__(
        self,
        engine: Engine,
        roles: RoleBook,
        audit: AuditLog,
        *,
        lockout_attempts: int = 5,
        lockout_minutes: int = 15,
        min_password_length: int = 12,
        hasher: PasswordHasher | None = None,
        clock: Clock = utc_now,
        api_keys: ApiKeyBook | None = None,
    ) -> None:
        self.engine = engine
        self.roles = roles
        self.api_keys = api_keys
        self.audit = audit
        self.lockout_attempts = lockout_attempts
        self.lockout = timedelta(minutes=lockout_minutes)
        self.min_password_length = min_password_length
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._dummy: str | None = None

    # Reading ---------------------------------------------------------------------------------

    def account(self, name: str) -> Account | None:
        with Session(self.engine) as session:
            row = session.get(UserRow, name.strip().lower())
            return self._account(row) if row else None

    def accounts(self) -> list[Account]:
        with Session(self.engine) as session:
            rows = list(session.scalars(select(UserRow).order_by(UserRow.name)))
        by_user: dict[str, list[str]] = {}
        for user, role, _ in self.roles.assignments():
            by_user.setdefault(user, []).append(role)
        return [self._account(row, by_user.get(row.name, [])) for row in rows]

    def _account(self, row: UserRow, roles: Iterable[str] | None = None) -> Account:
        names = self.roles.role_names_of(row.name) if roles is None else roles
        return Account(
            name=row.name,
            auth=row.auth,
            email=row.email,
            must_change_password=row.must_change_password,
            locked_until=row.locked_until,
            created_at=row.created_at,
            last_sign_in=row.last_sign_in,
            roles=tuple(dict.fromkeys(names)),
        )

    # Administration --------------------------------------------------------------------------

    def add(
        self,
        name: str,
        roles: Sequence[str],
        actor: str,
        *,
        password: str | None = None,
        auth: str = "local",
        email: str | None = None,
        channel: str = "",
    ) -> str | None:
        """Create an account holding ``roles``. A local account without ``password`` gets a
        one-time password, returned here (shown once, changed at the first sign-in)."""
        name = normalized_name(name)
        if auth not in ("local", "oidc"):
            raise KdeskError("An account signs in locally or through OIDC.")
        unknown = sorted(set(roles) - set(self.roles.names()))
        if unknown:
            raise KdeskError(f"No role named {', '.join(unknown)}.")
        generated = one_time_password() if auth == "local" and password is None else None
        secret = password if password is not None else generated
        if secret is not None and generated is None:
            self._check_password(secret, name)
        row = UserRow(
            name=name,
            auth=auth,
            email=email or (name if "@" in name else None),
            password_hash=self.hasher.hash(secret) if secret is not None else None,
            must_change_password=generated is not None,
            failed_attempts=0,
            created_at=self.clock(),
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise KdeskError(f"There is already a user named {name}.") from None
        self.roles.assign(name, roles)
        self.audit.record(actor, "user_added", name, channel=channel, auth=auth, roles=list(roles))
        return generated

    def remove(self, name: str, actor: str, *, channel: str = "") -> None:
        name = name.strip().lower()
        if self.account(name) is None:
            raise NotFoundError(f"No user named {name}.")
        self.roles.forget_user(name)  # refused when it would remove the last administrator
        if self.api_keys is not None:  # a later account of the same name starts without keys
            self.api_keys.revoke_all(name, actor, channel=channel)
        with Session(self.engine) as session, session.begin():
            row = session.get(UserRow, name)
            if row is not None:
                session.delete(row)
        self.audit.record(actor, "user_removed", name, channel=channel)

    def set_roles(self, name: str, roles: Sequence[str], actor: str, *, channel: str = "") -> None:
        name = name.strip().lower()
        if self.account(name) is None:
            raise NotFoundError(f"No user named {name}.")
        before = self.roles.role_names_of(name, "admin")
        self.roles.assign(name, roles)
        self.audit.record(
            actor, "user_roles_changed", name, channel=channel, before=before, after=list(roles)
        )

    def reset_password(self, name: str, actor: str, *, channel: str = "") -> str:
        """A new one-time password for a local account (also lifts a lock-out)."""
        generated = one_time_password()
        self._update(
            name,
            password_hash=self.hasher.hash(generated),
            must_change_password=True,
            failed_attempts=0,
            locked_until=None,
        )
        self.audit.record(actor, "password_reset", name.strip().lower(), channel=channel)
        return generated

    def unlock(self, name: str, actor: str, *, channel: str = "") -> None:
        self._update(name, failed_attempts=0, locked_until=None)
        self.audit.record(actor, "user_unlocked", name.strip().lower(), channel=channel)

    def bootstrap(self) -> str | None:
        """On a fresh install (no accounts at all): create ``admin`` with a one-time password
        and return it; afterwards always None."""
        with Session(self.engine) as session:
            if session.scalar(select(UserRow.name).limit(1)) is not None:
                return None
        try:
            return self.add(BOOTSTRAP_ADMIN, ["admin"], "system", channel="bootstrap")
        except KdeskError:
            return None  # another process bootstrapped at the same moment

    # Signing in ------------------------------------------------------------------------------

    def authenticate(self, name: str, password: str, *, channel: str = "chat") -> Account:
        """The account, when ``password`` is right and the account is not locked out."""
        key = name.strip().lower()[:200]
        now = self.clock()
        with Session(self.engine) as session:
            row = session.get(UserRow, key)
        if row is None or row.auth != "local" or not row.password_hash:
            self._verify(self._dummy_hash(), password)
            self.audit.record(key, "sign_in_failed", key, outcome="failed", channel=channel)
            raise SignInError(WRONG_CREDENTIALS)
        locked_until = row.locked_until
        if locked_until is not None and locked_until > now:
            self.audit.record(
                key, "sign_in_failed", key, outcome="denied", channel=channel, reason="locked"
            )
            raise SignInError(self._locked_message(locked_until, now))
        if not self._verify(row.password_hash, password):
            self._failed(row, now, channel)
            raise SignInError(WRONG_CREDENTIALS)
        changes: dict[str, object] = {"failed_attempts": 0, "locked_until": None}
        changes["last_sign_in"] = now
        if self.hasher.check_needs_rehash(row.password_hash):
            changes["password_hash"] = self.hasher.hash(password)
        self._update(key, **changes)
        self.audit.record(key, "sign_in", key, channel=channel, method="local")
        account = self.account(key)
        assert account is not None
        return account

    def change_password(self, name: str, old: str, new: str, *, channel: str = "chat") -> None:
        """Change a local password; the old one must be right (and the account not locked)."""
        account = self.authenticate(name, old, channel=channel)
        if new == old:
            raise KdeskError("The new password must differ from the old one.")
        self._check_password(new, account.name)
        self._update(account.name, password_hash=self.hasher.hash(new), must_change_password=False)
        self.audit.record(account.name, "password_changed", account.name, channel=channel)

    def sign_in_oidc(
        self,
        claims: Mapping[str, object],
        mapping: ClaimMapping,
        roles_claim: str,
        client_id: str = "",
    ) -> Account:
        """The account of an identity the OIDC provider vouched for; its claim-mapped roles
        replace the ones of its previous sign-in (roles an admin assigned stay). Refused, and
        audited: an ID token whose audience does not name ``client_id`` (when given), an e-mail
        the provider marks as not verified (``email_verified: false``)."""
        if not meant_for(claims, client_id):
            self._refuse_oidc(claims, "audience")
            raise SignInError("The identity provider's sign-in was meant for another application.")
        if unverified_email(claims) is not None:
            self._refuse_oidc(claims, "email_unverified")
            raise SignInError(
                "Your identity provider has not verified your e-mail address, so you cannot "
                "sign in with it. Verify it at your provider, then sign in again."
            )
        name = oidc_user_name(claims)
        if not name:
            raise SignInError("The identity provider sent neither an e-mail nor a subject.")
        existing = self.account(name)
        if existing is not None and existing.auth != "oidc":
            self.audit.record(name, "sign_in_failed", name, outcome="denied", reason="local")
            raise SignInError("This identity belongs to a local account: sign in with it there.")
        if existing is None:
            email = _verified_email(claims)
            self.add(name, [], "system", auth="oidc", email=email, channel="oidc")
        mapped = roles_from_claims(claims, mapping, roles_claim)
        known = set(self.roles.names())
        for role in sorted(set(mapped) - known):
            log.warning("OIDC mapping names an unknown role", extra={"fields": {"role": role}})
        # the provider is authoritative for these: no last-administrator check
        self.roles.assign(name, [r for r in mapped if r in known], "oidc", check_admins=False)
        self._update(name, last_sign_in=self.clock())
        self.audit.record(name, "sign_in", name, method="oidc", roles=mapped)
        account = self.account(name)
        assert account is not None
        return account

    # Internals -------------------------------------------------------------------------------

    def _refuse_oidc(self, claims: Mapping[str, object], reason: str) -> None:
        """Audit a refused OIDC identity under the name it claims (its e-mail, else subject)."""
        claimed = unverified_email(claims) or oidc_user_name(claims) or "oidc"
        subject = str(claims.get("sub") or "")[:200]
        self.audit.record(
            claimed,
            "sign_in_failed",
            claimed,
            outcome="denied",
            channel="oidc",
            method="oidc",
            reason=reason,
            sub=subject,
        )

    def _dummy_hash(self) -> str:
        """A hash to verify against for unknown names: the same work as for a real one."""
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_hex(16))
        return self._dummy

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(hashed, password[:MAX_PASSWORD]))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _failed(self, row: UserRow, now: datetime, channel: str) -> None:
        attempts = row.failed_attempts + 1
        self.audit.record(
            row.name,
            "sign_in_failed",
            row.name,
            outcome="failed",
            channel=channel,
            attempt=attempts,
        )
        if attempts < self.lockout_attempts:
            self._update(row.name, failed_attempts=attempts)
            return
        until = now + self.lockout
        self._update(row.name, failed_attempts=0, locked_until=until)
        self.audit.record(
            row.name, "account_locked", row.name, outcome="denied", channel=channel, until=until
        )

    def _locked_message(self, until: datetime, now: datetime) -> str:
        minutes = max(1, round((until - now).total_seconds() / 60))
        return (
            f"Too many failed sign-ins: this account is locked for {minutes} more minute(s). "
            "An admin can unlock it."
        )

    def _check_password(self, password: str, name: str) -> None:
        problem = password_problem(password, name, self.min_password_length)
        if problem:
            raise KdeskError(problem)

    def _update(self, name: str, **values: object) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(UserRow, name.strip().lower())
            if row is None:
                raise NotFoundError(f"No user named {name}.")
            for key, value in values.items():
                setattr(row, key, value)


# OIDC claims -> roles ----------------------------------------------------------------------------
