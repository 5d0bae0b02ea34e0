"""`kdesk bench` section "formats": reading and chunking speed of generated files of every
non-PDF format (the file's size, its pages: sections, slides, blocks of rows; the characters
read; the best of ``runs`` for ``read_document`` and for ``chunk_pages``)."""

from __future__ import annotations

import time

from ingest.chunking import chunk_pages
from ingest.reader import read_document
from knowledge.evaluation.office_samples import make_docx, make_pptx, make_xlsx

PARAGRAPH = (
    "Employees who travel for work book trains and hotels through the travel desk, keep every "
    "receipt and submit their claims within thirty days of the trip. "
)


def generated_files(rows: int = 20_000, sections: int = 300) -> dict[str, bytes]:
    table = [["City", "Rate", "Currency"]] + [[f"City {i}", i, "EUR"] for i in range(10)]
    blocks: list[tuple[str, object]] = []
    for s in range(100):
        blocks += [("h1", f"Section {s} Rules"), ("p", PARAGRAPH * 3), ("h2", f"Part {s}.1")]
        blocks += [("p", PARAGRAPH * 2), ("table", table)]
    sheet: list[list[object]] = [["Name", "Amount", "Region", "Date"]]
    sheet += [[f"Person {i}", i * 1.5, "North", "2024-01-01"] for i in range(rows)]
    html = "".join(
        f"<h2>Part {i}</h2><p>{PARAGRAPH * 3}</p><table><tr><th>a</th><th>b</th></tr>"
        "<tr><td>1</td><td>2</td></tr></table>"
        for i in range(sections)
    )
    markdown = "".join(
        f"## Part {i}\n\n{PARAGRAPH * 3}\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        for i in range(sections)
    )
    csv = "Name,Amount,Region\n" + "".join(f"Person {i},{i},North\n" for i in range(rows))
    return {
        "100-sections.docx": make_docx(blocks),
        "100-slides.pptx": make_pptx([(f"Slide {i}", [PARAGRAPH, "A point"]) for i in range(100)]),
        f"{rows}-rows.xlsx": make_xlsx({"Data": sheet}),
        f"{rows}-rows.csv": csv.encode(),
        f"{sections}-sections.html": f"<html><body>{html}</body></html>".encode(),
        f"{sections}-sections.md": markdown.encode(),
    }


def measure(name: str, data: bytes, runs: int) -> dict[str, object]:
    reads, chunkings = [], []
    for _ in range(runs):
        started = time.perf_counter()
        document = read_document(data, name)
        reads.append(time.perf_counter() - started)
        started = time.perf_counter()
        chunks = chunk_pages(document.pages)
        chunkings.append(time.perf_counter() - started)
    return {
        "file": name,
        "kb": round(len(data) / 1024),
        "pages": document.page_count,
        "chars": sum(len(p.text) for p in document.pages),
        "chunks": len(chunks),
        "read_s": round(min(reads), 3),
        "chunk_s": round(min(chunkings), 3),
    }


def bench_formats(quick: bool = False) -> list[dict[str, object]]:
    files = generated_files(2_000, 30) if quick else generated_files()
    return [measure(name, data, 1 if quick else 3) for name, data in files.items()]
