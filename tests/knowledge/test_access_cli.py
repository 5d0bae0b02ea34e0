"""`kdesk users`, `kdesk roles`, `kdesk audit`, and `kdesk search/ask/usage --user`: the
command-line contract scripts and tests rely on."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.cli import common
from knowledge.cli import main as cli
from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.fake_ollama import FakeOllama
from tests.pages.support import MODEL, grounded_reply
from tests.pdfs import make_pdf

HR = ["Leave Policy\n\nFull-time employees receive 25 working days of paid annual leave per year."]
LEGAL = [
    "Settlement Memo\n\nThe confidential settlement with Initech Corporation amounts to 4.2 "
    "million euros, payable in three instalments."
]
PASSWORD = "a long cli password"


@pytest.fixture
def kdesk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder, capsys: pytest.CaptureFixture
) -> Iterator:
    """`kdesk ARGS...` over a data dir with collections HR and Legal; returns (code, out, err)."""
    with FakeOllama(reply=grounded_reply, models=[MODEL]) as ollama:
        monkeypatch.setenv("KDESK_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("KDESK_MODEL_BACKEND", "ollama")
        monkeypatch.setenv("KDESK_OLLAMA_HOST", ollama.url)
        monkeypatch.setenv("KDESK_OLLAMA_MODEL", MODEL)
        monkeypatch.setattr(common, "open_desk", lambda: Desk(load_settings(), embedder=embedder))
        desk = common.open_desk()
        desk.ingest([Upload("leave.pdf", make_pdf(HR, title="Leave Policy"))], "HR")
        desk.ingest([Upload("memo.pdf", make_pdf(LEGAL, title="Settlement Memo"))], "Legal")

        def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
            if stdin is not None:
                monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
            capsys.readouterr()
            code = cli.main(list(args))
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        yield run


def test_roles_set_and_users_add_then_search_with_exactly_those_permissions(kdesk):
    assert kdesk("roles", "set", "hr reader", "--collections", "HR", "--pages", "chat")[0] == 0
    assert kdesk("roles", "set", "counsel", "--collections", "Legal")[0] == 0
    code, out, _ = kdesk("users", "add", "hanna", "--role", "hr reader", "--password-stdin",
                         stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0 and "One-time password" not in out
    kdesk("users", "add", "leo", "--role", "counsel", "--password-stdin", stdin=PASSWORD)

    _, out, _ = kdesk("search", "Initech settlement amount", "--user", "hanna", "--json")
    assert {r["doc"] for r in json.loads(out)["results"]} <= {"leave.pdf"}
    _, out, _ = kdesk("search", "Initech settlement amount", "--user", "leo", "--json")
    assert json.loads(out)["results"][0]["doc"] == "memo.pdf"
    _, out, _ = kdesk("search", "settlement", "--user", "hanna", "--collection", "Legal", "--json")
    assert json.loads(out) == {"results": []}, "a forbidden collection is empty, not an error"


def test_ask_as_a_user_uses_their_role_and_records_it(kdesk):
    kdesk("roles", "set", "hr reader", "--collections", "HR")
    kdesk("users", "add", "hanna", "--role", "hr reader", "--password-stdin", stdin=PASSWORD)
    code, out, _ = kdesk("ask", "How much paid annual leave?", "--user", "hanna", "--json")
    answer = json.loads(out)
    assert code == 0 and {c["doc"] for c in answer["citations"]} == {"leave.pdf"}
    event = common.open_desk().usage.event(answer["event_id"])
    assert (event["user"], event["role"], event["channel"]) == ("hanna", "hr reader", "cli")
    code, _, err = kdesk("ask", "x", "--user", "hanna", "--role", "admin")
    assert code == 2 and "not one of your roles" in err


def test_a_user_with_no_access_gets_empty_results(kdesk):
    kdesk("users", "add", "nobody", "--password-stdin", stdin=PASSWORD)
    _, out, _ = kdesk("search", "Initech settlement", "--user", "nobody", "--json")
    assert json.loads(out) == {"results": []}
    code, out, _ = kdesk(
        "ask", "How large is the Initech settlement?", "--user", "nobody", "--json"
    )
    answer = json.loads(out)
    assert code == 0 and answer["abstained"] and answer["citations"] == []
    _, out, _ = kdesk("search", "Initech settlement", "--user", "no-such-user", "--json")
    assert json.loads(out) == {"results": []}


def test_users_add_prints_a_one_time_password_and_list_shows_it_must_change(kdesk):
    code, out, _ = kdesk("users", "add", "Bob", "--role", "employee", "--role", "sales")
    assert code == 0
    [password] = re.findall(r"One-time password .*: (\S+)", out)
    assert common.open_desk().accounts.authenticate("bob", password).must_change_password
    _, out, _ = kdesk("users", "list", "--json")
    [bob] = json.loads(out)["users"]
    assert bob["roles"] == ["employee", "sales"] and bob["must_change_password"]
    assert kdesk("users", "roles", "bob", "--role", "legal")[0] == 0
    assert common.open_desk().roles.access("bob").role_names == ("legal",)
    code, out, _ = kdesk("users", "reset-password", "bob")
    assert code == 0 and "One-time password for bob" in out
    assert kdesk("users", "remove", "bob")[0] == 0
    code, _, err = kdesk("users", "remove", "bob")
    assert code == 2 and "No user named bob" in err


def test_bootstrap_prints_the_password_only_when_it_creates_the_admin(kdesk):
    code, out, _ = kdesk("users", "bootstrap")
    assert code == 0 and "user name:          admin" in out
    [password] = re.findall(r"one-time password:\s+(\S+)", out)
    assert common.open_desk().accounts.authenticate("admin", password).roles == ("admin",)
    code, out, _ = kdesk("users", "bootstrap")
    assert code == 0 and out == ""


def test_roles_show_list_and_set_from_json(kdesk, tmp_path: Path):
    _, out, _ = kdesk("roles", "show", "sales")
    sales = json.loads(out)
    assert sales["persona"]["answer_policy"] == "general_knowledge"
    sales["collections"] = ["Sales*"]
    sales["rate_limit"]["requests"] = 5
    path = tmp_path / "sales.json"
    path.write_text(json.dumps(sales))
    assert kdesk("roles", "set", "sales", "--from-json", str(path))[0] == 0
    _, out, _ = kdesk("roles", "list", "--json")
    saved = {r["name"]: r for r in json.loads(out)["roles"]}["sales"]
    assert saved["collections"] == ["Sales*"] and saved["rate_limit"]["requests"] == 5
    code, _, err = kdesk("roles", "set", "x", "--pages", "chat,secrets")
    assert code == 2 and "Unknown page" in err
    assert kdesk("roles", "delete", "sales")[0] == 0


def test_usage_as_a_user_needs_analytics_and_is_scoped(kdesk):
    kdesk("roles", "set", "hr reader", "--collections", "HR", "--pages", "chat,analytics")
    kdesk("users", "add", "hanna", "--role", "hr reader", "--password-stdin", stdin=PASSWORD)
    kdesk("users", "add", "emp", "--role", "employee", "--password-stdin", stdin=PASSWORD)
    kdesk("ask", "How much paid annual leave?", "--collection", "HR")
    kdesk("ask", "How large is the Initech settlement?", "--collection", "Legal")
    _, out, _ = kdesk("usage", "--json", "--user", "hanna")
    assert json.loads(out)["questions"] == 1
    code, _, err = kdesk("usage", "--json", "--user", "emp")
    assert code == 2 and "do not give access" in err


def test_audit_lists_what_happened(kdesk):
    kdesk("users", "add", "hanna", "--role", "employee", "--password-stdin", stdin=PASSWORD)
    kdesk("roles", "set", "night", "--collections", "HR")
    _, out, _ = kdesk("audit", "--json")
    events = json.loads(out)["events"]
    assert [e["action"] for e in events[:2]] == ["role_saved", "user_added"]
    assert events[0]["actor"].startswith("os:") and events[0]["channel"] == "cli"
    _, out, _ = kdesk("audit", "--csv", "--action", "user_added")
    assert out.splitlines()[0].startswith("at,actor,action") and "hanna" in out
