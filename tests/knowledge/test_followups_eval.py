"""The follow-up measurement: the set loads, each way of making the query is scored on the
follow-up turn, and the long-conversation prompt sizes stay under each window."""

from __future__ import annotations

from pathlib import Path

from knowledge.evaluation.followups import followup_hits, load_followups, prompt_sizes
from knowledge.evaluation.retrieval import Hit

SET = Path(__file__).resolve().parents[2] / "docs" / "eval" / "followups.jsonl"


def test_the_set_has_30_follow_ups_over_demo_and_policy_documents():
    items = load_followups(SET)
    assert len(items) >= 30 and {i.set for i in items} == {"demo", "policies"}
    assert all(i.turns and i.follow_up and i.evidence[0].page for i in items)


def test_the_heuristic_is_scored_on_the_query_it_makes():
    items = [i for i in load_followups(SET) if i.id == "followup-001"]  # "And part-time staff?"

    def search(which: str, query: str) -> list[Hit]:  # finds the page only with the topic
        hit = "leave" in query
        return [Hit("leave-policy.pdf" if hit else "other.pdf", 1, 1, 100, 0.7)]

    report = followup_hits(items, search)
    assert report["none"]["all"]["page_hit@1"] == 0.0  # type: ignore[index]
    assert report["heuristic"]["all"]["page_hit@1"] == 1.0  # type: ignore[index]


def test_prompt_sizes_of_a_30_turn_conversation_fit_each_window():
    for row in prompt_sizes(30, (2048, 4096)):
        assert row["tokens_prompt"] <= row["window"] - row["answer_budget"]
        assert row["tokens_prompt"] < row["tokens_all_verbatim"]
