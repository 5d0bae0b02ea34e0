"""A user's own API keys, and an admin's view of everyone's (knowledge/access/api_keys.py):
``UserDesk.api_keys``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from knowledge.access.api_keys import ApiKey, parse_scopes
from knowledge.core.errors import NotFoundError

if TYPE_CHECKING:
    from knowledge.desk.facade import UserDesk


class UserKeys:
    def __init__(self, me: UserDesk) -> None:
        self.me = me
        self.book = me.desk.api_keys

    def mine(self) -> list[ApiKey]:
        return self.book.keys(self.me.user)

    def everyone(self) -> list[ApiKey]:
        """Every user's keys (admins only)."""
        self.me.require("admin")
        return self.book.keys()

    def create(
        self, name: str, scopes: Sequence[str] | str = ("read",), *, expires_days: int | None = -1
    ) -> tuple[ApiKey, str]:
        """A new key of the user's own, and its secret (shown once). ``expires_days`` -1: the
        configured default (KDESK_API_KEY_DAYS), None or 0: never. The admin scope needs the
        admin page."""
        wanted = parse_scopes(scopes)
        if "admin" in wanted and not self.me.may_open("admin"):
            self.me.require("admin")  # audited, then refused
        if expires_days == -1:
            expires_days = self.me.desk.settings.api_key_days
        days = expires_days or None
        return self.book.create(
            self.me.user, name, wanted, expires_days=days, channel=self.me.channel
        )

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke one of the user's own keys, or anyone's for an admin; someone else's key is
        "not found" to a non-admin."""
        key = self.book.key(key_id)  # NotFoundError when unknown
        if key.user != self.me.user and not self.me.may_open("admin"):
            self.me._audit("permission_denied", f"api_key:{key_id}", outcome="denied")
            raise NotFoundError(f"No API key with id {key_id}.")
        return self.book.revoke(key_id, self.me.user, channel=self.me.channel)
