"""Duplicates (issue 14): a stored document's content under another file name is reported as
a duplicate and not indexed twice; search never shows two copies of one passage."""

from __future__ import annotations

from knowledge.desk.ingestion import Upload
from tests.pdfs import make_pdf

TOPICS = ["annual leave", "sick leave", "parental leave", "remote work", "expense claims"]
TOPICS += ["business travel", "laptops and phones", "training budgets"]


def policy_page(n: int, topic: str) -> str:
    rules = " ".join(
        f"Rule {n}.{i}: the {topic} policy requires form {n * 10 + i} to be approved by the "
        f"manager within {i + 2} working days of the request."
        for i in range(8)
    )
    return f"{topic.title()}\n\n{rules}"


HANDBOOK = [policy_page(n, t) for n, t in enumerate(TOPICS)]
ORIGINAL = "Rule 3.4: the remote work policy requires form 34"
CHANGED = "Rule 3.4: remote staff must first email the IT desk using form 99"
EDITED = [page.replace(ORIGINAL, CHANGED) for page in HANDBOOK]


def test_search_shows_one_copy_of_documents_stored_twice(desk, monkeypatch):
    # two copies in one collection (stored before duplicates were checked at ingest)
    for name in ("handbook.pdf", "copy.pdf"):
        [report] = desk.ingest([Upload(name, make_pdf(HANDBOOK))], "HR")
        assert report.status == "added"
    question = "How many working days does the manager have to approve parental leave?"
    vector = desk.embedder.embed_query(question)
    raw = desk.store.index.query("HR", vector, 40, None)
    raw_texts = [c.text for c in desk.store.chunks([i for i, _ in raw]).values()]
    assert len(raw_texts) > len(set(raw_texts))  # the index holds both copies
    hits = desk.search(question, ["HR"], 10)
    texts = [h.chunk.text for h in hits]
    assert len(hits) >= 5 and len(texts) == len(set(texts))
