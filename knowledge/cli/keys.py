"""`kdesk keys create|list|revoke`: API keys from the server's shell. Like `kdesk users`, whoever
runs these can read the data directory anyway: they act as the operator (audited as
``os:NAME``), unless `revoke --as USER` names the user to act as."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from knowledge.cli import common
from knowledge.cli.access import operator
from knowledge.core.errors import KdeskError

if TYPE_CHECKING:  # the CLI imports the heavy stack only for the commands that need it
    from knowledge.access.api_keys import ApiKey


def key_json(key: ApiKey, now: datetime) -> dict[str, Any]:
    return asdict(key) | {"scopes": list(key.scopes), "status": key.status(now)}


def _when(moment: datetime | None, empty: str) -> str:
    return empty if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def cmd_keys_create(args: argparse.Namespace) -> int:
    from knowledge.access.api_keys import parse_scopes

    desk = common.open_desk()
    user = args.user.strip().lower()
    if desk.accounts.account(user) is None:
        raise KdeskError(f"No user named {user} (`kdesk users list` shows them).")
    scopes = parse_scopes(args.scope or ["read"])
    if "admin" in scopes and not desk.for_user(user, channel="cli").may_open("admin"):
        raise KdeskError(f"{user}'s roles do not give the admin page: no admin scope for them.")
    if args.never:
        days = None
    elif args.days is not None:
        days = args.days
    else:
        days = desk.settings.api_key_days or None  # KDESK_API_KEY_DAYS; 0: never
    key, secret = desk.api_keys.create(
        user, args.name, scopes, expires_days=days, actor=operator(), channel="cli"
    )
    if args.json:
        common.print_json({"key": key_json(key, key.created_at), "secret": secret})
        return 0
    expiry = f"expires {_when(key.expires_at, '')} UTC" if key.expires_at else "never expires"
    print(f"Created key {key.key_id} for {user} ({', '.join(key.scopes)}; {expiry}):")
    print(f"    {secret}")
    print("It is shown only this once (only its hash is stored). Send it as")
    print("'Authorization: Bearer <key>'; `kdesk keys revoke` ends it.")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = common.open_desk().api_keys.keys(args.user)
    now = datetime.now(UTC)
    if args.json:
        common.print_json({"keys": [key_json(k, now) for k in keys]})
        return 0
    for k in keys:
        print(
            f"{k.key_id:13} {k.user:24} {k.shown + '…':14} {','.join(k.scopes):18} "
            f"{k.status(now):8} expires {_when(k.expires_at, 'never'):16} "
            f"last used {_when(k.last_used_at, 'never'):16} {k.name}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    desk = common.open_desk()
    if args.as_user:  # as that user: their own key, or anyone's for an admin
        key = desk.for_user(args.as_user, channel="cli").api_keys.revoke(args.key_id)
    else:
        key = desk.api_keys.revoke(args.key_id, operator(), channel="cli")
    print(f"Revoked {key.key_id} ({key.name}) of {key.user}.")
    return 0


def add_key_commands(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys: create (shown once), list, revoke")
    group = keys.add_subparsers(dest="keys_command", required=True)
    p = group.add_parser("create", help="a new key of a user; its secret is printed once")
    p.add_argument("--user", required=True, help="the key acts as this user (an account)")
    p.add_argument("--name", required=True, help='where the key is used, e.g. "ticket bot"')
    p.add_argument(
        "--scope", action="append", help="read, upload or admin; repeatable; default: read"
    )
    expiry = p.add_mutually_exclusive_group()
    expiry.add_argument(
        "--days", type=int, help="expires after N days (default: KDESK_API_KEY_DAYS)"
    )
    expiry.add_argument("--never", action="store_true", help="the key does not expire")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_create)
    p = group.add_parser("list", help="keys (newest first): status, scopes, expiry, last use")
    p.add_argument("--user", help="only this user's keys")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_list)
    p = group.add_parser("revoke", help="revoke a key (it stops working at once)")
    p.add_argument("key_id")
    p.add_argument(
        "--as", dest="as_user", help="act as this user (their own key, or any for an admin)"
    )
    p.set_defaults(func=cmd_keys_revoke)
