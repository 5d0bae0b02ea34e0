"""Measure follow-up retrieval (docs/eval/followups.jsonl) and long-conversation prompt sizes.

    cp -a /work/evaldata /work/evaldata-conv   # the dev collections, a copy (the desk migrates)
    PYTHONPATH=. .venv/bin/python scripts/eval_followups.py --dev /work/evaldata-conv

The demo items are asked of the demo knowledge base (built in a temporary directory), the
policy items of the dev store's ``eval-policies`` collection. Prints JSON: page_hit@1/@5 and
MRR@10 of the follow-up turn searched as asked ("none") and made standalone by the word
heuristic, then the prompt sizes of a 30-turn conversation per context window. The figures go
into docs/evaluation.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from knowledge.core.settings import load_settings
from knowledge.desk.demo import load_demo
from knowledge.desk.root import Desk
from knowledge.evaluation.followups import followup_hits, load_followups, prompt_sizes
from knowledge.evaluation.retrieval import Hit, to_hits
from knowledge.search.embeddings import SentenceTransformerEmbedder

SET_COLLECTIONS = {"demo": ["Company policies", "Contracts"], "policies": ["eval-policies"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dev", type=Path, help="a copy of the dev data directory")
    parser.add_argument("--items", type=Path, default=Path("docs/eval/followups.jsonl"))
    args = parser.parse_args()
    items = load_followups(args.items)
    embedder = SentenceTransformerEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        desks = {"demo": Desk(load_settings(data_dir=Path(tmp)), embedder=embedder)}
        load_demo(desks["demo"])
        if args.dev:
            desks["policies"] = Desk(load_settings(data_dir=args.dev), embedder=embedder)
        else:
            items = [i for i in items if i.set == "demo"]

        def search(which: str, query: str) -> list[Hit]:
            return to_hits(desks[which].search(query, SET_COLLECTIONS[which], 10))

        report = {"followups": followup_hits(items, search), "prompt_sizes": prompt_sizes()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
