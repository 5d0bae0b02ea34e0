"""Local accounts (argon2 hashes, lock-out, one-time passwords, bootstrap) and the mapping of
OIDC identities to roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from knowledge.access.accounts import AccountBook, SignInError, UserRow, one_time_password
from knowledge.access.audit import AuditLog, AuditQuery
from knowledge.access.oidc import (
    ClaimMapping,
    meant_for,
    oidc_user_name,
    parse_claim_mapping,
    roles_from_claims,
)
from knowledge.access.rolebook import RoleBook
from knowledge.core.errors import KdeskError, SettingsError
from tests.db import migrated_engine

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(database_url: str, clock: Clock) -> AccountBook:
    engine = migrated_engine(database_url)  # a SQLite file, then PostgreSQL
    audit = AuditLog(engine)
    fast = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    return AccountBook(
        engine, RoleBook(engine, audit), audit, lockout_attempts=3, hasher=fast, clock=clock
    )


def actions(book: AccountBook) -> list[str]:
    return [e.action for e in reversed(book.audit.events())]


def stored_hash(book: AccountBook, name: str) -> str:
    with book.engine.connect() as connection:
        return connection.execute(select(UserRow.password_hash).where(UserRow.name == name)).one()[
            0
        ]


def test_passwords_are_stored_as_argon2id_hashes_only(book: AccountBook):
    book.add("Ann", ["employee"], "admin", password=PASSWORD)
    hashed = stored_hash(book, "ann")
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    account = book.authenticate("ANN", PASSWORD)
    assert account.name == "ann" and account.roles == ("employee",)
    assert not account.must_change_password
    assert "sign_in" in actions(book) and PASSWORD not in str(book.audit.events())


def test_wrong_password_and_unknown_user_get_the_same_message(book: AccountBook):
    book.add("ann", ["employee"], "admin", password=PASSWORD)
    with pytest.raises(SignInError) as wrong:
        book.authenticate("ann", "not the password")
    with pytest.raises(SignInError) as unknown:
        book.authenticate("nobody", PASSWORD)
    assert str(wrong.value) == str(unknown.value) == "Wrong user name or password."
    failed = book.audit.events(AuditQuery(actions=("sign_in_failed",)))
    assert {e.target for e in failed} == {"ann", "nobody"}


def test_lock_out_after_repeated_failures_then_unlock_after_the_period(book, clock):
    book.add("ann", ["employee"], "admin", password=PASSWORD)
    for _ in range(3):
        with pytest.raises(SignInError, match="Wrong"):
            book.authenticate("ann", "guess")
    with pytest.raises(SignInError, match="locked for 15 more minute"):
        book.authenticate("ann", PASSWORD)  # even the right password, while locked
    assert "account_locked" in actions(book)
    clock.now += timedelta(minutes=16)
    assert book.authenticate("ann", PASSWORD).name == "ann"


def test_a_success_resets_the_failure_count(book: AccountBook):
    book.add("ann", ["employee"], "admin", password=PASSWORD)
    for _ in range(2):
        with pytest.raises(SignInError):
            book.authenticate("ann", "guess")
    book.authenticate("ann", PASSWORD)
    for _ in range(2):
        with pytest.raises(SignInError, match="Wrong"):
            book.authenticate("ann", "guess")
    book.authenticate("ann", PASSWORD)


def test_admin_unlock(book: AccountBook):
    book.add("ann", ["employee"], "admin", password=PASSWORD)
    for _ in range(3):
        with pytest.raises(SignInError):
            book.authenticate("ann", "guess")
    book.unlock("ann", "admin")
    assert book.authenticate("ann", PASSWORD)


def test_one_time_password_must_be_changed(book: AccountBook):
    generated = book.add("bob", ["employee"], "admin")
    assert generated and len(generated) == 19
    account = book.authenticate("bob", generated)
    assert account.must_change_password
    with pytest.raises(KdeskError, match="at least 12"):
        book.change_password("bob", generated, "short")
    with pytest.raises(KdeskError, match="differ"):
        book.change_password("bob", generated, generated)
    book.change_password("bob", generated, PASSWORD)
    assert not book.authenticate("bob", PASSWORD).must_change_password
    with pytest.raises(SignInError):
        book.authenticate("bob", generated)
    assert "password_changed" in actions(book)


def test_changing_a_password_needs_the_old_one(book: AccountBook):
    book.add("ann", ["employee"], "admin", password=PASSWORD)
    with pytest.raises(SignInError):
        book.change_password("ann", "wrong old password", "a brand new password")


def test_reset_gives_a_new_one_time_password(book: AccountBook):
    book.add("ann", ["employee"], "admin", password=PASSWORD)
    fresh = book.reset_password("ann", "admin")
    assert book.authenticate("ann", fresh).must_change_password


def test_bootstrap_creates_the_first_admin_once(book: AccountBook):
    first = book.bootstrap()
    assert first is not None
    assert book.bootstrap() is None, "the password is given out only once"
    admin = book.authenticate("admin", first)
    assert admin.roles == ("admin",) and admin.must_change_password


def test_no_bootstrap_when_accounts_exist(book: AccountBook):
    book.add("ann", ["admin"], "ops", password=PASSWORD)
    assert book.bootstrap() is None


def test_one_time_passwords_differ_and_are_readable():
    passwords = {one_time_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(set(p) <= set("abcdefghjkmnpqrstuvwxyz23456789-") for p in passwords)


def test_names_and_duplicates(book: AccountBook):
    book.add("ann", ["employee"], "admin", password=PASSWORD)
    with pytest.raises(KdeskError, match="already"):
        book.add("ANN", ["employee"], "admin", password=PASSWORD)
    with pytest.raises(KdeskError, match="no spaces"):
        book.add("ann smith", ["employee"], "admin", password=PASSWORD)
    with pytest.raises(KdeskError, match="No role named"):
        book.add("carl", ["wizard"], "admin", password=PASSWORD)


def test_removing_a_user_removes_their_roles(book: AccountBook):
    book.add("root", ["admin"], "ops", password=PASSWORD)
    book.add("ann", ["sales"], "root", password=PASSWORD)
    book.remove("ann", "root")
    assert book.account("ann") is None and book.roles.access("ann").roles == ()
    with pytest.raises(KdeskError, match="nobody could manage roles"):
        book.remove("root", "root")


# OIDC --------------------------------------------------------------------------------------------

MAPPING = ClaimMapping(
    claims={"kdesk-admins": ("admin",), "sales-team": ("sales",)},
    emails={"ceo@example.com": ("manager",), "*@example.com": ("employee",)},
    default=(),
)


def test_roles_from_the_groups_claim_and_the_email():
    claims = {"email": "jo@example.com", "email_verified": True, "groups": ["Sales-Team", "x"]}
    assert roles_from_claims(claims, MAPPING) == ["sales", "employee"]
    ceo = {"email": "CEO@example.com", "groups": "kdesk-admins"}
    assert roles_from_claims(ceo, MAPPING) == ["admin", "manager", "employee"]


def test_unverified_emails_and_strangers_get_nothing_but_the_default():
    unverified = {"email": "ceo@example.com", "email_verified": False}
    assert roles_from_claims(unverified, MAPPING) == []
    stranger = {"email": "x@elsewhere.org", "groups": ["other"]}
    assert roles_from_claims(stranger, MAPPING) == []
    with_default = ClaimMapping(default=("employee",))
    assert roles_from_claims(stranger, with_default) == ["employee"]


def test_roles_claim_may_be_nested():
    claims = {"realm_access": {"roles": ["kdesk-admins"]}}
    assert roles_from_claims(claims, MAPPING, "realm_access.roles") == ["admin"]


def test_mapping_from_json():
    mapping = parse_claim_mapping(
        '{"claims": {"Legal": ["legal"]}, "emails": {"*@x.org": "employee"}, "default": []}'
    )
    assert mapping.claims == {"legal": ("legal",)} and mapping.emails == {"*@x.org": ("employee",)}
    assert parse_claim_mapping("") == ClaimMapping()
    with pytest.raises(SettingsError, match="KDESK_OIDC_ROLE_MAPPING"):
        parse_claim_mapping('{"groups": {}}')
    with pytest.raises(SettingsError):
        parse_claim_mapping("not json")


def test_oidc_user_name():
    assert oidc_user_name({"email": "Jo@Example.com", "sub": "123"}) == "jo@example.com"
    assert oidc_user_name({"email": "jo@example.com", "email_verified": False, "sub": "1"}) == "1"
    assert oidc_user_name({}) == ""


def test_oidc_sign_in_creates_the_user_and_refreshes_claim_roles(book: AccountBook):
    claims = {"email": "jo@example.com", "groups": ["sales-team"], "is_logged_in": True}
    account = book.sign_in_oidc(claims, MAPPING, "groups")
    assert account.auth == "oidc" and set(account.roles) == {"sales", "employee"}
    book.set_roles("jo@example.com", ["legal"], "admin")  # an admin adds a role
    moved = {"email": "jo@example.com", "groups": []}
    account = book.sign_in_oidc(moved, MAPPING, "groups")
    assert set(account.roles) == {"employee", "legal"}, "claim roles refreshed, admin roles kept"
    with pytest.raises(SignInError):
        book.authenticate("jo@example.com", "")  # no password sign-in for OIDC users


def test_oidc_cannot_take_over_a_local_account(book: AccountBook):
    book.add("jo@example.com", ["employee"], "admin", password=PASSWORD)
    with pytest.raises(SignInError, match="local account"):
        book.sign_in_oidc({"email": "jo@example.com"}, MAPPING, "groups")


def test_oidc_refuses_an_unverified_email_and_audits_it(book: AccountBook):
    claims = {"sub": "m-1", "email": "CEO@example.com", "email_verified": False}
    with pytest.raises(SignInError, match="not verified your e-mail"):
        book.sign_in_oidc({**claims, "groups": ["kdesk-admins"]}, MAPPING, "groups")
    assert book.account("ceo@example.com") is None and book.account("m-1") is None
    [failed] = book.audit.events(AuditQuery(actions=("sign_in_failed",)))
    assert (failed.actor, failed.outcome) == ("ceo@example.com", "denied")
    assert failed.detail["reason"] == "email_unverified" and failed.detail["sub"] == "m-1"
    assert "sign_in" not in actions(book)
    # a provider that does not send email_verified at all is trusted with the address
    assert book.sign_in_oidc({"email": "jo@example.com"}, MAPPING, "groups").name == (
        "jo@example.com"
    )


def test_the_id_token_must_name_this_client_in_its_audience():
    assert meant_for({"aud": "kdesk"}, "kdesk") and meant_for({"aud": ["x", "kdesk"]}, "kdesk")
    assert not meant_for({"aud": "another-client", "azp": "kdesk"}, "kdesk")
    assert not meant_for({"aud": ["another-client"]}, "kdesk")
    assert meant_for({"email": "jo@example.com"}, "kdesk"), "no token claims: nothing to judge"


def test_oidc_refuses_a_token_for_another_client_and_audits_it(book: AccountBook):
    claims = {"sub": "o-1", "email": "otis@example.com", "aud": "other", "azp": "kdesk"}
    with pytest.raises(SignInError, match="meant for another application"):
        book.sign_in_oidc(claims, MAPPING, "groups", client_id="kdesk")
    assert book.account("otis@example.com") is None
    [failed] = book.audit.events(AuditQuery(actions=("sign_in_failed",)))
    assert failed.actor == "otis@example.com" and failed.detail["reason"] == "audience"
    ours = {**claims, "aud": ["kdesk"]}
    assert book.sign_in_oidc(ours, MAPPING, "groups", client_id="kdesk").name == "otis@example.com"
