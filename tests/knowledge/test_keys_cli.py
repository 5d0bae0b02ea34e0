"""`kdesk keys create|list|revoke`: the operator's API-key commands (the secret printed once,
only for existing accounts, the admin scope only for admins, revocation as the operator or as
a named user)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.access.api_keys import InvalidApiKeyError
from knowledge.access.audit import AuditQuery
from knowledge.cli import common
from knowledge.cli import main as cli
from knowledge.core.settings import load_settings
from knowledge.desk.root import Desk

PASSWORD = "a long cli password"
SECRET = re.compile(r"kdesk_[A-Za-z0-9_-]{40,}")


@pytest.fixture
def kdesk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder, capsys: pytest.CaptureFixture
) -> Iterator:
    """`kdesk ARGS...` over a data dir with users ann (employee) and root (admin)."""
    monkeypatch.setenv("KDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(common, "open_desk", lambda: Desk(load_settings(), embedder=embedder))

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    for user, role in (("ann", "employee"), ("root", "admin")):
        assert run("users", "add", user, "--role", role, "--password-stdin", stdin=PASSWORD)[0] == 0
    yield run


def test_create_prints_the_secret_once_and_it_acts_as_the_user(kdesk):
    code, out, _ = kdesk("keys", "create", "--user", "Ann", "--name", "ticket bot",
                         "--scope", "read", "--scope", "upload")  # fmt: skip
    assert code == 0
    [secret] = SECRET.findall(out)
    key = common.open_desk().api_keys.authenticate(secret)
    assert (key.user, key.name, key.scopes) == ("ann", "ticket bot", ("read", "upload"))
    assert key.expires_at is not None and (key.expires_at - key.created_at).days == 90
    [event] = common.open_desk().audit.events(AuditQuery(actions=("api_key_created",)))
    assert event.actor.startswith("os:") and event.target == "ann" and event.channel == "cli"

    code, out, _ = kdesk("keys", "list")
    assert code == 0 and key.key_id in out and key.shown in out and secret not in out


def test_create_as_json_and_the_expiry_choices(kdesk):
    code, out, _ = kdesk("keys", "create", "--user", "ann", "--name", "a", "--days", "7", "--json")
    made = json.loads(out)
    assert code == 0 and made["secret"].startswith("kdesk_")
    assert made["key"]["scopes"] == ["read"] and made["key"]["status"] == "active"
    _, out, _ = kdesk("keys", "create", "--user", "ann", "--name", "b", "--never", "--json")
    assert json.loads(out)["key"]["expires_at"] is None
    code, _, err = kdesk("keys", "create", "--user", "ann", "--name", "c", "--days", "0")
    assert code == 2 and "1 to 3,650 days" in err


def test_create_refuses_unknown_users_scopes_and_admin_scope_for_non_admins(kdesk):
    code, _, err = kdesk("keys", "create", "--user", "nobody", "--name", "x")
    assert code == 2 and "No user named nobody" in err
    code, _, err = kdesk("keys", "create", "--user", "ann", "--name", "x", "--scope", "write")
    assert code == 2 and "Unknown scope(s): write" in err
    code, _, err = kdesk("keys", "create", "--user", "ann", "--name", "x", "--scope", "admin")
    assert code == 2 and "no admin scope" in err
    assert common.open_desk().api_keys.keys() == []
    code, _, _ = kdesk("keys", "create", "--user", "root", "--name", "x", "--scope", "admin")
    assert code == 0 and common.open_desk().api_keys.keys("root")[0].scopes == ("admin",)


def test_list_one_users_keys_as_json(kdesk):
    kdesk("keys", "create", "--user", "ann", "--name", "ann's")
    kdesk("keys", "create", "--user", "root", "--name", "root's")
    _, out, _ = kdesk("keys", "list", "--user", "ann", "--json")
    [key] = json.loads(out)["keys"]
    assert (key["user"], key["name"], key["status"], key["last_used_at"]) == (
        "ann", "ann's", "active", None
    )  # fmt: skip
    assert "secret" not in json.dumps(key) and "hash" not in json.dumps(key)


def test_revoke_as_the_operator_or_as_a_user(kdesk):
    _, out, _ = kdesk("keys", "create", "--user", "ann", "--name", "bot", "--json")
    made = json.loads(out)
    key_id = made["key"]["key_id"]

    _, out, _ = kdesk("keys", "create", "--user", "root", "--name", "mine", "--json")
    root_key = json.loads(out)["key"]["key_id"]
    code, _, err = kdesk("keys", "revoke", root_key, "--as", "ann")
    assert code == 2 and f"No API key with id {root_key}" in err, "not ann's: not found to her"
    assert common.open_desk().api_keys.key(root_key).revoked_at is None

    code, out, _ = kdesk("keys", "revoke", key_id, "--as", "root")
    assert code == 0 and f"Revoked {key_id}" in out
    assert common.open_desk().api_keys.key(key_id).revoked_by == "root"
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        common.open_desk().api_keys.authenticate(made["secret"])

    code, _, _ = kdesk("keys", "revoke", root_key)
    assert code == 0 and common.open_desk().api_keys.key(root_key).revoked_by.startswith("os:")
    _, out, _ = kdesk("keys", "list", "--json")
    assert {k["status"] for k in json.loads(out)["keys"]} == {"revoked"}
    code, _, err = kdesk("keys", "revoke", "nosuchkey")
    assert code == 2 and "No API key with id nosuchkey" in err
