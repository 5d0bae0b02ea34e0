"""Clause extraction, pure parts: segmentation, targeted extractors, values, scoring, model file,
and extraction from a generated contract PDF with the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.clauses.extract import CATEGORIES, extract_clauses
from ingest.clauses.model import ClauseModel
from ingest.clauses.rules import (
    agreement_date_span,
    effective_date_spans,
    looks_like_contract,
    party_spans,
)
from ingest.clauses.scoring import Span, is_match, lcs_length, score, score_group
from ingest.clauses.segments import segment_pages, segment_text, word_tokens
from ingest.clauses.values import (
    duration_months,
    iso_date,
    jurisdiction,
    money,
    normalised_value,
    party_name,
)
from ingest.document import Page
from ingest.pdf import parse_pdf
from tests.contract_samples import GOVERNING_LAW_PAGE, RENEWAL_PAGE, contract_pdf, supply_agreement

MODEL = Path(__file__).resolve().parents[2] / "knowledge" / "contracts" / "clauses.npz"

# --- segmentation ---------------------------------------------------------------------------


def test_segments_are_exact_slices_with_pages_and_heading_context():
    pages = [Page(1, "1. Term\nThis Agreement lasts two years. It renews\nautomatically."),
             Page(2, "GOVERNING LAW\nThis Agreement is governed by the laws of Ohio.")]  # fmt: skip
    text, segments = segment_pages(pages)
    assert [s.text for s in segments] == [
        "This Agreement lasts two years.",
        "It renews automatically.",
        "This Agreement is governed by the laws of Ohio.",
    ]
    assert [s.page for s in segments] == [1, 1, 2]
    assert [s.context for s in segments] == ["1. term", "1. term", "governing law"]
    for s in segments:
        assert " ".join(text[s.start : s.end].split()) == s.text


def test_numbered_items_and_abbreviations():
    segments = segment_text(
        "Acme Inc. shall pay the fees. The fees are due monthly:\n"
        "(a) the base fee; and\n(b) the usage fee."
    )
    assert [s.text for s in segments] == [
        "Acme Inc. shall pay the fees.",
        "The fees are due monthly:",
        "(a) the base fee; and",
        "(b) the usage fee.",
    ]


def test_very_long_sentences_are_cut_at_semicolons():
    clause = "the Supplier shall deliver the goods to the agreed place in good order and condition"
    sentence = "; ".join([clause] * 8) + "."
    segments = segment_text(sentence)
    assert len(segments) == 8
    assert all(len(word_tokens(s.text)) < 20 for s in segments)


def test_word_tokens_ignore_case_and_punctuation():
    assert word_tokens("Twin Cities Power Holdings, LLC (“Company”)") == [
        "twin", "cities", "power", "holdings", "llc", "company",
    ]  # fmt: skip


# --- targeted extractors --------------------------------------------------------------------

PREAMBLE = (
    'This Reseller Agreement is entered as of June 21, 1999 ("Effective Date") by and between '
    'PivX Corporation, a California corporation ("PivX"), and Detto Technologies, a Washington '
    'corporation, having its principal place of business at 14320 NE 21st Street ("Detto").\n'
    "1. Grant\nPivX grants Detto the right to resell the products."
)


def test_parties_come_from_the_preamble_with_their_aliases():
    segments = segment_text(PREAMBLE)
    parties = [PREAMBLE[a:b] for a, b in party_spans(PREAMBLE, segments)]
    assert parties == [
        'PivX Corporation, a California corporation ("PivX")',
        "Detto Technologies, a Washington corporation, having its principal place of business at "
        '14320 NE 21st Street ("Detto")',
    ]
    assert [party_name(p) for p in parties] == ["PivX Corporation", "Detto Technologies"]


def test_agreement_and_effective_dates():
    segments = segment_text(PREAMBLE)
    start, end = agreement_date_span(PREAMBLE, segments) or (0, 0)
    assert PREAMBLE[start:end] == "June 21, 1999"
    assert [PREAMBLE[a:b] for a, b in effective_date_spans(PREAMBLE, segments)] == ["June 21, 1999"]


def test_blank_dates_are_found_but_have_no_value():
    text = "This Agreement is made this ___ day of ________, 2012 by and between A Inc. and B LLC."
    start, end = agreement_date_span(text, segment_text(text)) or (0, 0)
    assert "day of" in text[start:end] and text[start:end].endswith("2012")
    assert normalised_value("Agreement Date", text[start:end]) is None


def test_contract_detector():
    assert looks_like_contract(supply_agreement())
    policy = ["Travel Policy\nEmployees shall book trains. Hotels are reimbursed up to 140 euros."]
    assert not looks_like_contract(policy)


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("made as of June 21, 1999", "1999-06-21"),
        ("this 1st day of March, 2019", "2019-03-01"),
        ("Effective: 9/21/98", "1998-09-21"),
        ("dated 15 Sept. 2004", "2004-09-15"),
        ("this ___ day of _______, 2012", None),
        ("February 30, 2020", None),
    ],
)
def test_iso_dates(text, expected):
    assert iso_date(text) == expected


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("for successive periods of one (1) year", 12),
        ("at least ninety (90) days before", 3),
        ("a term of 24 months", 24),
        ("two years from delivery", 24),
        ("thirty days' notice", 1),
        ("until terminated by either party", None),
    ],
)
def test_durations_in_months(text, months):
    assert duration_months(text) == months


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("governed by the laws of the State of New York, without regard to", "New York"),
        ("construed under the laws of England and Wales.", "England and Wales"),
        ("governed by the laws of the Commonwealth of Massachusetts.", "Massachusetts"),
        ("This Agreement is governed by Delaware law.", "Delaware"),
        ("Each party shall comply with applicable law.", None),
    ],
)
def test_jurisdictions(text, place):
    assert jurisdiction(text) == place


def test_expiration_dates_are_where_the_term_ends():
    text = "The term shall commence on January 1, 2010 and extend through December 31, 2012."
    assert normalised_value("Expiration Date", text) == "2012-12-31"
    assert normalised_value("Expiration Date", "This Agreement expires on June 30, 2025.") == (
        "2025-06-30"
    )
    assert normalised_value("Expiration Date", "for an initial term of three (3) years") == (
        "36 months"
    )


def test_values_per_category():
    assert normalised_value("Renewal Term", "renews for one (1) year") == "12 months"
    assert normalised_value("Notice Period To Terminate Renewal", "30 days notice") == "1 month"
    assert normalised_value("Cap On Liability", "shall not exceed $1,000,000 in total") == (
        "$1,000,000"
    )
    assert money("no amount") is None
    assert normalised_value("Audit Rights", "may audit the books") is None


# --- scoring --------------------------------------------------------------------------------


def test_lcs_length():
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4
    assert lcs_length([], ["a"]) == 0
    assert lcs_length(["x"] * 70, ["x"] * 80) == 70  # past one machine word


def test_a_match_needs_half_the_gold_tokens_and_a_bounded_length():
    gold = word_tokens("the laws of the State of New York")  # 8 tokens
    assert is_match(word_tokens("governed by the laws of the State of New York"), gold)
    assert is_match(word_tokens("the laws of the State"), gold)  # 5 of 8 in order
    assert not is_match(word_tokens("laws of York"), gold)  # 3 of 8
    assert is_match(["pad"] * 40 + gold, gold)  # 48 <= 8 + 40
    assert not is_match(["pad"] * 41 + gold, gold)  # 49 > max(16, 48)
    long_gold = ["w"] * 100
    assert is_match(["w"] * 200, long_gold) and not is_match(["w"] * 201, long_gold)


def test_precision_counts_predictions_and_recall_counts_gold_spans():
    gold = [Span("Acme Robotics, Inc.", 1), Span("Buyer", 1), Span("Northwind LLC", 1)]
    predicted = [
        Span('Acme Robotics, Inc., a Delaware corporation ("Buyer")', 1),  # finds two spans
        Span("an unrelated sentence about shipping", 2),
    ]
    tally = score_group(predicted, gold)
    assert (tally.predicted, tally.correct, tally.gold, tally.found) == (2, 1, 3, 2)
    assert (tally.page_checked, tally.page_right) == (1, 1)
    scores = score(
        {("a.pdf", "Parties"): predicted, ("b.pdf", "Audit Rights"): [Span("audit", 3)]},
        {("a.pdf", "Parties"): gold, ("c.pdf", "Audit Rights"): [Span("audit rights", 4)]},
        ["Parties", "Audit Rights"],
    )
    summary = scores.summary()
    assert summary["micro"] == {"precision": 0.3333, "recall": 0.5, "f1": 0.4}
    assert summary["per_category"]["Audit Rights"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1,
    }  # fmt: skip
    assert summary["page_accuracy"] == 1.0


# --- the model file and extraction ------------------------------------------------------------


def test_model_file_round_trip(tmp_path: Path):
    from ingest.clauses.model import TfidfBlock

    vocabulary = ("governed", "laws", "governed by")
    model = ClauseModel(
        categories=("Governing Law",),
        words=TfidfBlock(vocabulary, np.array([1.0, 2.0, 3.0], np.float32), (1, 2)),
        contexts=TfidfBlock(("law",), np.array([1.0], np.float32), (1, 1)),
        coef=np.array([[2.0], [1.0], [3.0], [0.5]], np.float32),
        intercept=np.array([-2.0], np.float32),
        thresholds=np.array([0.4], np.float32),
        info={"contracts": 1},
    )
    model.save(tmp_path / "m.npz")
    loaded = ClauseModel.load(tmp_path / "m.npz")
    segments = segment_text("GOVERNING LAW\nThis is governed by the laws of Ohio.\nPay on time.")
    assert loaded.categories == model.categories and loaded.info == {"contracts": 1}
    probabilities = loaded.probabilities(segments)
    assert probabilities.shape == (2, 1)
    assert probabilities[0, 0] > 0.5 > probabilities[1, 0]
    assert np.allclose(probabilities, model.probabilities(segments), atol=0.02)  # int8 weights


@pytest.fixture(scope="module")
def shipped_model() -> ClauseModel:
    return ClauseModel.load(MODEL)


def test_shipped_model_covers_the_40_categories(shipped_model: ClauseModel):
    assert shipped_model.categories == CATEGORIES
    assert MODEL.stat().st_size < 8_000_000


def test_extraction_from_a_generated_contract_pdf(shipped_model: ClauseModel):
    parsed = parse_pdf(contract_pdf(law="New York"), "supply.pdf")
    clauses = extract_clauses(parsed.pages, shipped_model)
    by_category: dict[str, list] = {}
    for c in clauses:
        by_category.setdefault(c.category, []).append(c)
        page_text = " ".join(parsed.pages[c.page - 1].text.split())
        assert c.text in page_text, "every record quotes its page"
        assert 0 < c.confidence <= 1
    assert [c.value for c in by_category["Parties"]] == [
        "Acme Robotics, Inc.",
        "Northwind Components LLC",
    ]
    assert [c.value for c in by_category["Agreement Date"]] == ["2021-03-01"]
    [law] = by_category["Governing Law"]
    assert (law.value, law.page) == ("New York", GOVERNING_LAW_PAGE)
    assert any(c.page == RENEWAL_PAGE for c in by_category["Renewal Term"])
    assert "Anti-Assignment" in by_category and "Insurance" in by_category
