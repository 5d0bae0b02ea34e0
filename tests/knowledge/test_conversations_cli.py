"""`kdesk conversations purge`: the retention from the command line."""

from __future__ import annotations

from datetime import timedelta

from knowledge.core.db import utc_now
from knowledge.core.settings import load_settings
from knowledge.desk.conversations import conversation_book
from knowledge.desk.root import Desk
from knowledge.usage.conversations import StoredTurn
from tests.knowledge.test_cli import env, run  # noqa: F401 - the CLI tests' environment


def test_purge_deletes_conversations_older_than_the_retention(env, capsys, monkeypatch):  # noqa: F811
    book = conversation_book(Desk(load_settings()))
    old, kept = book.create("alice"), book.create("alice")
    for c in (old, kept):
        book.append("alice", c.id, StoredTurn("Hotels?", "180 euros.", False))
    book.touch(old.id, utc_now() - timedelta(days=40))

    monkeypatch.setenv("KDESK_CONVERSATION_DAYS", "0")
    code, out = run(capsys, "conversations", "purge")
    assert code == 0 and "kept forever" in out["text"]
    monkeypatch.setenv("KDESK_CONVERSATION_DAYS", "30")
    code, out = run(capsys, "conversations", "purge")
    assert code == 0 and "Purged 1 conversation(s) not continued for 30 days." in out["text"]
    assert [c.id for c in book.list("alice")] == [kept.id]
