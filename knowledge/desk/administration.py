"""What a signed-in admin may do to roles, accounts and the audit log: part of ``UserDesk``
(knowledge/desk/facade.py), each method checking the page that grants it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from knowledge.access.accounts import Account
from knowledge.access.audit import AuditEvent, AuditQuery
from knowledge.access.roles import Role

if TYPE_CHECKING:
    from knowledge.desk.root import Desk


class Administration:
    desk: Desk
    user: str
    channel: str

    def require(self, page: str) -> None:  # UserDesk's: refuses (and audits) without the page
        raise NotImplementedError

    def may_open(self, page: str) -> bool:
        raise NotImplementedError

    def stored_roles(self) -> list[Role]:
        self.require("roles")
        return self.desk.roles.roles()

    def stored_role(self, name: str) -> Role:
        self.require("roles")
        return self.desk.roles.role(name)

    def role_members(self, name: str) -> list[str]:
        self.require("roles")
        return self.desk.roles.members(name)

    def role_names_of(self, user: str, source: str) -> list[str]:
        """The roles ``user`` holds from ``source`` ("admin": given here, "oidc": the provider)."""
        self.require("roles")
        return self.desk.roles.role_names_of(user, source)

    def role_names(self) -> list[str]:
        if not self.may_open("roles"):
            self.require("admin")
        return self.desk.roles.names()

    def save_role(self, role: Role) -> Role:
        self.require("roles")
        return self.desk.roles.save(role, self.user, channel=self.channel)

    def delete_role(self, name: str) -> None:
        self.require("roles")
        self.desk.roles.delete(name, self.user, channel=self.channel)

    def set_user_roles(self, user: str, roles: Sequence[str]) -> None:
        self.require("roles")
        self.desk.accounts.set_roles(user, roles, self.user, channel=self.channel)

    def accounts(self) -> list[Account]:
        if not (self.may_open("roles") or self.may_open("admin")):
            self.require("admin")
        return self.desk.accounts.accounts()

    def add_user(self, name: str, roles: Sequence[str]) -> str | None:
        self.require("admin")
        return self.desk.accounts.add(name, roles, self.user, channel=self.channel)

    def remove_user(self, name: str) -> None:
        self.require("admin")
        self.desk.accounts.remove(name, self.user, channel=self.channel)

    def reset_password(self, name: str) -> str:
        self.require("admin")
        return self.desk.accounts.reset_password(name, self.user, channel=self.channel)

    def unlock_user(self, name: str) -> None:
        self.require("admin")
        self.desk.accounts.unlock(name, self.user, channel=self.channel)

    def audit_events(self, query: AuditQuery | None = None) -> list[AuditEvent]:
        self.require("admin")
        return self.desk.audit.events(query)
