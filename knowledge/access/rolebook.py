"""Roles stored in the database and who holds them: saved, deleted and granted through the audit
log, the templates seeded on first start, the last administrator protected."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, String, Text, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.access.audit import AuditLog
from knowledge.access.roles import Access, Role, role_config, role_from_config, templates, validated
from knowledge.core.db import Base, UTCDateTime
from knowledge.core.errors import KdeskError, NotFoundError


class RoleRow(Base):
    __tablename__ = "roles"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    config: Mapped[str] = mapped_column(Text)  # the Role as JSON
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))


class UserRoleRow(Base):
    __tablename__ = "user_roles"
    user: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(10), primary_key=True)  # "admin" or "oidc"


class RoleBook:
    def __init__(self, engine: Engine, audit: AuditLog | None = None) -> None:
        self.engine = engine
        self.audit = audit or AuditLog(engine)
        self._seed()

    def _seed(self) -> None:
        with Session(self.engine) as session:
            if session.scalar(select(RoleRow.name).limit(1)) is not None:
                return
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(RoleRow), [_row(r, "system") for r in templates()])
        except Exception:  # noqa: BLE001 - another process seeded them at the same moment
            if not self.names():
                raise

    # Roles -----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.scalars(select(RoleRow.name).order_by(RoleRow.name)))

    def roles(self) -> list[Role]:
        with Session(self.engine) as session:
            rows = session.scalars(select(RoleRow.config).order_by(RoleRow.name))
            return [role_from_config(json.loads(config)) for config in rows]

    def role(self, name: str) -> Role:
        with Session(self.engine) as session:
            row = session.get(RoleRow, name)
            if row is None:
                raise NotFoundError(f"No role named {name!r}.")
            return role_from_config(json.loads(row.config))

    def save(self, role: Role, actor: str, *, channel: str = "") -> Role:
        """Create or replace a role (refused when it would leave nobody able to manage roles)."""
        role = validated(role)
        self._keep_an_administrator(changed={role.name: role})
        with Session(self.engine) as session, session.begin():
            existed = session.get(RoleRow, role.name) is not None
            session.merge(RoleRow(**_row(role, actor)))
        self.audit.record(
            actor,
            "role_saved",
            role.name,
            channel=channel,
            created=not existed,
            pages=list(role.pages),
            collections=list(role.collections),
            upload_collections=list(role.upload_collections),
        )
        return role

    def delete(self, name: str, actor: str, *, channel: str = "") -> None:
        self.role(name)  # NotFoundError when there is none
        self._keep_an_administrator(removed={name})
        with Session(self.engine) as session, session.begin():
            session.execute(delete(UserRoleRow).where(UserRoleRow.role == name))
            session.execute(delete(RoleRow).where(RoleRow.name == name))
        self.audit.record(actor, "role_deleted", name, channel=channel)

    # Assignments -----------------------------------------------------------------------------

    def assignments(self) -> list[tuple[str, str, str]]:
        """All (user, role, source) rows."""
        r = UserRoleRow
        with Session(self.engine) as session:
            rows = session.execute(select(r.user, r.role, r.source).order_by(r.user, r.role))
            return [(u, role, s) for u, role, s in rows]

    def role_names_of(self, user: str, source: str | None = None) -> list[str]:
        r = UserRoleRow
        query = select(r.role).where(r.user == user).distinct().order_by(r.role)
        if source:
            query = query.where(r.source == source)
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def members(self, role: str) -> list[str]:
        r = UserRoleRow
        query = select(r.user).where(r.role == role).distinct().order_by(r.user)
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def assign(
        self, user: str, roles: Sequence[str], source: str = "admin", *, check_admins: bool = True
    ) -> None:
        """Replace the user's roles from ``source`` (unknown role names are refused)."""
        known = set(self.names())
        unknown = sorted(set(roles) - known)
        if unknown:
            raise KdeskError(
                f"No role named {', '.join(unknown)}. Roles: {', '.join(sorted(known))}."
            )
        if check_admins:
            self._keep_an_administrator(user=user, user_roles=(set(roles), source))
        with Session(self.engine) as session, session.begin():
            r = UserRoleRow
            session.execute(delete(r).where(r.user == user, r.source == source))
            session.add_all(r(user=user, role=role, source=source) for role in dict.fromkeys(roles))

    def forget_user(self, user: str) -> None:
        self._keep_an_administrator(user=user, user_roles=(set(), None))
        with Session(self.engine) as session, session.begin():
            session.execute(delete(UserRoleRow).where(UserRoleRow.user == user))

    def access(self, user: str) -> Access:
        """What ``user`` may do now (read fresh on every call: role edits apply at once)."""
        names = self.role_names_of(user)
        if not names:
            return Access(user)
        by_name = {role.name: role for role in self.roles()}
        return Access(user, tuple(by_name[n] for n in names if n in by_name))

    # Safety ----------------------------------------------------------------------------------

    def _keep_an_administrator(
        self,
        *,
        changed: dict[str, Role] | None = None,
        removed: set[str] | None = None,
        user: str | None = None,
        user_roles: tuple[set[str], str | None] | None = None,
    ) -> None:
        """Refuse a change after which no user could open the Roles page any more (while
        someone can now): nobody could then repair the configuration from the app."""
        roles = {role.name: role for role in self.roles()}
        rows = self.assignments()
        if not _administrators(roles, rows):
            return
        roles.update(changed or {})
        for name in removed or set():
            roles.pop(name, None)
        if user is not None and user_roles is not None:
            new_roles, source = user_roles
            rows = [row for row in rows if row[0] != user or (source and row[2] != source)]
            rows += [(user, role, source or "admin") for role in new_roles]
        if not _administrators(roles, rows):
            raise KdeskError(
                "Refused: afterwards nobody could manage roles. Give another user a role with "
                "the roles page first."
            )


def _administrators(roles: dict[str, Role], rows: Sequence[tuple[str, str, str]]) -> set[str]:
    return {user for user, role, _ in rows if role in roles and "roles" in roles[role].pages}


def _row(role: Role, actor: str) -> dict[str, object]:
    return {
        "name": role.name,
        "config": json.dumps(role_config(role), ensure_ascii=False),
        "updated_at": datetime.now(UTC),
        "updated_by": actor,
    }
