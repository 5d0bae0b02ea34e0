"""How similar two questions must be to share a cached answer (KDESK_ANSWER_CACHE_THRESHOLD).

Pairs of questions over the demo documents (knowledge/desk/demo.py): paraphrases, which must
get the same answer, and different questions on the same topic, which must not. Both are
compared as the cache compares them (normalised text, MiniLM query embeddings, cosine, and the
same numbers); ``measure`` gives precision and recall of "served from the cache" per threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.desk.answer_cache import normalise, numbers

PARAPHRASES: tuple[tuple[str, str], ...] = (
    ("How many days of annual leave do full-time employees get?",
     "How many annual leave days do full-time employees get?"),
    ("How many days of annual leave do full-time employees get?",
     "how many days of annual leave do full time employees get"),
    ("How much paid annual leave do I get per year?",
     "How much paid annual leave do I get each year?"),
    ("How many unused leave days can be carried over?",
     "How many unused leave days can I carry over?"),
    ("When must I tell my manager that I am sick?",
     "When do I have to tell my manager that I am sick?"),
    ("When is a medical certificate required?",
     "When is a medical certificate needed?"),
    ("How long is paid maternity leave?",
     "How long is the paid maternity leave?"),
    ("How much paternity leave do partners get?",
     "How much paternity leave do partners receive?"),
    ("What is the daily meal allowance when travelling?",
     "What is the daily meal allowance when I travel?"),
    ("Within how many days must expense claims be submitted?",
     "Within how many days do expense claims have to be submitted?"),
    ("What is the hotel limit per night in capital cities?",
     "What is the hotel limit per night in a capital city?"),
    ("Is alcohol reimbursed?", "Is alcohol reimbursed on expenses?"),
    ("How long must passwords be?", "How long do passwords have to be?"),
    ("Where do I report a phishing email?", "Where should I report a phishing email?"),
    ("Can I store customer data on a USB drive?",
     "Can I store customer data on USB drives?"),
    ("How long is the initial term of the Master Services Agreement?",
     "What is the initial term of the Master Services Agreement?"),
    ("What is the notice period for non-renewal?",
     "What is the notice period for a non-renewal?"),
    ("Which law governs the Master Services Agreement?",
     "Which law governs the master services agreement?"),
    ("Within how many days must invoices be paid?",
     "Within how many days do invoices have to be paid?"),
    ("How long does confidentiality last after the agreement ends?",
     "How long does the confidentiality last after the agreement ends?"),
)  # fmt: skip

DIFFERENT: tuple[tuple[str, str], ...] = (
    ("How many days of annual leave do full-time employees get?",
     "How many days of annual leave do part-time employees get?"),
    ("How long is paid maternity leave?", "How long is paid paternity leave?"),
    ("How many days of sick leave are paid?", "How many days of unpaid leave can I take?"),
    ("When must I tell my manager that I am sick?",
     "When must I tell my manager that I want annual leave?"),
    ("What is the hotel limit per night in capital cities?",
     "What is the hotel limit per night outside capital cities?"),
    ("Is business class allowed on long flights?", "Is business class allowed on short flights?"),
    ("Within how many days must expense claims be submitted?",
     "After how many days are expense claims no longer reimbursed?"),
    ("What is the daily meal allowance when travelling?",
     "What is the nightly hotel allowance when travelling?"),
    ("Is alcohol reimbursed?", "Are meals reimbursed?"),
    ("How long must passwords be?", "How long until a laptop locks automatically?"),
    ("Is multi-factor authentication mandatory for email?",
     "Is multi-factor authentication mandatory for the VPN?"),
    ("Can I store customer data on a USB drive?",
     "Can I access email from a personal device?"),
    ("How long is the initial term of the Master Services Agreement?",
     "How long is each renewal term of the Master Services Agreement?"),
    ("What is the notice period for non-renewal?",
     "What is the notice period for termination for convenience?"),
    ("Who is the customer in the Master Services Agreement?",
     "Who is the provider in the Master Services Agreement?"),
    ("Can the customer terminate the agreement immediately?",
     "Can the provider terminate the agreement immediately?"),
    ("Which law governs the Master Services Agreement?",
     "Which courts have jurisdiction under the Master Services Agreement?"),
    ("Is the limit of liability the fees of the last 12 months?",
     "Is the limit of liability the fees of the last 24 months?"),
    ("What was the revenue in Q3 2024?", "What was the revenue in Q2 2024?"),
    ("How many leave days can be carried over?", "When do carried-over leave days expire?"),
)  # fmt: skip


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    precision: float  # of the pairs served from the cache, the share that are paraphrases
    recall: float  # of the paraphrases, the share served from the cache
    false_hits: int


def similarities(
    pairs: Sequence[tuple[str, str]], embed: Callable[[str], np.ndarray]
) -> list[float]:
    """The cache's similarity of each pair: cosine, or 0 when their numbers differ."""
    found = []
    for a, b in pairs:
        if numbers(normalise(a)) != numbers(normalise(b)):
            found.append(0.0)
            continue
        va, vb = embed(normalise(a)), embed(normalise(b))
        found.append(float(np.dot(va, vb)))
    return found


def measure(
    embed: Callable[[str], np.ndarray], thresholds: Sequence[float] = ()
) -> tuple[list[ThresholdRow], list[float], list[float]]:
    same = similarities(PARAPHRASES, embed)
    other = similarities(DIFFERENT, embed)
    rows = []
    for t in thresholds or [round(0.80 + 0.01 * i, 2) for i in range(20)]:
        hits, false_hits = sum(s >= t for s in same), sum(s >= t for s in other)
        served = hits + false_hits
        rows.append(ThresholdRow(t, hits / served if served else 1.0, hits / len(same), false_hits))
    return rows, same, other
