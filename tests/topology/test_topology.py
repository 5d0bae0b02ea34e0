"""The team server, tested without containers: PostgreSQL, Redis, a Chroma server, one worker
and two app replicas on 127.0.0.1 (tests/topology/cluster.py). An upload through one replica is
answered from by the other; then a bounded load through real browsers on both replicas, whose
rate-limit refusals must be exactly what the limit allows across the two processes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.pdfs import make_pdf
from tests.postgres import PostgresUnavailable
from tests.postgres import required as postgres_required
from tests.redis_server import RedisUnavailable
from tests.redis_server import required as redis_required
from tests.topology.cluster import COLLECTION, Cluster, running_cluster
from tests.topology.load import ask, nav, run_load, sign_in

pytestmark = pytest.mark.browser
LIMIT = 5  # questions per employee account per hour, shared by both replicas
FRESH_WITHIN_S = 10.0


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, list[str]]]:
    if not CHROMIUM.is_file():
        if os.environ.get("KDESK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"KDESK_REQUIRE_BROWSER=1 but {CHROMIUM} is missing", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        with running_cluster(tmp_path_factory.mktemp("topology"), limit=LIMIT) as running:
            yield running
    except (PostgresUnavailable, RedisUnavailable) as exc:
        if postgres_required() or redis_required():
            pytest.fail(f"the topology needs its servers: {exc}", pytrace=False)
        pytest.skip(f"the topology needs its servers: {exc}")


def parking_pdf() -> bytes:
    return make_pdf(
        [
            "Parking Notice\n\nThe Zephyr garage opens at 6:15 in the morning on weekdays. "
            "Night permits for the Zephyr garage are issued by the facilities desk."
        ],
        title="Parking Notice",
    )


async def upload_on_a_ask_on_b(cluster: Cluster, pdf: Path) -> tuple[float, str]:
    """Seconds from the job's end until replica B answered with a citation of the new
    document, and that answer's citation label."""
    from playwright.async_api import async_playwright

    a, b = cluster.apps
    desk = cluster.desk()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            on_a = await (await browser.new_context()).new_page()
            on_b = await (await browser.new_context()).new_page()
            on_a.set_default_timeout(120_000)
            on_b.set_default_timeout(120_000)
            await sign_in(on_a, a.url, "lead")
            await sign_in(on_b, b.url, "lead")
            await nav(on_a, "Knowledge")
            await on_a.get_by_role("heading", name="Knowledge base").wait_for()
            await on_a.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                str(pdf)
            )
            await on_a.locator('[data-testid="stFileChip"]', has_text=pdf.name).wait_for()
            await on_a.get_by_role("button", name="Upload and index").click()
            await on_a.get_by_text(f"Queued 1 file(s) for {COLLECTION}.").wait_for()
            while not (jobs := [j for j in desk.jobs.recent() if j.file_name == pdf.name]) or (
                jobs[0].active
            ):
                await asyncio.sleep(0.2)
            assert jobs[0].state == "done", jobs[0].describe()
            done = time.monotonic()
            citation = on_b.get_by_role("button", name="Parking Notice")
            while True:
                assert await ask(on_b, "When does the Zephyr garage open?") == "answered"
                if await citation.count():
                    return time.monotonic() - done, await citation.first.inner_text()
                assert time.monotonic() - done < FRESH_WITHIN_S * 3, "B never served the upload"
        finally:
            await browser.close()


def test_an_upload_through_one_replica_is_answered_from_by_the_other(
    topology: tuple[Cluster, list[str]], tmp_path: Path
):
    cluster, _ = topology
    pdf = tmp_path / "parking.pdf"
    pdf.write_bytes(parking_pdf())
    seconds, label = asyncio.run(upload_on_a_ask_on_b(cluster, pdf))
    print(f"replica B answered from the upload {seconds:.1f}s after its job ended")
    assert seconds < FRESH_WITHIN_S, cluster.logs()
    assert "Parking Notice — page 1" in label, label
    [doc] = [d for d in cluster.desk().store.documents([COLLECTION]) if d.file_name == pdf.name]
    assert doc.pages == 1


def test_a_bounded_load_on_both_replicas_keeps_the_rate_limit_exact(
    topology: tuple[Cluster, list[str]],
):
    cluster, names = topology
    report = run_load(cluster, names, limit=LIMIT, questions=4, uploads=1, seconds=240)
    print(report)
    assert report.errors == 0, report.problems
    assert report.uploads == 1
    for name, counts in report.per_account.items():
        assert counts["asked"] == 8, (name, counts)  # 4 on each replica
        assert counts["answered"] == LIMIT and counts["refused"] == 8 - LIMIT, (name, counts)
    assert report.refused == report.refusals_expected == len(names) * (8 - LIMIT)
    assert report.retrieval_p95_ms > 0 and report.total_p95_ms >= report.retrieval_p95_ms
