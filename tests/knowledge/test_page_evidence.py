"""Page evidence from reference answers: figures normalised, pages proposed, doubt dropped."""

from __future__ import annotations

from pathlib import Path

from knowledge.evaluation.page_evidence import build, figures, propose
from tests.pdfs import make_pdf


def test_figures_are_normalised_and_years_dropped() -> None:
    text = "Net sales were $82,959 million in 2022, (1,234) lost, margin 15.7 %, 36.1 billion."
    assert figures(text) == {"82959", "1234", "15.7%", "36.1"}
    assert "19" not in figures("a 19% rate", distinctive_only=True)
    assert figures("Q3 10-Q filed") == set()


def test_the_pages_holding_the_answer_figures_are_proposed() -> None:
    pages = {
        ("a.pdf", 1): {"100", "2024"},
        ("a.pdf", 7): {"82959", "14316", "500"},
        ("b.pdf", 3): {"15.7%"},
    }
    proposal = propose("Sales $82,959 million, expenses $14,316 million, tax 15.7%.", pages)
    assert proposal.pages == (("a.pdf", 7), ("b.pdf", 3))
    assert proposal.confident


def test_answers_whose_figures_are_not_found_are_not_confident() -> None:
    pages = {("a.pdf", 1): {"82959"}}
    proposal = propose("Sales $82,959 million, $14,316 million and $7,777 million.", pages)
    assert proposal.coverage < 0.6 and not proposal.confident
    assert not propose("It grew by 19%.", pages).confident  # no distinctive figure at all


def test_build_keeps_only_confident_questions_with_their_pages(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    pages = ["Cover page of the report.", "Total net sales 82,959 and 117,154 this year."]
    (docs / "q.pdf").write_bytes(make_pdf(pages))
    evidence = [{"doc": "q.pdf", "page": None, "text": None}]
    questions = [
        {
            "id": "1",
            "question": "Sales?",
            "answer": "$82,959 and $117,154 million",
            "evidence": evidence,
        },
        {"id": "2", "question": "Why?", "answer": "Because of demand.", "evidence": evidence},
    ]
    [kept] = build(tmp_path, questions)
    assert kept["id"] == "1"
    assert kept["evidence"] == [{"doc": "q.pdf", "page": 2, "text": None}]
