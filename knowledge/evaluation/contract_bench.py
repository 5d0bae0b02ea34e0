"""`kdesk bench` section "clauses": clause extraction speed on generated contract PDFs, PDF
parsing excluded (it is part of ingestion, measured there)."""

from __future__ import annotations

import random
import time

from ingest.clauses.extract import extract_clauses
from ingest.clauses.segments import segment_pages
from ingest.document import ParsedDocument
from ingest.pdf import parse_pdf
from knowledge.contracts.book import load_clause_model

PARTIES = ("Acme Robotics, Inc.", "Northwind Components LLC", "Globex Corporation", "Initech Ltd.")
STATES = ("New York", "Delaware", "California", "Texas", "Ohio")
CLAUSES = (
    "This Agreement shall be governed by the laws of the State of {state}.",
    "Either party may terminate this Agreement for convenience upon {n} days written notice.",
    "This Agreement shall automatically renew for successive periods of {n} months.",
    "Neither party may assign this Agreement without the prior written consent of the other.",
    "{party} shall maintain general liability insurance of not less than ${n},000,000.",
    "In no event shall either party's aggregate liability exceed the fees paid in the prior "
    "{n} months.",
    "{party} may audit the books and records of the other party once per calendar year.",
    "{party} grants a non-exclusive, non-transferable license to use the Software.",
    "The Supplier shall deliver the Products within {n} days of each purchase order.",
    "All invoices are payable within {n} days and late payments bear interest at 1.5% per month.",
    "Each party shall keep the Confidential Information of the other party in strict confidence.",
    "The Products shall conform to the Specifications for a period of {n} months after delivery.",
)


def contract_pages(rng: random.Random, pages: int) -> list[str]:
    buyer, seller = rng.sample(PARTIES, 2)
    preamble = (
        f"This Supply Agreement is entered into as of March {rng.randint(1, 28)}, 2024 by and "
        f'between {buyer}, a Delaware corporation ("Buyer"), and {seller} ("Seller").'
    )
    texts = []
    for page in range(pages):
        sentences = [preamble] if page == 0 else []
        while sum(len(s) for s in sentences) < 3300:
            template = rng.choice(CLAUSES)
            sentences.append(
                template.format(state=rng.choice(STATES), n=rng.randint(2, 90), party=buyer)
            )
        texts.append(f"{page + 1}. Section {page + 1}\n" + " ".join(sentences))
    return texts


def bench_clauses(quick: bool = False) -> dict[str, object]:
    from knowledge.desk.demo import write_pdf

    rng = random.Random(3)
    count, pages = (2, 5) if quick else (10, 20)
    parsed: list[ParsedDocument] = [
        parse_pdf(write_pdf(f"Contract {i}", contract_pages(rng, pages)), f"contract-{i}.pdf")
        for i in range(count)
    ]
    model = load_clause_model()
    extract_clauses(parsed[0].pages, model)  # warm-up: imports and first-call costs
    started = time.perf_counter()
    found = sum(len(extract_clauses(p.pages, model)) for p in parsed)
    seconds = time.perf_counter() - started
    segmenting = time.perf_counter()
    for p in parsed:
        segment_pages(p.pages)
    segment_seconds = time.perf_counter() - segmenting
    total = sum(p.page_count for p in parsed)
    return {
        "contracts": count,
        "pages": total,
        "clauses": found,
        "seconds": round(seconds, 3),
        "pages_per_s": round(total / seconds, 1),
        "limit": {
            "what": "segmentation alone (the part every extractor needs)",
            "pages_per_s": round(total / segment_seconds, 1),
        },
    }
