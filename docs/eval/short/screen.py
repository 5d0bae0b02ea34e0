"""Screen policies.jsonl against the held-out test set (../shared/eval/everyday/questions.jsonl) for near-duplicates.

A pair is flagged when the Jaccard overlap of the two questions' lowercased content-word sets is >= 0.5, or when
both questions cite the same evidence page (same doc and page) and the overlap is >= 0.3. Prints the flagged pairs
and exits 1 if there are any. Usage: python docs/eval/short/screen.py [--test PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STOP = set(
    """a an the and or but if of to in on at for from by with about as into over after before under between
is are was were be been being am do does did doing have has had having can could will would shall should may might must
i me my mine we us our ours you your yours he him his she her it its they them their what which who whom whose when where
why how this that these those there here than then so such not no nor only own same too very just also any all each
some more most other another up down out off again further once get got go going""".split()
)


def content_words(text: str) -> set[str]:
    return {
        w
        for w in re.findall(r"[a-z0-9]+", text.lower().replace("’", "'"))
        if w not in STOP and len(w) > 1
    }


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def pages(obj) -> set[tuple[str, int]]:
    return {
        (e.get("doc"), e.get("page"))
        for e in obj.get("evidence") or []
        if e.get("page") is not None
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--test",
        type=Path,
        default=HERE.parents[3] / "shared" / "eval" / "everyday" / "questions.jsonl",
    )
    ap.add_argument("--mine", type=Path, default=HERE / "policies.jsonl")
    args = ap.parse_args(argv)
    test = [
        json.loads(line)
        for line in args.test.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    mine = [
        json.loads(line)
        for line in args.mine.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    flagged = 0
    for m in mine:
        mw, mp = content_words(m["question"]), pages(m)
        for t in test:
            j = jaccard(mw, content_words(t["question"]))
            same_page = bool(mp & pages(t))
            if j >= 0.5 or (same_page and j >= 0.3):
                flagged += 1
                print(
                    f"{m['id']} ~ {t.get('id')}  jaccard={j:.2f} same_page={same_page}\n  mine: {m['question']}\n  test: {t['question']}"
                )
    print(
        f"{flagged} near-duplicate pair(s) among {len(mine)} questions vs {len(test)} test questions"
    )
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
