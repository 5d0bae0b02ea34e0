"""The Contracts page through AppTest: empty state, overview, filters, review and export."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.contracts.book import ClauseFilter
from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.contract_samples import GOVERNING_LAW_PAGE, contract_pdf
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import TESTER, Configure, finish_jobs, open_page

ACME = "acme-supply.pdf"
GLOBEX = "globex-supply.pdf"


def stored(data_dir: Path) -> Desk:
    return Desk(load_settings(data_dir=data_dir, model_backend="ollama"))


@pytest.fixture(scope="module")
def contracts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two contracts in collection Contracts (New York and California law)."""
    data_dir = tmp_path_factory.mktemp("contracts") / "data"
    desk = stored(data_dir)
    uploads = [
        Upload(ACME, contract_pdf(law="New York")),
        Upload(GLOBEX, contract_pdf(buyer="Globex Corporation", law="California")),
    ]
    assert [r.status for r in desk.ingest(uploads, "Contracts")] == ["added", "added"]
    return data_dir


@pytest.fixture
def contracts_page(ollama: FakeOllama, configure: Configure):
    def open_it(data_dir: Path) -> AppTest:
        configure(data_dir, ollama.url)
        at = open_page("pages/contracts.py").run()
        assert not at.exception
        return at

    return open_it


def table(at: AppTest, index: int) -> dict[str, list]:
    return at.dataframe[index].value.to_dict(orient="list")


def test_no_contracts_yet(contracts_page, tmp_path: Path):
    at = contracts_page(tmp_path / "data")
    assert "No contracts yet" in at.info[0].value
    assert not at.dataframe


def test_overview_and_clause_table_with_page_links(contracts_page, contracts_dir: Path):
    at = contracts_page(contracts_dir)
    overview = table(at, 0)
    assert overview["file"] == [ACME, GLOBEX]
    assert overview["Governing Law"] == ["New York", "California"]
    clauses = table(at, 1)
    assert set(clauses["file"]) == {ACME, GLOBEX}
    law = clauses["category"].index("Governing Law")
    assert clauses["page"][law].endswith(f"&page={GOVERNING_LAW_PAGE}")
    assert [b.label for b in at.get("download_button")] == ["Export CSV", "Export XLSX"]


def test_filters_across_contracts(contracts_page, contracts_dir: Path):
    at = contracts_page(contracts_dir)
    at.multiselect(key="category_choice").set_value(["Governing Law"])
    at.text_input(key="value_filter").input("new york").run()
    clauses = table(at, 1)
    assert (clauses["file"], clauses["value"]) == ([ACME], ["New York"])

    at.text_input(key="value_filter").input("").run()
    at.button(key="quick-Auto-renewing").click().run()
    assert at.multiselect(key="category_choice").value == ["Renewal Term"]
    assert set(table(at, 1)["category"]) == {"Renewal Term"}
    assert set(table(at, 1)["file"]) == {ACME, GLOBEX}


def test_review_is_stored_with_the_reviewer(contracts_page, tmp_path: Path):
    data_dir = tmp_path / "data"
    stored(data_dir).ingest([Upload(ACME, contract_pdf())], "Contracts")
    at = contracts_page(data_dir)
    at.multiselect(key="category_choice").set_value(["Governing Law"]).run()
    assert len(at.selectbox(key="review_choice").options) == 1
    assert any(f"Reviewing as **{TESTER}**" in c.value for c in at.caption), "the signed-in user"

    at.button(key="confirm_clause").click().run()
    assert not at.exception
    assert (
        at.success[0].value == f"Governing Law, page {GOVERNING_LAW_PAGE}: confirmed by {TESTER}."
    )

    [law] = stored(data_dir).contracts.records(ClauseFilter(categories=["Governing Law"]))
    assert (law.status, law.reviewer) == ("confirmed", TESTER)

    at.text_input(key="corrected_value").input("State of New York").run()
    at.button(key="correct_clause").click().run()
    [law] = stored(data_dir).contracts.records(ClauseFilter(categories=["Governing Law"]))
    assert (law.status, law.value) == ("corrected", "State of New York")
    assert table(at, 1)["value"] == ["State of New York"]
    assert at.text_input(key="corrected_value").value == ""

    at.button(key="reject_clause").click().run()
    assert table(at, 1)["file"] == [], "rejected clauses are hidden by default"


def test_a_page_link_opens_its_clause_for_review(contracts_page, contracts_dir: Path):
    [law] = stored(contracts_dir).contracts.records(
        ClauseFilter(categories=["Governing Law"], value_contains="California")
    )
    at = contracts_page(contracts_dir)
    at.query_params["clause"] = law.id
    at.run()
    assert at.selectbox(key="review_choice").value == law.id
    assert at.expander[-1].label == f"Page {GOVERNING_LAW_PAGE}"


def test_knowledge_page_checkbox_marks_uploads_as_contracts(
    ollama: FakeOllama, configure: Configure, tmp_path: Path
):
    data_dir = tmp_path / "data"
    configure(data_dir, ollama.url)
    at = open_page("pages/library.py").run()
    at.selectbox(key="collection_choice").select("➕ New collection…")
    at.text_input(key="new_collection").input("Legal")
    at.checkbox(key="as_contracts").check()
    at.file_uploader(key="files").set_value([(ACME, contract_pdf(), "application/pdf")])
    at.form_submit_button[0].click().run()
    assert not at.exception
    finish_jobs(at)
    [contract] = stored(data_dir).contracts.contracts()
    assert (contract.collection, contract.detected_by) == ("Legal", "upload")
