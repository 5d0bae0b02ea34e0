"""`kdesk users ...`, `kdesk roles ...` and `kdesk audit`: accounts, roles and the audit log from
the server's shell (whoever runs these can read the data directory anyway: they act as the
operator, recorded in the audit log as ``os:NAME``)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from knowledge.cli import common
from knowledge.core.errors import KdeskError

BOOTSTRAP_NOTICE = """\
Knowledge Desk: the first administrator account was created.
    user name:          admin
    one-time password:  {password}
Sign in with it in the browser and choose your own password. It is shown only this once
(`kdesk users reset-password admin` makes a new one)."""


def operator() -> str:
    from knowledge.usage.events import os_user

    return f"os:{os_user()}"


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


# Users -------------------------------------------------------------------------------------------


def cmd_users_add(args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise KdeskError("No password on standard input.")
    auth = "oidc" if args.oidc else "local"
    generated = common.open_desk().accounts.add(
        args.name, args.role or [], operator(), password=password, auth=auth, channel="cli"
    )
    print(
        f"Added {args.name.lower()} ({auth}) with role(s): {', '.join(args.role or []) or 'none'}"
    )
    if generated:
        print(f"One-time password (to be changed at the first sign-in): {generated}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    accounts = common.open_desk().accounts.accounts()
    if args.json:
        common.print_json({"users": [vars(a) for a in accounts]})
        return 0
    for a in accounts:
        flags = [a.auth]
        if a.must_change_password:
            flags.append("must change password")
        if a.locked_until:
            flags.append(f"locked until {a.locked_until:%Y-%m-%d %H:%M} UTC")
        print(f"{a.name:30} {', '.join(a.roles) or '(no roles)':40} {'; '.join(flags)}")
    return 0


def cmd_users_remove(args: argparse.Namespace) -> int:
    common.open_desk().accounts.remove(args.name, operator(), channel="cli")
    print(f"Removed {args.name}.")
    return 0


def cmd_users_roles(args: argparse.Namespace) -> int:
    common.open_desk().accounts.set_roles(args.name, args.role or [], operator(), channel="cli")
    print(f"{args.name}: {', '.join(args.role or []) or 'no roles'}")
    return 0


def cmd_users_reset(args: argparse.Namespace) -> int:
    password = common.open_desk().accounts.reset_password(args.name, operator(), channel="cli")
    print(f"One-time password for {args.name} (to be changed at the next sign-in): {password}")
    return 0


def cmd_users_unlock(args: argparse.Namespace) -> int:
    common.open_desk().accounts.unlock(args.name, operator(), channel="cli")
    print(f"Unlocked {args.name}.")
    return 0


def cmd_users_bootstrap(args: argparse.Namespace) -> int:
    """Create the first admin on a fresh install; print its one-time password only then."""
    desk = common.open_desk()
    if desk.settings.auth_mode != "local":
        return 0  # OIDC: administrators come from the identity provider's claims
    password = desk.accounts.bootstrap()
    if password:
        print(BOOTSTRAP_NOTICE.format(password=password), flush=True)
    return 0


# Roles -------------------------------------------------------------------------------------------


def cmd_roles_list(args: argparse.Namespace) -> int:
    from knowledge.access.roles import role_config

    desk = common.open_desk()
    roles = desk.roles.roles()
    if args.json:
        common.print_json(
            {"roles": [role_config(r) | {"members": desk.roles.members(r.name)} for r in roles]}
        )
        return 0
    for r in roles:
        print(f"{r.name:16} pages: {', '.join(r.pages)}")
        print(f"{'':16} search: {', '.join(r.collections) or '-'}")
        print(f"{'':16} upload: {', '.join(r.upload_collections) or '-'}")
        print(f"{'':16} tools: {', '.join(r.tools) or '-'}")
        print(f"{'':16} persona: {r.persona.answer_policy}, {r.rate_limit.describe()}")
    return 0


def cmd_roles_show(args: argparse.Namespace) -> int:
    from knowledge.access.roles import role_config

    common.print_json(role_config(common.open_desk().roles.role(args.name)))
    return 0


def cmd_roles_set(args: argparse.Namespace) -> int:
    """Create a role or change the given fields of an existing one."""
    from knowledge.access.ratelimit import RateLimit
    from knowledge.access.roles import Role, role_from_config
    from knowledge.core.errors import NotFoundError

    desk = common.open_desk()
    if args.from_json:
        values = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        role = role_from_config({**values, "name": args.name})
    else:
        try:
            role = desk.roles.role(args.name.strip().lower())
        except NotFoundError:
            s = desk.settings
            limit = RateLimit(s.rate_limit_requests, s.rate_limit_tokens, s.rate_limit_window_s)
            role = Role(args.name, rate_limit=limit)
    role = _apply_options(role, args)
    saved = desk.roles.save(role, operator(), channel="cli")
    print(
        f"Saved role {saved.name}: search {', '.join(saved.collections) or '-'}; "
        f"upload {', '.join(saved.upload_collections) or '-'}; pages {', '.join(saved.pages)}; "
        f"tools {', '.join(saved.tools) or '-'}"
    )
    return 0


def _apply_options(role: Any, args: argparse.Namespace) -> Any:
    changes: dict[str, object] = {}
    for option, key in (
        ("collections", "collections"),
        ("upload", "upload_collections"),
        ("tools", "tools"),
    ):
        if (value := _split(getattr(args, option))) is not None:
            changes[key] = value
    if (pages := _split(args.pages)) is not None:
        changes["pages"] = pages
    if args.description is not None:
        changes["description"] = args.description
    persona: dict[str, object] = {}
    for option in ("system_prompt", "temperature", "max_tokens", "model"):
        if (value := getattr(args, option)) is not None:
            persona[option] = value
    if args.policy is not None:
        persona["answer_policy"] = args.policy
    if persona:
        changes["persona"] = replace(role.persona, **persona)
    limit: dict[str, int] = {}
    for option, key in (
        ("rate_requests", "requests"),
        ("rate_tokens", "tokens"),
        ("rate_window", "window_s"),
    ):
        if (value := getattr(args, option)) is not None:
            limit[key] = value
    if limit:
        changes["rate_limit"] = replace(role.rate_limit, **limit)
    return replace(role, **changes)


def cmd_roles_delete(args: argparse.Namespace) -> int:
    common.open_desk().roles.delete(args.name, operator(), channel="cli")
    print(f"Deleted role {args.name}.")
    return 0


# Audit -------------------------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace) -> int:
    from knowledge.access.audit import AuditQuery, audit_csv, audit_rows

    query = AuditQuery(
        since=args.since,
        until=args.until,
        actor=args.actor,
        actions=tuple(args.action or ()),
        limit=args.limit,
    )
    events = common.open_desk().audit.events(query)
    if args.csv:
        sys.stdout.write(audit_csv(events).decode())
    elif args.json:
        common.print_json({"events": audit_rows(events)})
    else:
        for row in audit_rows(events):
            print(
                f"{row['at']} {row['actor']:24} {row['action']:18} {row['outcome']:7} "
                f"{row['target']} {row['detail'] if row['detail'] != '{}' else ''}"
            )
    return 0


def add_access_commands(sub: Any, day: Any) -> None:
    """Register `kdesk users`, `kdesk roles` and `kdesk audit` (``day`` parses YYYY-MM-DD)."""
    from knowledge.access.audit import AUDIT_ACTIONS
    from knowledge.assistant.personas import ANSWER_POLICIES

    users = sub.add_parser("users", help="accounts: add, list, remove, roles, passwords")
    group = users.add_subparsers(dest="users_command", required=True)
    p = group.add_parser("add", help="add an account (a one-time password is printed)")
    p.add_argument("name")
    p.add_argument("--role", action="append", help="repeatable")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--oidc", action="store_true", help="signs in through the identity provider")
    p.set_defaults(func=cmd_users_add)
    p = group.add_parser("list", help="accounts, their roles and state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users_list)
    p = group.add_parser("remove", help="remove an account")
    p.add_argument("name")
    p.set_defaults(func=cmd_users_remove)
    p = group.add_parser("roles", help="replace the roles an admin gave a user")
    p.add_argument("name")
    p.add_argument("--role", action="append", help="repeatable; none: no roles")
    p.set_defaults(func=cmd_users_roles)
    p = group.add_parser("reset-password", help="a new one-time password (lifts a lock-out)")
    p.add_argument("name")
    p.set_defaults(func=cmd_users_reset)
    p = group.add_parser("unlock", help="lift a lock-out after failed sign-ins")
    p.add_argument("name")
    p.set_defaults(func=cmd_users_unlock)
    p = group.add_parser("bootstrap", help="create the first admin on a fresh install")
    p.set_defaults(func=cmd_users_bootstrap)

    roles = sub.add_parser("roles", help="roles: pages, collections, persona, rate limit")
    group = roles.add_subparsers(dest="roles_command", required=True)
    p = group.add_parser("list", help="roles and what they allow")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_roles_list)
    p = group.add_parser("show", help="one role as JSON (edit it and load it with set --from-json)")
    p.add_argument("name")
    p.set_defaults(func=cmd_roles_show)
    p = group.add_parser("set", help="create a role or change the given fields")
    p.add_argument("name")
    p.add_argument("--collections", help="comma-separated patterns it may search, e.g. 'Sales*,HR'")
    p.add_argument("--upload", help="comma-separated patterns it may upload to and delete in")
    p.add_argument("--tools", help="comma-separated tool name patterns it may use ('*': all)")
    p.add_argument(
        "--pages", help="comma-separated: chat, knowledge, contracts, analytics, roles, admin"
    )
    p.add_argument("--description")
    p.add_argument("--system-prompt")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--model", help='"" for the default, MODEL or BACKEND:MODEL')
    p.add_argument("--policy", choices=ANSWER_POLICIES)
    p.add_argument("--rate-requests", type=int, help="questions per window; 0: no limit")
    p.add_argument("--rate-tokens", type=int, help="model tokens per window; 0: no limit")
    p.add_argument("--rate-window", type=int, help="seconds")
    p.add_argument("--from-json", help="a whole role, as `kdesk roles show` prints it")
    p.set_defaults(func=cmd_roles_set)
    p = group.add_parser("delete", help="delete a role (its members lose it)")
    p.add_argument("name")
    p.set_defaults(func=cmd_roles_delete)

    p = sub.add_parser("audit", help="the audit log, newest first")
    p.add_argument("--since", type=day)
    p.add_argument("--until", type=day)
    p.add_argument("--actor")
    p.add_argument("--action", action="append", choices=AUDIT_ACTIONS)
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_audit)
