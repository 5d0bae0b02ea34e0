"""Contracts: key clauses of every contract with page links, filters across contracts,
review (confirm / correct / reject, with who and when) and CSV / XLSX export."""

import pandas as pd
import streamlit as st

from ingest.clauses.extract import CATEGORIES
from knowledge.contracts.book import (
    STATUSES,
    ClauseFilter,
    ClauseRecord,
    contract_overview,
    export_csv,
    export_rows,
    export_xlsx,
)
from knowledge.core.errors import KdeskError
from knowledge.search.viewer import render_page
from pages.shared import page_desk

QUICK = {
    "Auto-renewing": ["Renewal Term"],
    "Governing law": ["Governing Law"],
    "Liability": ["Cap On Liability", "Uncapped Liability"],
}

me = page_desk("contracts")  # contracts and clauses of the collections the user may search
st.title("📑 Contracts")
contracts = me.contracts()
if not contracts:
    st.info(
        "No contracts yet. On the **Knowledge** page, upload PDFs into a collection whose name "
        'contains "contract", or tick "These are contracts".'
    )
    st.stop()

overview = pd.DataFrame(contract_overview(contracts, me.clause_records()))
st.dataframe(overview, hide_index=True, width="stretch")


def quick(categories: list[str]) -> None:
    st.session_state["category_choice"] = categories


with st.sidebar:
    st.caption("Quick filters")
    for label, categories in QUICK.items():
        st.button(label, key=f"quick-{label}", on_click=quick, args=(categories,))
    names = {f"{c.collection} / {c.file_name}": c.doc_id for c in contracts}
    chosen = st.multiselect("Contracts", list(names), key="contract_choice")
    categories = st.multiselect("Clause types", CATEGORIES, key="category_choice")
    value = st.text_input("Value contains", key="value_filter", placeholder="e.g. New York")
    default_statuses = [s for s in STATUSES if s != "rejected"]
    statuses = st.multiselect("Status", STATUSES, default=default_statuses, key="status_choice")

where = ClauseFilter(
    doc_ids=[names[n] for n in chosen] or None,
    categories=categories or None,
    statuses=statuses or None,
    value_contains=value,
)
records = me.clause_records(where)
st.subheader(f"Clauses ({len(records)})")
columns = ["file", "category", "value", "page", "status", "confidence", "text"]
table = pd.DataFrame(export_rows(records), columns=columns)
table["page"] = [f"contracts?clause={r.id}&page={r.page}" for r in records]  # opens the review
page_link = st.column_config.LinkColumn("page", display_text=r"page=(\d+)")
st.dataframe(table, hide_index=True, width="stretch", column_config={"page": page_link})
left, right = st.columns(2)
left.download_button("Export CSV", export_csv(records), "clauses.csv", "text/csv", key="csv")
xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
right.download_button("Export XLSX", export_xlsx(records), "clauses.xlsx", xlsx, key="xlsx")
if not records:
    st.stop()


def label(r: ClauseRecord) -> str:
    return f"{r.file_name} · {r.category} · page {r.page} · {r.status}"


by_id = {r.id: r for r in records}
linked = st.query_params.get("clause")
if linked in by_id and linked != st.session_state.get("opened_link"):
    st.session_state.update(review_choice=linked, opened_link=linked)  # once per link
st.subheader("Review")
clause_id = st.selectbox(
    "Clause", list(by_id), format_func=lambda i: label(by_id[i]), key="review_choice"
)
record = by_id[clause_id]


def review(action: str, clause_id: str) -> None:
    """Runs before the rerun, so the message and the new status show at once."""
    try:
        reviewed = me.review_clause(  # as the signed-in user
            clause_id,
            action,  # type: ignore[arg-type]
            value=st.session_state.get("corrected_value"),
            note=st.session_state.get("review_note"),
        )
    except KdeskError as exc:
        st.session_state["review_message"] = ("error", str(exc))
    else:
        done = (
            f"{reviewed.category}, page {reviewed.page}: {reviewed.status} by {reviewed.reviewer}."
        )
        st.session_state["review_message"] = ("success", done)
        st.session_state["corrected_value"] = ""


if message := st.session_state.pop("review_message", None):
    (st.error if message[0] == "error" else st.success)(message[1])
st.markdown(f"> {record.text}")
st.caption(
    f"**{record.category}** · value: {record.value or '—'} · confidence {record.confidence:.2f}"
    f" · page {record.page} · status **{record.status}**"
    + (
        f" by {record.reviewer} on {record.reviewed_at:%Y-%m-%d %H:%M} UTC"
        if record.reviewed_at
        else ""
    )
)
st.caption(f"Reviewing as **{me.user}**")
st.text_input("Corrected value (for Correct)", key="corrected_value")
st.text_input("Note", key="review_note")
confirm, correct, reject = st.columns(3)
confirm.button(
    "Confirm", key="confirm_clause", on_click=review, args=("confirm", record.id), icon="✅"
)
correct.button(
    "Correct", key="correct_clause", on_click=review, args=("correct", record.id), icon="✏️"
)
reject.button("Reject", key="reject_clause", on_click=review, args=("reject", record.id), icon="🚫")
if history := me.clause_history(record.id):
    with st.expander("Review history"):
        for event in history:
            value_note = f" → {event.value}" if event.value else ""
            st.caption(
                f"{event.at:%Y-%m-%d %H:%M} UTC · {event.reviewer} · {event.action}{value_note}"
            )
with st.expander(f"Page {record.page}", expanded=False):
    try:
        st.image(render_page(me.document(record.doc_id).pdf_path, record.page))
    except KdeskError as exc:
        st.error(str(exc))
