"""Usage analytics within a viewer's permissions: only events that searched allowed collections,
only citations of allowed collections, never-cited documents of allowed collections only."""

from __future__ import annotations

from knowledge.usage.analytics import build_dashboard, summary
from knowledge.usage.events import CitedDocument, UsageEvent, UsageFilter, UsageLog
from tests.db import migrated_engine

HR_DOC = CitedDocument("d-hr", "leave.pdf", "HR")
LEGAL_DOC = CitedDocument("d-legal", "nda.pdf", "Legal")


def event(question: str, collections: tuple[str, ...], cited: tuple[CitedDocument, ...]):
    return UsageEvent(
        question=question,
        user="u",
        role="employee",
        channel="chat",
        model="m",
        abstained=not cited,
        total_ms=1000.0,
        collections=collections,
        cited=cited,
    )


def make_log(url: str) -> UsageLog:
    log = UsageLog(migrated_engine(url))
    log.record_many(
        [
            event("How much leave?", ("HR",), (HR_DOC,)),
            event("Who signed the NDA with Initech?", ("Legal",), (LEGAL_DOC,)),
            event("Leave or NDA?", ("HR", "Legal"), (HR_DOC, LEGAL_DOC)),
            event("Nothing searched", (), ()),
        ]
    )
    return log


def test_events_and_citations_are_limited_to_the_viewers_collections(database_url: str):
    log = make_log(database_url)
    everything = log.scoped(UsageFilter(), None)
    assert summary(log.engine, everything)["questions"] == 4

    hr = log.scoped(UsageFilter(), ["HR"])
    assert summary(log.engine, hr)["questions"] == 1
    csv = log.export_csv_bytes(hr).decode()
    assert "How much leave?" in csv
    assert "NDA" not in csv and "Initech" not in csv and "Nothing searched" not in csv

    board = build_dashboard(log, hr)
    assert board.most_cited["document"].tolist() == ["leave.pdf"]
    assert "nda.pdf" not in board.never_cited.get("document", []).tolist()
    assert all("NDA" not in q for q in board.top_questions["question"])


def test_role_breakdown_keeps_the_scope(database_url: str):
    log = make_log(database_url)
    figures = summary(log.engine, log.scoped(UsageFilter(), ["Legal"]))
    assert figures["by_role"]["employee"]["questions"] == 1  # type: ignore[index]
