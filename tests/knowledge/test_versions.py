"""Document versions: the chain rules, answers from the current version only (unless the
question or the filter asks for an earlier one), the proposal on a title match, what changed."""

from __future__ import annotations

import pytest

from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.search.changes import section_changes
from knowledge.search.filters import SearchFilter, document_choices
from knowledge.search.versions import asks_for_earlier, title_key
from tests.conftest import ScriptedChatModel
from tests.pages.support import grounded_reply
from tests.pdfs import make_pdf

QUESTION = "How many days of paid annual leave do employees receive?"


def leave_policy(days: int, year: int, extra: str = "") -> bytes:
    return make_pdf(
        [
            f"Annual Leave\n\nEmployees receive {days} days of paid annual leave each year. "
            "Leave requests go to the line manager two weeks ahead.",
            "Sick Leave\n\nA medical certificate is needed after three days of absence. " + extra,
        ],
        title=f"Leave Policy {year}",
    )


def ingest(desk, name: str, data: bytes, supersedes: str | None = None):
    [report] = desk.ingest([Upload(name, data, supersedes=supersedes)], "HR")
    assert report.status in ("added", "replaced", "unchanged"), report
    return report


@pytest.fixture
def versions(desk):
    """leave-2024.pdf (25 days), superseded by leave-2025.pdf (30 days), plus an unrelated
    document; the model quotes the best source sentence with its citation."""
    desk._model = ScriptedChatModel(grounded_reply)
    old = ingest(desk, "leave-2024.pdf", leave_policy(25, 2024))
    new = ingest(desk, "leave-2025.pdf", leave_policy(30, 2025), supersedes=old.doc_id)
    other = make_pdf(["Expenses\n\nClaims are paid within 30 days with a receipt."])
    ingest(desk, "expenses.pdf", other)
    return desk, old.doc_id, new.doc_id


def cited_files(desk, question: str, **kwargs) -> set[str]:
    stream = desk.ask(question, ["HR"], **kwargs)
    list(stream)
    return {c.chunk.file_name for c in stream.answer.citations}


# Chain rules -------------------------------------------------------------------------------


def test_a_chain_runs_from_the_first_version_to_the_current_one(versions):
    desk, old, new = versions
    third = ingest(desk, "leave-2026.pdf", leave_policy(32, 2026), supersedes=new).doc_id
    chain = [d.doc_id for d in desk.versions.chain(old)]
    assert chain == [old, new, third] == [d.doc_id for d in desk.versions.chain(third)]
    assert set(desk.versions.superseded(["HR"])) == {old, new}
    assert third in {d.doc_id for d in desk.versions.current(["HR"])}


def test_chain_rules_refuse_with_clear_errors_and_change_nothing(versions):
    desk, old, new = versions
    other = desk.versions.resolve("HR", "expenses.pdf").doc_id
    with pytest.raises(KdeskError, match="cannot supersede itself"):
        desk.versions.supersede(new, new)
    with pytest.raises(KdeskError, match="earlier version of"):
        desk.versions.supersede(old, new)  # a cycle
    with pytest.raises(KdeskError, match="already superseded by leave-2025.pdf"):
        desk.versions.supersede(other, old)
    elsewhere = desk.ingest([Upload("leave.pdf", leave_policy(20, 2023))], "Finance")[0].doc_id
    with pytest.raises(KdeskError, match="different collections"):
        desk.versions.supersede(elsewhere, new)
    with pytest.raises(NotFoundError):
        desk.versions.resolve("HR", "missing.pdf")
    assert [d.doc_id for d in desk.versions.chain(new)] == [old, new]
    assert desk.store.document(other).supersedes is None


def test_clearing_a_link_makes_the_earlier_version_current_again(versions):
    desk, old, new = versions
    before = desk.store.revision("HR")
    desk.versions.clear(new)
    assert desk.versions.superseded(["HR"]) == {}
    assert desk.store.revision("HR") == before + 1, "cached answers of the collection go stale"
    assert desk.versions.chain(old)[-1].doc_id == old
    desk.versions.supersede(new, old)
    assert desk.store.revision("HR") == before + 2


def test_deleting_a_middle_version_keeps_the_chain(versions):
    desk, old, new = versions
    third = ingest(desk, "leave-2026.pdf", leave_policy(32, 2026), supersedes=new).doc_id
    desk.store.delete_document(new)
    assert [d.doc_id for d in desk.versions.chain(third)] == [old, third]


def test_replacing_a_file_in_place_keeps_its_link(versions):
    desk, old, new = versions
    report = ingest(desk, "leave-2025.pdf", leave_policy(31, 2025, "Updated."))
    assert report.status == "replaced" and report.doc_id == new
    assert desk.store.document(new).supersedes == old
    assert report.supersedes == old


# Retrieval ---------------------------------------------------------------------------------


def test_a_superseded_version_is_not_cited_the_current_one_is(versions):
    desk, _, _ = versions
    assert cited_files(desk, QUESTION) == {"leave-2025.pdf"}
    hits = desk.search(QUESTION, ["HR"], 10)
    assert hits and all(h.chunk.file_name != "leave-2024.pdf" for h in hits)


def test_asking_for_the_earlier_version_brings_it_back(versions):
    desk, _, _ = versions
    files = {h.chunk.file_name for h in desk.search(f"{QUESTION[:-1]} in 2024?", ["HR"], 10)}
    assert "leave-2024.pdf" in files
    asked = "How many days of paid annual leave did the previous policy give employees?"
    assert "leave-2024.pdf" in {h.chunk.file_name for h in desk.search(asked, ["HR"], 10)}


def test_narrowing_down_to_the_earlier_version_or_including_earlier_ones(versions):
    desk, old, _ = versions
    assert cited_files(desk, QUESTION, where=SearchFilter((old,))) == {"leave-2024.pdf"}
    assert cited_files(desk, QUESTION, where=SearchFilter(("leave-2024.pdf",))) == {
        "leave-2024.pdf"
    }
    everything = desk.search(QUESTION, ["HR"], 10, where=SearchFilter(include_earlier=True))
    assert "leave-2024.pdf" in {h.chunk.file_name for h in everything}
    tagged = desk.search(QUESTION, ["HR"], 10, where=SearchFilter(tags=("none-such",)))
    assert tagged == []


def test_the_earlier_version_is_marked_among_the_choices(versions):
    desk, old, _ = versions
    choices = document_choices(desk.store.documents(), ["HR"])
    assert choices["HR / leave-2024.pdf (earlier version)"] == old
    assert "HR / leave-2025.pdf" in choices


@pytest.mark.parametrize(
    "question",
    [
        "What did the previous policy say about sick leave?",
        "Show me last year's handbook rules on travel",
        "In the old version, how long was parental leave?",
        "What did the 2024 version say?",
        "How much leave was there in 2023?",
    ],
)
def test_questions_that_ask_for_an_earlier_version(question):
    assert asks_for_earlier(question, {2025})


@pytest.mark.parametrize(
    "question",
    [
        "How many days of annual leave do I get?",
        "Do I need prior approval for overtime?",
        "Can I leave earlier on Fridays?",
        "What does the 2025 policy say about sick leave?",
    ],
)
def test_questions_about_the_current_version(question):
    assert not asks_for_earlier(question, {2025})


# Proposals ---------------------------------------------------------------------------------


def test_titles_match_without_years_and_version_numbers():
    assert title_key("Leave-Policy_2025 v2.pdf") == title_key("Leave Policy 2024") == "leave policy"
    assert title_key("Travel Policy (final, rev. 3)") == "travel policy"
    assert title_key("Expenses") != title_key("Leave Policy")


def test_a_matching_title_is_proposed_and_confirming_links_it(desk):
    first = ingest(desk, "leave-2024.pdf", leave_policy(25, 2024))
    assert first.proposed_supersedes is None
    second = ingest(desk, "leave-policy-new.pdf", leave_policy(30, 2025))
    assert second.proposed_supersedes == first.doc_id
    assert "looks like a new version of leave-2024.pdf" in (second.reason or "")
    assert desk.store.document(second.doc_id).supersedes is None  # only proposed
    again = ingest(desk, "leave-policy-new.pdf", leave_policy(30, 2025))
    assert again.status == "unchanged" and again.proposed_supersedes is None, "proposed once"
    late = ingest(desk, "leave-2023.pdf", leave_policy(20, 2023))
    assert late.proposed_supersedes is None, "an older year is no new version"
    desk.versions.supersede(second.doc_id, second.proposed_supersedes)
    assert desk.versions.proposal(second.doc_id) is None
    found = {h.chunk.file_name for h in desk.search(QUESTION, ["HR"], 10)}
    assert "leave-policy-new.pdf" in found and "leave-2024.pdf" not in found


def test_a_broken_rule_at_ingest_is_a_note_and_the_file_is_stored(versions):
    desk, old, new = versions
    report = ingest(desk, "leave-copy.pdf", leave_policy(28, 2025), supersedes="leave-2024.pdf")
    assert report.status == "added" and report.supersedes is None
    assert "not marked as a new version: leave-2024.pdf is already superseded by" in (
        report.reason or ""
    )
    assert desk.store.document(report.doc_id).supersedes is None
    assert [d.doc_id for d in desk.versions.chain(new)] == [old, new]


def test_an_unknown_earlier_version_stops_the_upload(desk):
    with pytest.raises(NotFoundError, match="No document 'nope.pdf'"):
        desk.submit([Upload("leave.pdf", leave_policy(25, 2024), supersedes="nope.pdf")], "HR")
    assert desk.jobs.recent() == []


# What changed ------------------------------------------------------------------------------


def test_the_diff_lists_the_changed_section(versions):
    desk, old, new = versions
    changes = desk.versions.changes(old, new)
    assert [(c.section, c.kind) for c in changes] == [("Annual Leave", "changed")]
    [change] = changes
    assert any("25 days" in line and line.startswith("- ") for line in change.diff())
    assert any("30 days" in line and line.startswith("+ ") for line in change.diff())
    assert desk.versions.changes(new, new) == []


def test_added_and_removed_sections(desk):
    def section(heading: str, topic: str) -> str:  # long enough to start its own chunk
        sentences = [f"Rule {n} about {topic} holds for each trip of group {n}." for n in range(14)]
        return f"{heading}\n\n" + " ".join(sentences)

    intro = section("Introduction", "booking")
    old_part = section("Rail Travel", "second class trains")
    new_part = section("Air Travel", "economy class flights")
    a = ingest(desk, "a.pdf", make_pdf([intro, old_part]))
    b = ingest(desk, "b.pdf", make_pdf([intro, new_part]))
    kinds = {c.section: c.kind for c in desk.versions.changes(a.doc_id, b.doc_id)}
    assert kinds == {"Air Travel": "added", "Rail Travel": "removed"}
    assert section_changes([], []) == []


# Both databases ------------------------------------------------------------------------------


def test_versions_on_sqlite_and_postgresql(database_url: str, tmp_path, embedder):
    desk = Desk(
        Settings(data_dir=tmp_path / "data", database_url=database_url, model_backend="ollama"),
        embedder=embedder,
        model=ScriptedChatModel(grounded_reply),
    )
    old = ingest(desk, "leave-2024.pdf", leave_policy(25, 2024)).doc_id
    proposed = ingest(desk, "leave-2025.pdf", leave_policy(30, 2025))
    assert proposed.proposed_supersedes == old
    new = proposed.doc_id
    desk.versions.supersede(new, old)
    third = ingest(desk, "leave-2026.pdf", leave_policy(32, 2026), supersedes=new).doc_id
    assert desk.versions.hidden(["HR"]) == {old, new}
    assert desk.versions.hidden(["HR"], "What did the 2024 policy say?") == set()
    assert cited_files(desk, QUESTION) == {"leave-2026.pdf"}
    desk.store.delete_document(new)
    assert [d.doc_id for d in desk.versions.chain(old)] == [old, third]


def test_an_ingestion_job_carries_the_earlier_version(desk):
    from tests.knowledge.test_jobs import wait_until_ended

    old = ingest(desk, "leave-2024.pdf", leave_policy(25, 2024)).doc_id
    upload = Upload("leave-2025.pdf", leave_policy(30, 2025), supersedes="leave-2024.pdf")
    [job] = desk.submit([upload], "HR", owner="ann")
    done = wait_until_ended(desk, job.job_id)
    assert done.report is not None and done.report.supersedes == old
    assert desk.store.document(done.report.doc_id).supersedes == old
    with pytest.raises(KdeskError, match="one new file only"):
        desk.submit(
            [
                Upload("a.pdf", leave_policy(31, 2026), supersedes=old),
                Upload("b.pdf", leave_policy(32, 2026), supersedes="leave-2024.pdf"),
            ],
            "HR",
        )
    desk.close()


def test_a_user_sees_and_links_versions_only_where_their_roles_allow(desk):
    from knowledge.core.errors import PermissionDeniedError

    policies = "Company policies"
    [old] = desk.ingest([Upload("leave-2024.pdf", leave_policy(25, 2024))], policies)
    [new] = desk.ingest([Upload("leave-2025.pdf", leave_policy(30, 2025))], policies)
    [memo] = desk.ingest([Upload("memo-2024.pdf", leave_policy(40, 2024))], "Legal")
    [memo2] = desk.ingest([Upload("memo-2025.pdf", leave_policy(45, 2025))], "Legal")
    desk.roles.assign("emma", ["employee"], check_admins=False)
    desk.roles.assign("max", ["manager"], check_admins=False)
    emma, manager = desk.for_user("emma"), desk.for_user("max")
    with pytest.raises(PermissionDeniedError):
        emma.versions.supersede(new.doc_id, old.doc_id)  # may read, not change
    with pytest.raises(NotFoundError):
        emma.versions.chain(memo.doc_id)  # another collection is not even named
    with pytest.raises(NotFoundError):
        emma.versions.changes(memo.doc_id, memo2.doc_id)
    manager.versions.supersede(new.doc_id, old.doc_id)
    assert [d.file_name for d in emma.versions.chain(new.doc_id)] == [
        "leave-2024.pdf",
        "leave-2025.pdf",
    ]
    assert {h.chunk.file_name for h in emma.search(QUESTION, None, 10)} == {"leave-2025.pdf"}
    earlier = emma.search(QUESTION, None, 10, where=SearchFilter(include_earlier=True))
    assert {h.chunk.collection for h in earlier} == {policies}, "never widened to Legal"
    [event] = [e for e in desk.audit.events() if e.action == "document_versioned"]
    assert event.actor == "max"
