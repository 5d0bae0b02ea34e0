"""Analytics: what is asked, what is answered, what is missing - for roles with the analytics
page, and only about the collections the viewer may search."""

import pandas as pd
import streamlit as st

from knowledge.usage.analytics import Dashboard, default_range
from knowledge.usage.events import UsageFilter
from pages import charts
from pages.shared import page_desk

me = page_desk("analytics")
st.title("📊 Usage analytics")
if me.usage_date_range() is None:
    st.info("No questions have been asked yet. Figures appear here after the first answers.")
    st.stop()

first_day, today = default_range()
left, right = st.columns([2, 3])
period = left.date_input("Period (UTC days)", (first_day, today), max_value=today, key="period")
roles = right.multiselect("Roles", me.usage_roles(), key="roles", placeholder="All roles")
since, until = (period[0], period[-1]) if period else (first_day, today)
filters = UsageFilter(since, until, tuple(roles))
board = me.dashboard(filters)  # events, documents and questions of the viewer's collections
if board.questions == 0:
    st.info("No questions in this period. Widen the period or choose other roles.")
    st.stop()


def percent(part: object, whole: int) -> str:
    return f"{int(part) / whole:.0%}" if whole else "–"  # type: ignore[call-overload]


def headline(board: Dashboard) -> None:
    s, n = board.summary, board.questions
    rated = int(s["feedback_up"]) + int(s["feedback_down"])  # type: ignore[call-overload]
    latency = s["latency_ms"]
    cells = st.columns(6)
    cells[0].metric("Questions", f"{n:,}", help=f"from {s['users']} users")
    cells[1].metric("Answered", percent(s["answered"], n), help=f"{s['answered']} answers")
    cells[2].metric("Abstained", percent(s["abstained"], n), help=f"{s['abstained']} questions")
    cells[3].metric("Thumbs up", percent(s["feedback_up"], rated), help=f"of {rated} rated")
    cells[4].metric("Latency p50", f"{latency['p50'] / 1000:.1f} s")  # type: ignore[index]
    cells[5].metric("Latency p95", f"{latency['p95'] / 1000:.1f} s")  # type: ignore[index]


def by_role(board: Dashboard) -> pd.DataFrame:
    rows = [
        {
            "role": role,
            "questions": part["questions"],
            "abstained": part["abstained"],
            "thumbs up": part["feedback_up"],
            "thumbs down": part["feedback_down"],
            "p50 ms": part["latency_ms"]["p50"],
            "p95 ms": part["latency_ms"]["p95"],
        }
        for role, part in board.summary["by_role"].items()  # type: ignore[attr-defined]
    ]
    return pd.DataFrame(rows)


def table(frame: pd.DataFrame, empty: str, **columns: object) -> None:
    if frame.empty:
        st.caption(empty)
    else:
        st.dataframe(frame, hide_index=True, width="stretch", column_config=columns)


headline(board)
top_left, top_right = st.columns(2)
top_left.altair_chart(charts.questions_by_role(board.questions_per_day), width="stretch")
top_right.altair_chart(charts.answered_vs_abstained(board.outcomes_per_day), width="stretch")
mid_left, mid_right = st.columns(2)
mid_left.altair_chart(charts.latency(board.latency_per_day), width="stretch")
mid_right.altair_chart(charts.feedback(board.feedback_per_day), width="stretch")
low_left, low_right = st.columns(2)
low_left.altair_chart(charts.model_share(board.model_share), width="stretch")
with low_right:
    st.subheader("By role")
    table(by_role(board), "No roles in this period.")

st.subheader("Models and the answer cache")
cache = board.summary["answer_cache"]
st.caption(
    f"Answer cache hit rate: {percent(cache['cached'], cache['answers'])} "  # type: ignore[index]
    "(stored answers served again). Routes: fast / strong model, single (one model), persona "
    "(the role's own model), none (no model needed), cache."
)
routes = pd.DataFrame([{"route": r, **v} for r, v in board.summary["routes"].items()])  # type: ignore[attr-defined]
table(routes, "No answers in this period.", share=st.column_config.NumberColumn(format="percent"))

st.subheader("Knowledge gaps")
st.caption(
    "Questions that were not answered or got a thumbs down, grouped by meaning: each topic is "
    "named by its most typical question. These are the documents to add."
)
table(
    board.gaps,
    "No gaps in this period: every question was answered and none got a thumbs down.",
    thumbs_down="thumbs down",
    questions=st.column_config.NumberColumn("variants", help="distinct questions in the topic"),
    last_asked=st.column_config.DateColumn("last asked"),
)
st.subheader("Top questions")
table(
    board.top_questions,
    "Question texts are not stored (KDESK_QUESTION_STORAGE=off).",
    thumbs_down="thumbs down",
    last_asked=st.column_config.DateColumn("last asked"),
)
cited_left, cited_right = st.columns(2)
with cited_left:
    st.subheader("Most cited documents")
    table(board.most_cited, "No answer cited a document in this period.")
with cited_right:
    st.subheader("Never cited documents")
    table(
        board.never_cited,
        "Every document was cited at least once.",
        ingested_at=st.column_config.DatetimeColumn("ingested", format="YYYY-MM-DD"),
    )

st.download_button(
    "Export these events (CSV)",
    data=lambda: me.usage_csv(filters),
    file_name=f"kdesk-usage-{since}-to-{until}.csv",
    mime="text/csv",
    icon="⬇️",
    on_click="ignore",
)
