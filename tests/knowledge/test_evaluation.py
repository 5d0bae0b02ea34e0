"""Evaluation metrics on hand-made cases."""

import pytest

from knowledge.core.errors import KdeskError
from knowledge.evaluation.retrieval import Evidence, Hit, Question, score_question, separation


def hit(doc: str, page: int, page_end: int | None = None) -> Hit:
    return Hit(doc, page, page_end or page, 100, 0.5)


def test_page_hit_needs_the_range_to_cover_an_evidence_page():
    q = Question("q1", "?", (Evidence("a.pdf", 3),))
    row = score_question(q, [hit("a.pdf", 1), hit("b.pdf", 3), hit("a.pdf", 2, 3)])
    assert row["page@1"] is False and row["page@3"] is True
    assert row["doc@1"] is True
    assert row["rr"] == pytest.approx(1 / 3)


def test_doc_only_questions_count_for_doc_hit_and_mrr():
    q = Question("q2", "?", (Evidence("a.pdf", None), Evidence("c.pdf", None)))
    row = score_question(q, [hit("b.pdf", 1), hit("c.pdf", 9)])
    assert row["page@5"] is None
    assert row["doc@1"] is False and row["doc@3"] is True
    assert row["rr"] == 0.5


def test_no_relevant_result_scores_zero():
    q = Question("q3", "?", (Evidence("a.pdf", 1),))
    assert score_question(q, [hit("b.pdf", 1)])["rr"] == 0.0


def test_separation_finds_the_threshold_between_two_groups():
    result = separation([0.6, 0.7, 0.8, 0.55], [0.1, 0.2, 0.3, 0.58])
    assert result["auc"] == pytest.approx(15 / 16)
    assert 0.3 < result["threshold"] <= 0.6
    assert result["false_answer_rate"] <= 0.25


def test_separation_needs_both_groups():
    with pytest.raises(KdeskError):
        separation([0.5], [])
