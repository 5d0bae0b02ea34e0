"""Who is calling: the API key in ``Authorization: Bearer kdesk_…`` names a user, and every
request acts as that user (``UserDesk``: their roles, collections, persona, rate limit, audit,
usage events on the channel "api"); the key's scopes cap what it may do on top of that."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from knowledge.access.api_keys import ApiKey, InvalidApiKeyError, Scope
from knowledge.desk.facade import UserDesk
from knowledge.desk.root import Desk
from knowledge.service.errors import ApiError

CHANNEL = "api"
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="An API key (kdesk_…) from the Account page or `kdesk keys create`.",
)


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    me: UserDesk  # the key's user, in their first role

    def as_role(self, role: str | None) -> UserDesk:
        """The same user asking in one of their roles (PermissionDeniedError otherwise)."""
        if role is None or (self.me.role is not None and role == self.me.role.name):
            return self.me
        return UserDesk(self.me.desk, self.me.user, role=role, channel=CHANNEL)

    def asking(self, role: str | None = None) -> UserDesk:
        """The user asking or searching as in the web app's chat: one of their roles must give
        the chat page (PermissionDeniedError, audited, otherwise)."""
        me = self.as_role(role)
        me.require("chat")
        return me

    def require(self, scope: Scope) -> None:
        if not self.key.allows(scope):
            raise ApiError(
                403, f"This API key does not have the {scope} scope.", "permission_error"
            )


def authenticate(desk: Desk, secret: str | None) -> Caller:
    """The caller a key stands for (InvalidApiKeyError: none, unknown, revoked, expired, or its
    user was removed). Used by every route and by the MCP server."""
    key = desk.api_keys.authenticate(secret.strip() if secret else None, channel=CHANNEL)
    if desk.accounts.account(key.user) is None:
        raise InvalidApiKeyError("This API key's user no longer exists.")
    return Caller(key, desk.for_user(key.user, channel=CHANNEL))


def key_of(request: Request) -> str | None:
    """The key a request carries: ``Authorization: Bearer kdesk_…``, else ``X-API-Key``."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret if scheme.lower() == "bearer" else request.headers.get("x-api-key")


def desk_of(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    # ``credentials`` (HTTPBearer) puts the key scheme in the OpenAPI schema; key_of reads it
    return authenticate(desk_of(request), key_of(request))


def _reader(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    caller.require("read")
    return caller


def _uploader(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    caller.require("upload")
    return caller


def _admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    caller.require("admin")
    return caller


AnyKey = Annotated[Caller, Depends(_caller)]
Reader = Annotated[Caller, Depends(_reader)]  # a key with the read scope
Uploader = Annotated[Caller, Depends(_uploader)]  # with the upload scope
Admin = Annotated[Caller, Depends(_admin)]  # with the admin scope
