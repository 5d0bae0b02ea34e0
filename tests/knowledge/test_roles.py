"""Roles: templates, storage, validation, collection patterns, access as the union of roles, and
the guard that always keeps someone able to manage roles."""

from __future__ import annotations

from dataclasses import replace

import pytest

from knowledge.access.ratelimit import RateLimit
from knowledge.access.rolebook import RoleBook
from knowledge.access.roles import (
    PAGES,
    Access,
    Role,
    matches,
    role_config,
    role_from_config,
    templates,
)
from knowledge.assistant.personas import BannedPhrase, Persona
from knowledge.core.errors import KdeskError, NotFoundError
from tests.db import migrated_engine

TEMPLATE_NAMES = {"employee", "support lead", "manager", "admin", "tech support", "sales", "legal"}


@pytest.fixture
def book(database_url: str) -> RoleBook:
    return RoleBook(migrated_engine(database_url))  # a SQLite file, then PostgreSQL


def test_templates_are_written_once_on_first_start(book: RoleBook):
    assert set(book.names()) == TEMPLATE_NAMES
    book.delete("sales", "ann")
    again = RoleBook(book.engine)
    assert "sales" not in again.names(), "a deleted template does not come back"


def test_template_personas():
    by_name = {role.name: role for role in templates()}
    assert by_name["admin"].pages == PAGES and by_name["admin"].collections == ("*",)
    assert by_name["tech support"].persona.answer_policy == "must_cite"
    assert by_name["sales"].persona.answer_policy == "general_knowledge"
    assert any("refund" in b.phrase for b in by_name["sales"].persona.banned_phrases)
    assert by_name["legal"].persona.answer_policy == "quote_only"
    assert by_name["employee"].pages == ("chat",)


def test_a_role_survives_its_round_trip_through_json(book: RoleBook):
    role = Role(
        "field sales",
        "Sales on the road",
        ("chat", "contracts"),
        ("Sales*",),
        ("Sales EMEA",),
        Persona(
            "field sales",
            "Be brief.",
            0.4,
            300,
            "ollama:qwen3:1.7b",
            "general_knowledge",
            (BannedPhrase("full refund", "refuse"),),
        ),
        RateLimit(10, 5000, 300),
    )
    assert role_from_config(role_config(role)) == role
    book.save(role, "ann")
    assert book.role("field sales") == role
    assert book.audit.events()[0].action == "role_saved"


def test_validation_tidies_names_and_refuses_bad_values(book: RoleBook):
    saved = book.save(Role("  Night  Shift ", pages=("chat",), collections=(" A ", "A")), "ann")
    assert saved.name == "night shift" and saved.collections == ("A",)
    assert saved.persona.name == "night shift"
    with pytest.raises(KdeskError, match="Unknown page"):
        book.save(Role("x", pages=("chat", "secrets")), "ann")
    with pytest.raises(KdeskError, match="temperature"):
        book.save(Role("x", persona=Persona(temperature=3)), "ann")
    with pytest.raises(KdeskError, match="role name"):
        book.save(Role("!"), "ann")
    with pytest.raises(NotFoundError):
        book.role("nobody")


def test_collection_patterns():
    assert matches("Sales EMEA", ["Sales*"]) and not matches("sales", ["Sales*"])
    assert matches("anything at all", ["*"])
    assert not matches("HR", [])


def test_access_is_the_union_of_the_roles(book: RoleBook):
    book.assign("ann", ["employee", "sales"])
    access = book.access("ann")
    assert access.role_names == ("employee", "sales")
    assert access.pages == {"chat"}
    names = ["Company policies", "Sales EMEA", "Contracts", "Support tickets"]
    assert access.searchable(names) == ["Company policies", "Sales EMEA"]
    assert access.uploadable(names) == []
    assert access.role("sales") and access.role("legal") is None
    assert access.rate_limit == RateLimit(30, 60_000, 600)


def test_a_user_without_roles_has_no_access(book: RoleBook):
    access = book.access("nobody")
    assert access == Access("nobody") and not access.pages
    assert access.searchable(["Company policies"]) == [] and access.role(None) is None


def test_role_changes_apply_at_once(book: RoleBook):
    book.assign("ann", ["employee"])
    assert not book.access("ann").may_search("Support tickets")
    employee = book.role("employee")
    book.save(replace(employee, collections=(*employee.collections, "Support*")), "admin")
    assert book.access("ann").may_search("Support tickets")


def test_deleting_a_role_removes_its_assignments(book: RoleBook):
    book.assign("ann", ["sales", "employee"])
    book.delete("sales", "admin")
    assert book.access("ann").role_names == ("employee",)
    assert book.members("sales") == []


def test_someone_always_keeps_the_roles_page(book: RoleBook):
    book.assign("root", ["admin"])
    with pytest.raises(KdeskError, match="nobody could manage roles"):
        book.delete("admin", "root")
    with pytest.raises(KdeskError, match="nobody could manage roles"):
        book.assign("root", ["employee"])
    admin = book.role("admin")
    with pytest.raises(KdeskError, match="nobody could manage roles"):
        book.save(replace(admin, pages=("chat",)), "root")
    book.assign("second", ["admin"])
    book.assign("root", ["employee"])  # fine now: "second" can still manage roles


def test_unknown_roles_are_refused(book: RoleBook):
    with pytest.raises(KdeskError, match="No role named wizard"):
        book.assign("ann", ["wizard"])
