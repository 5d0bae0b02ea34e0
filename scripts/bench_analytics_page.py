"""Time the Analytics page rendering N synthetic usage events, through Streamlit's AppTest.

    .venv/bin/python scripts/bench_analytics_page.py [--events 100000] [--runs 5]

Prints JSON: how long filling the database took, the page's first run in a fresh process
(includes building the cached Desk and importing Altair/SciPy) and its later runs (a manager
opening or refreshing the page in a running app). The figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def render_ms(events: int) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "analytics.py"), default_timeout=300)
    started = time.perf_counter()
    at.run()
    elapsed = (time.perf_counter() - started) * 1000
    if at.exception or not at.metric:
        raise SystemExit(f"the page did not render: {at.exception or at.info}")
    shown = next(m.value for m in at.metric if m.label == "Questions")
    assert shown == f"{events:,}", f"the page shows {shown} questions, expected {events:,}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from knowledge.core.db import make_engine, sqlite_url, upgrade
    from knowledge.evaluation.usage_bench import fill_usage
    from knowledge.search.embeddings import SentenceTransformerEmbedder
    from knowledge.usage.events import UsageLog

    with tempfile.TemporaryDirectory(prefix="kdesk-page-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        embed = SentenceTransformerEmbedder().embed_documents
        engine = make_engine(sqlite_url(data_dir / "kdesk.sqlite3"))
        upgrade(engine)
        log = UsageLog(engine, embed=embed)
        fill_s = fill_usage(log, args.events)
        log.engine.dispose()
        os.environ.update(
            KDESK_DATA_DIR=str(data_dir),
            KDESK_MODEL_BACKEND="ollama",  # never contacted: the page asks no questions
            KDESK_OLLAMA_HOST="http://127.0.0.1:9",
        )
        first = render_ms(args.events)
        later = [render_ms(args.events) for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "events": args.events,
                "cores": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "fill_s": round(fill_s, 1),
                "first_render_ms": round(first),
                "render_ms": {
                    "median": round(statistics.median(later)),
                    "min": round(min(later)),
                    "max": round(max(later)),
                    "runs": len(later),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
