"""The Knowledge page's ingestion jobs: the signed-in user's uploads, their progress while they
run (refreshed every few seconds, from the database, so a reload or a new sign-in finds them)
and each one's report."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from knowledge.desk.facade import UserDesk
from knowledge.desk.jobs import IngestJob

REFRESH_S = 2.0


def jobs_panel(me: UserDesk) -> None:
    running = any(job.active for job in me.jobs())
    _panel(me, run_every=REFRESH_S if running else None)


def _show(me: UserDesk) -> None:
    jobs = me.jobs()
    if not jobs:
        return
    st.subheader("Uploads")
    active = [job for job in jobs if job.active]
    for job in active:
        st.progress(job.fraction, text=f"{job.collection} / {job.file_name}: {job.describe()}")
    ended = [job for job in jobs if not job.active]
    failed = sum(job.state == "failed" for job in ended)
    copies = sum(bool(job.report and job.report.status == "duplicate") for job in ended)
    if ended:
        indexed = len(ended) - failed - copies
        also = f"{copies} duplicate(s) not indexed again, " if copies else ""
        summary = f"{indexed} indexed, {also}{failed} failed (latest {len(ended)} uploads)"
        (st.warning if failed else st.success)(summary)
        st.dataframe(_table(ended), hide_index=True, width="stretch")
    if not active and st.session_state.get("jobs_were_active"):
        st.session_state["jobs_were_active"] = False
        st.rerun()  # the whole page: the documents list shows what just finished
    st.session_state["jobs_were_active"] = bool(active)


def _panel(me: UserDesk, run_every: float | None) -> None:
    st.fragment(run_every=run_every)(_show)(me)


def _table(jobs: list[IngestJob]) -> pd.DataFrame:
    reports = [job.report for job in jobs]
    return pd.DataFrame(
        {
            "file": [job.file_name for job in jobs],
            "collection": [job.collection for job in jobs],
            "status": [r.status if r else job.state for job, r in zip(jobs, reports, strict=True)],
            "pages": [
                r.pages if r else job.pages or 0 for job, r in zip(jobs, reports, strict=True)
            ],
            "pages without text": [len(r.pages_without_text) if r else 0 for r in reports],
            "chunks": [r.chunks if r else 0 for r in reports],
            "tags": [", ".join(r.tags) if r else "" for r in reports],
            "seconds": [round(r.seconds, 2) if r else 0.0 for r in reports],
            "uploaded": [job.created_at.strftime("%Y-%m-%d %H:%M") for job in jobs],
            "note": [
                (r.reason if r else job.error) or "" for job, r in zip(jobs, reports, strict=True)
            ],
        }
    )
