"""Check the short-question sets in this folder (policies.jsonl, cuad_dev.jsonl, sec10q.jsonl).

For every line: the JSON shape is right, ids are unique (across all files), unanswerable lines have
`"answer": null, "evidence": []`, and every evidence span of an answerable line occurs verbatim on its
1-based PDF page after collapsing whitespace (case-sensitive). Page text comes from pypdfium2 (the
project's default engine); if a span is not found there, pypdf's text of the same page is tried too.

Usage: python docs/eval/short/check.py [--shared PATH_TO_SHARED_EVAL]
Exit code 0 when every line passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = {
    "policies.jsonl": ("policies", "short-pol-"),
    "cuad_dev.jsonl": ("cuad_dev", "short-cuad-"),
    "sec10q.jsonl": ("sec10q", "short-10q-"),
}
MAX_SPAN = 200


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def default_shared() -> Path:
    env = os.environ.get("KD_SHARED_EVAL")
    candidates = [Path(env)] if env else []
    candidates += [HERE.parents[3] / "shared" / "eval", Path("/work/shared/eval")]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[-1]


@cache
def pdfium_pages(path: str) -> tuple[str, ...]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    try:
        return tuple(collapse(pdf[i].get_textpage().get_text_range()) for i in range(len(pdf)))
    finally:
        pdf.close()


@cache
def pypdf_pages(path: str) -> tuple[str, ...]:
    try:
        import pypdf
    except ImportError:
        return ()
    reader = pypdf.PdfReader(path)
    return tuple(collapse(p.extract_text() or "") for p in reader.pages)


def check_line(obj, docs_dir: Path, prefix: str) -> list[str]:
    errs: list[str] = []
    if not isinstance(obj, dict):
        return ["line is not a JSON object"]
    if set(obj) != {"id", "question", "answer", "evidence"}:
        errs.append(f"keys {sorted(obj)} != ['answer', 'evidence', 'id', 'question']")
        return errs
    if not isinstance(obj["id"], str) or not obj["id"].startswith(prefix):
        errs.append(f"id must be a string starting with {prefix!r}")
    if not isinstance(obj["question"], str) or not obj["question"].strip():
        errs.append("question must be a non-empty string")
    answer, evidence = obj["answer"], obj["evidence"]
    if not isinstance(evidence, list):
        return errs + ["evidence must be a list"]
    if answer is None:
        if evidence:
            errs.append("unanswerable line (answer null) must have empty evidence")
        return errs
    if not isinstance(answer, str) or not answer.strip():
        errs.append("answer must be a non-empty string or null")
    if not evidence:
        errs.append("answerable line needs at least one evidence item")
    for ev in evidence:
        if not isinstance(ev, dict) or set(ev) != {"doc", "page", "text"}:
            errs.append(f"evidence item must have exactly doc, page, text: {ev!r}")
            continue
        doc, page, text = ev["doc"], ev["page"], ev["text"]
        path = docs_dir / str(doc)
        if not isinstance(doc, str) or not path.is_file():
            errs.append(f"unknown doc {doc!r}")
            continue
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_SPAN:
            errs.append(f"span must be a non-empty string of at most {MAX_SPAN} chars")
            continue
        pages = pdfium_pages(str(path))
        if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= len(pages):
            errs.append(f"page {page!r} out of range 1..{len(pages)} for {doc}")
            continue
        span = collapse(text)
        if span in pages[page - 1]:
            continue
        alt = pypdf_pages(str(path))
        if alt and page <= len(alt) and span in alt[page - 1]:
            continue
        errs.append(f"span not found on {doc} p{page}: {text[:80]!r}")
    return errs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shared", type=Path, default=default_shared(), help="folder holding <set>/docs/*.pdf"
    )
    args = ap.parse_args(argv)
    seen: dict[str, str] = {}
    failures = 0
    for name, (set_name, prefix) in FILES.items():
        path = HERE / name
        if not path.is_file():
            print(f"MISSING {name}")
            failures += 1
            continue
        docs_dir = args.shared / set_name / "docs"
        n_ans = n_un = 0
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            where = f"{name}:{lineno}"
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                print(f"FAIL {where}: invalid JSON ({exc})")
                failures += 1
                continue
            errs = check_line(obj, docs_dir, prefix)
            qid = obj.get("id") if isinstance(obj, dict) else None
            if isinstance(qid, str):
                if qid in seen:
                    errs.append(f"duplicate id {qid} (also {seen[qid]})")
                seen[qid] = where
            if errs:
                failures += 1
                for e in errs:
                    print(f"FAIL {where} {qid}: {e}")
            elif obj["answer"] is None:
                n_un += 1
            else:
                n_ans += 1
        print(f"{name}: {n_ans} answerable + {n_un} unanswerable passed")
    print("OK: all lines pass" if failures == 0 else f"{failures} line(s) failed")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
