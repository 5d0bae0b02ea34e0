"""Altair charts for the Analytics page. Each takes a small DataFrame of aggregates (see
knowledge.usage.analytics) and only decides how it looks."""

from __future__ import annotations

import altair as alt
import pandas as pd

DAY = alt.X("day:T", title=None, axis=alt.Axis(format="%d %b"))
OUTCOME_COLORS = alt.Scale(domain=["answered", "abstained"], range=["#2e7d32", "#b0bec5"])
RATING_COLORS = alt.Scale(domain=["up", "down"], range=["#2e7d32", "#c62828"])


def questions_by_role(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame, title="Questions per day, by role")
        .mark_bar()
        .encode(
            DAY,
            alt.Y("sum(questions):Q", title="questions"),
            alt.Color("role:N", title="role"),
            tooltip=[alt.Tooltip("day:T", format="%d %b %Y"), "role:N", "questions:Q"],
        )
    )


def answered_vs_abstained(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame, title="Answered vs abstained")
        .mark_bar()
        .encode(
            DAY,
            alt.Y("sum(questions):Q", title="share", stack="normalize", axis=alt.Axis(format="%")),
            alt.Color("outcome:N", scale=OUTCOME_COLORS, title=None),
            tooltip=[alt.Tooltip("day:T", format="%d %b %Y"), "outcome:N", "questions:Q"],
        )
    )


def latency(frame: pd.DataFrame) -> alt.Chart:
    """p50 (solid) and p95 (dashed) per stage, on a log scale (retrieval is ms, answers are s)."""
    long = frame.melt(["day", "stage"], ["p50", "p95"], "percentile", "ms").dropna()
    return (
        alt.Chart(long, title="Latency p50 / p95 (ms)")
        .mark_line()
        .encode(
            DAY,
            alt.Y("ms:Q", title="milliseconds", scale=alt.Scale(type="log")),
            alt.Color("stage:N", sort=["retrieval", "first token", "total"], title="stage"),
            alt.StrokeDash("percentile:N", title=None, sort=["p50", "p95"]),
            tooltip=[alt.Tooltip("day:T", format="%d %b %Y"), "stage:N", "percentile:N", "ms:Q"],
        )
    )


def model_share(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame, title="Answers by model")
        .mark_arc(innerRadius=50)
        .encode(
            alt.Theta("questions:Q"),
            alt.Color("model:N", title="model", legend=alt.Legend(orient="bottom", labelLimit=400)),
            tooltip=["model:N", "questions:Q", alt.Tooltip("share:Q", format=".0%")],
        )
    )


def feedback(frame: pd.DataFrame) -> alt.Chart:
    """Thumbs per day (bars) and the share of thumbs up among them (tooltip)."""
    long = frame.melt(["day", "up_share"], ["up", "down"], "rating", "answers")
    return (
        alt.Chart(long, title="Feedback per day")
        .mark_bar()
        .encode(
            DAY,
            alt.Y("answers:Q", title="rated answers"),
            alt.Color("rating:N", scale=RATING_COLORS, title=None),
            tooltip=[
                alt.Tooltip("day:T", format="%d %b %Y"),
                "rating:N",
                "answers:Q",
                alt.Tooltip("up_share:Q", title="thumbs up share", format=".0%"),
            ],
        )
    )
