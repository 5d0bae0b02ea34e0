"""`kdesk bench` on a tiny corpus: the figures it reports are there and consistent (the speeds
themselves are measured by running it, never asserted here)."""

from __future__ import annotations

from knowledge.core.settings import Settings
from knowledge.desk.root import Desk
from knowledge.evaluation.bench import bench_ingest, bench_queries, synthetic_pdfs


def test_ingest_figures_compare_the_pipeline_with_embedding_alone(desk: Desk):
    figures = bench_ingest(desk, synthetic_pdfs(2, 3))
    assert figures["files"] == 2 and figures["pages"] == 6
    assert figures["chunks"] == len(desk.store.collection_chunks("bench")) > 0
    limit = figures["limit"]
    assert isinstance(limit, dict) and limit["tokens_per_s"] > 0
    assert figures["share_of_limit"] > 0  # type: ignore[operator]


def test_query_figures_per_pipeline_and_size(settings: Settings, embedder, desk: Desk):
    desk.ingest(synthetic_pdfs(2, 3), "bench")
    texts = [c.text for c in desk.store.collection_chunks("bench")]
    figures = bench_queries(settings, embedder, texts, (200, 400))
    assert set(figures) == {"200", "400"}
    for size, row in figures.items():
        assert isinstance(row, dict) and row["chunks"] == int(size)
        for stage in ("vector_only_ms", "hybrid_ms", "default_multi_part_ms", "limit_ms"):
            assert 0 < row[stage]["p50"] <= row[stage]["p95"], stage
        assert row["recall_at_10"] == 1.0  # retrieval searches these vectors exactly
        # on a few hundred vectors the tuned HNSW graph finds the exact neighbours too
        assert row["hnsw_recall_at_10"] >= 0.95
        fresh = row["index_freshness"]
        assert fresh["chunks_indexed"] == int(size)  # each size adds documents, replaces none
        assert fresh["cold_start_built_ms"] > 0 and fresh["cold_start_loaded_ms"] > 0
        after = fresh["after_upload_elsewhere"]
        # the worker process built and saved the new revision; the replica only loaded it,
        # answering from the index it held meanwhile
        assert after["worker_prepare_ms"] > 0 and after["saved_to_served_s"] is not None
        assert after["replica_made"] == {"loaded": 2}
        assert after["queries_meanwhile"] >= 1


def test_format_figures_cover_every_generated_format():
    from knowledge.evaluation.formats_bench import bench_formats

    figures = {row["file"].rsplit(".", 1)[1]: row for row in bench_formats(quick=True)}
    assert set(figures) == {"docx", "pptx", "xlsx", "csv", "html", "md"}
    assert all(row["chunks"] and row["pages"] and row["chars"] for row in figures.values())
    assert figures["pptx"]["pages"] == 100  # one page per slide


def test_tool_figures_time_each_slash_command_and_the_turn_loop():
    from knowledge.evaluation.tool_bench import COMMANDS, bench_tools

    figures = bench_tools(quick=True)
    parse = figures["slash_parse_us"]
    assert isinstance(parse, dict) and set(parse) == set(COMMANDS)
    assert all(us > 0 for us in parse.values())
    assert figures["turn_loop_us"] > 0 and figures["tools_offered"] == 32  # type: ignore[operator]


def test_api_figures_under_load_on_loopback(settings: Settings, embedder):
    from knowledge.evaluation.api_bench import bench_api, bench_routes

    figures: dict = bench_api(settings, embedder, quick=True)
    machine = figures["machine"]
    assert machine["cores"] and len(machine["load_average_before"]) == 3
    floor = figures["in_process"]
    assert 0 < floor["search_ms"]["p50"] <= floor["search_ms"]["p95"]
    assert 0 < floor["answer_ms"]["p50"] <= floor["answer_ms"]["p95"]
    answered, asked = map(int, floor["answered"].split("/"))
    assert 0 < answered <= asked, "the stand-in's quotes pass the desk's citation check"
    built = bench_routes()
    sections = {
        "health": ("/health", ("total_ms",)),
        "models": ("/v1/models", ("total_ms",)),
        "search": ("/api/search", ("total_ms",)),
        "streamed_answer": ("/v1/chat/completions", ("first_byte_ms", "total_ms")),
    }
    for section, (path, timings) in sections.items():
        if path not in built:  # a route another part of the API adds (docs/api.md)
            assert figures[section] == {"skipped": f"{path} is not in this build"}
            continue
        rows = figures[section]
        assert [row["clients"] for row in rows] == [1, 4]
        for row in rows:
            assert row["requests"] == row["clients"] * 5 and row["requests_per_s"] > 0
            for timing in timings:
                assert 0 < row[timing]["p50"] <= row[timing]["p95"], (section, timing)
    if "/v1/chat/completions" in built:
        for row in figures["streamed_answer"]:
            assert row["first_byte_ms"]["p50"] <= row["total_ms"]["p50"]
