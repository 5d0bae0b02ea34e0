"""`kdesk conversations purge`: delete the conversations not continued within
KDESK_CONVERSATION_DAYS (the app also does it as users list theirs)."""

from __future__ import annotations

import argparse

from knowledge.cli import common


def cmd_purge(args: argparse.Namespace) -> int:
    from knowledge.desk.conversations import conversation_book, purge_expired

    desk = common.open_desk()
    days = desk.settings.conversation_days if args.days is None else args.days
    removed = purge_expired(conversation_book(desk), days, force=True)
    if days <= 0:
        print("Conversations are kept forever (KDESK_CONVERSATION_DAYS=0): nothing purged.")
    else:
        print(f"Purged {removed} conversation(s) not continued for {days} days.")
    return 0


def add_conversation_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    conversations = sub.add_parser("conversations", help="kept chat conversations")
    commands = conversations.add_subparsers(dest="conversations_command", required=True)
    p = commands.add_parser("purge", help="delete conversations older than the retention")
    p.add_argument(
        "--days", type=int, help="this retention instead of KDESK_CONVERSATION_DAYS (0: none)"
    )
    p.set_defaults(func=cmd_purge)
