"""A bounded load test of the team-server topology, through real browsers: employees ask
questions on both app replicas (each account signed in on both, so its rate limit is shared by
two processes), while the support lead uploads files on the first replica. It stops by itself
after a fixed number of questions per user or a time limit, whichever comes first.

Figures: questions per second, the client's time per question (p50/p95), the desk's own
retrieval and total times (from the usage events in the database), errors, and rate-limit
refusals, which must be exactly what the configured limit allows.

    .venv/bin/python -m tests.topology.load --accounts 3 --questions 8 --limit 10 --uploads 3

(starts the whole topology on 127.0.0.1, prints the figures as JSON; docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.desk.jobs import IngestJob
from knowledge.desk.root import Desk
from knowledge.usage.tables import UsageEventRow
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.pdfs import make_pdf
from tests.topology.cluster import PASSWORD, Cluster, running_cluster

QUESTIONS = [
    "How many vacation days does a full-time employee get?",
    "Up to how much is a hotel night reimbursed in major cities?",
    "When does the office open?",
    "Who approves vacation requests?",
    "Where can bicycles be stored?",
    "Which train class is reimbursed?",
]
LIMIT_TEXT = "reached your limit"
ANSWERED = "Answered by"


@dataclass
class Outcomes:
    answered: int = 0
    refused: int = 0
    errors: int = 0
    seconds: list[float] = field(default_factory=list)  # per question, in the browser
    problems: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    users: int
    replicas: int
    limit_per_account: int
    wall_s: float
    questions: int
    questions_per_s: float
    answered: int
    refused: int
    errors: int
    refusals_expected: int
    browser_p50_s: float
    browser_p95_s: float
    retrieval_p50_ms: float
    retrieval_p95_ms: float
    total_p50_ms: float
    total_p95_ms: float
    uploads: int
    upload_seconds: list[float]
    per_account: dict[str, dict[str, int]]
    problems: list[str]
    load_average_1m: float  # of the machine at the end (2 cores here: above 2 it queued)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


async def sign_in(page: Any, url: str, user: str) -> None:
    await page.goto(url)
    await page.get_by_role("heading", name="Sign in").wait_for()
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Ask the knowledge base").wait_for()


async def ask(page: Any, question: str, timeout_s: float = 90) -> str:
    """'answered', 'refused' or 'error: ...' once the page shows how the question ended."""
    captions = page.get_by_text(ANSWERED)
    before = await captions.count()
    box = page.get_by_placeholder(re.compile("Ask about a policy"))
    await box.fill(question)
    await box.press("Enter")
    last = page.locator('[data-testid="stChatMessage"]').last
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await captions.count() > before:
            return "answered"
        if await page.get_by_text(question).count():
            text = await last.inner_text()
            if LIMIT_TEXT in text:
                return "refused"
        await asyncio.sleep(0.1)
    return f"error: no answer to {question!r} in {timeout_s:.0f}s"


async def employee(
    browser: Any, url: str, user: str, questions: int, until: float, out: Outcomes
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(90_000)
    try:
        await sign_in(page, url, user)
        for n in range(questions):
            if time.monotonic() > until:
                break
            started = time.monotonic()
            ended = await ask(page, QUESTIONS[n % len(QUESTIONS)])
            out.seconds.append(time.monotonic() - started)
            if ended == "answered":
                out.answered += 1
            elif ended == "refused":
                out.refused += 1
            else:
                out.errors += 1
                out.problems.append(f"{user}@{url}: {ended}")
    except Exception as exc:  # noqa: BLE001 - a broken session is a counted error
        out.errors += 1
        out.problems.append(f"{user}@{url}: {type(exc).__name__}: {exc}")
    finally:
        await context.close()


async def nav(page: Any, name: str) -> None:
    await page.get_by_role("link", name=name).first.click()


async def uploaded(desk: Desk, file_name: str) -> IngestJob:
    """The upload's job once it has ended (the page polls the same rows)."""
    while True:
        jobs = [job for job in desk.jobs.recent() if job.file_name == file_name]
        if jobs and not jobs[0].active:
            return jobs[0]
        await asyncio.sleep(0.2)


async def uploader(
    browser: Any, url: str, desk: Desk, files: int, until: float, spent: list[float]
) -> None:
    """The support lead uploads ``files`` small PDFs one after another (into the collection
    the Knowledge page offers first), each waited for until its job has ended."""
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(180_000)
    try:
        await sign_in(page, url, "lead")
        await nav(page, "Knowledge")
        await page.get_by_role("heading", name="Knowledge base").wait_for()
        for n in range(files):
            if time.monotonic() > until:
                break
            path = Path(tempfile.mkdtemp()) / f"notice-{n + 1}.pdf"
            path.write_bytes(notice_pdf(n + 1))
            started = time.monotonic()
            await page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                str(path)
            )
            await page.locator('[data-testid="stFileChip"]', has_text=path.name).wait_for()
            await page.get_by_role("button", name="Upload and index").click()
            job = await uploaded(desk, path.name)
            if job.state != "done":
                raise RuntimeError(f"upload {path.name}: {job.describe()}")
            spent.append(time.monotonic() - started)
    finally:
        await context.close()


def notice_pdf(n: int) -> bytes:
    return make_pdf(
        [
            f"Facilities Notice {n}\n\nThe {n}th floor meeting room is closed for painting "
            f"in week {10 + n}. Bookings move to room {100 + n} on the ground floor."
        ],
        title=f"Facilities Notice {n}",
    )


async def _drive(
    cluster: Cluster, names: list[str], questions: int, uploads: int, seconds: float
) -> tuple[dict[str, Outcomes], list[float], float]:
    from playwright.async_api import async_playwright

    urls = [app.url for app in cluster.apps]
    outcomes = {name: Outcomes() for name in names}
    spent: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        started = time.monotonic()
        until = started + seconds
        try:
            tasks = [
                employee(browser, url, name, questions, until, outcomes[name])
                for name in names
                for url in urls  # every account on every replica: one shared limit
            ]
            if uploads:
                tasks.append(uploader(browser, urls[0], cluster.desk(), uploads, until, spent))
            await asyncio.gather(*tasks)
        finally:
            await browser.close()
    return outcomes, spent, time.monotonic() - started


def run_load(
    cluster: Cluster,
    names: list[str],
    *,
    limit: int,
    questions: int,
    uploads: int = 0,
    seconds: float = 120,
) -> LoadReport:
    outcomes, spent, wall = asyncio.run(_drive(cluster, names, questions, uploads, seconds))
    desk = cluster.desk()
    with Session(desk.engine) as session:
        rows = session.execute(
            select(UsageEventRow.retrieval_ms, UsageEventRow.total_ms, UsageEventRow.user)
        ).all()
    events = [(r, t) for r, t, user in rows if user in outcomes]
    asked = {name: o.answered + o.refused for name, o in outcomes.items()}
    per_account = {
        name: {"asked": asked[name], "answered": o.answered, "refused": o.refused}
        for name, o in outcomes.items()
    }
    seconds_each = [s for o in outcomes.values() for s in o.seconds]
    answered = sum(o.answered for o in outcomes.values())
    refused = sum(o.refused for o in outcomes.values())
    return LoadReport(
        users=len(names) * len(cluster.apps),
        replicas=len(cluster.apps),
        limit_per_account=limit,
        wall_s=round(wall, 1),
        questions=answered + refused,
        questions_per_s=round((answered + refused) / wall, 2),
        answered=answered,
        refused=refused,
        errors=sum(o.errors for o in outcomes.values()),
        refusals_expected=sum(max(0, n - limit) for n in asked.values()),
        browser_p50_s=round(percentile(seconds_each, 50), 2),
        browser_p95_s=round(percentile(seconds_each, 95), 2),
        retrieval_p50_ms=round(percentile([r for r, _ in events], 50), 1),
        retrieval_p95_ms=round(percentile([r for r, _ in events], 95), 1),
        total_p50_ms=round(percentile([t for _, t in events], 50), 1),
        total_p95_ms=round(percentile([t for _, t in events], 95), 1),
        uploads=len(spent),
        upload_seconds=[round(s, 1) for s in spent],
        per_account=per_account,
        problems=[p for o in outcomes.values() for p in o.problems],
        load_average_1m=round(os.getloadavg()[0], 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--questions", type=int, default=8, help="per browser session")
    parser.add_argument("--limit", type=int, default=10, help="questions per account per hour")
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="kdesk-load-") as root,
        running_cluster(Path(root), accounts=args.accounts, limit=args.limit) as (c, names),
    ):
        report = run_load(
            c,
            names,
            limit=args.limit,
            questions=args.questions,
            uploads=args.uploads,
            seconds=args.seconds,
        )
    print(json.dumps(asdict(report), indent=2))


if __name__ == "__main__":
    main()
