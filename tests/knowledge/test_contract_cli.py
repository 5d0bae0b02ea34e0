"""`kdesk clauses extract|eval|train`: the JSON contracts scripts rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.clauses.extract import CATEGORIES
from ingest.clauses.model import ClauseModel
from knowledge.cli.main import main
from tests.contract_samples import GOVERNING_LAW_PAGE, contract_pdf, supply_agreement


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_extract_json(tmp_path: Path, capsys):
    pdf = tmp_path / "acme.pdf"
    pdf.write_bytes(contract_pdf(law="Delaware"))
    result = run_json(capsys, "clauses", "extract", str(pdf), "--json")
    [contract] = result["contracts"]
    assert (contract["doc"], contract["pages"]) == ("acme.pdf", 3)
    assert result["pages_per_s"] > 0
    for clause in contract["clauses"]:
        assert set(clause) == {"category", "text", "page", "value", "confidence"}
        assert clause["category"] in CATEGORIES
    law = [c for c in contract["clauses"] if c["category"] == "Governing Law"]
    assert [(c["value"], c["page"]) for c in law] == [("Delaware", GOVERNING_LAW_PAGE)]


def test_extract_a_bad_file_is_an_error(tmp_path: Path, capsys):
    bad = tmp_path / "notes.pdf"
    bad.write_bytes(b"not a pdf")
    assert main(["clauses", "extract", str(bad)]) == 2
    assert "notes.pdf" in capsys.readouterr().err


def test_eval_json_on_a_small_set(tmp_path: Path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "acme.pdf").write_bytes(contract_pdf(law="Ohio"))
    gold = {
        "Governing Law": (
            "This Agreement shall be governed by and construed in accordance with the laws of the "
            "State of Ohio, without regard to its conflict of laws principles.",
            GOVERNING_LAW_PAGE,
        ),
        "Parties": ("Acme Robotics, Inc.", 1),
        "Audit Rights": None,
    }
    lines = []
    for category, span in gold.items():
        texts, pages = ([span[0]], [span[1]]) if span else ([], [])
        row = {"doc": "acme.pdf", "category": category, "texts": texts, "pages": pages}
        lines.append(json.dumps(row))
    (tmp_path / "clauses.jsonl").write_text("\n".join(lines) + "\n")

    result = run_json(capsys, "clauses", "eval", str(tmp_path), "--json")
    assert set(result["micro"]) == {"precision", "recall", "f1"}
    assert result["per_category"]["Governing Law"]["recall"] == 1.0
    assert result["per_category"]["Parties"]["recall"] == 1.0
    assert result["per_category"]["Governing Law"]["support"] == 1
    assert result["page_accuracy"] == 1.0
    assert result["pages_per_s"] > 0
    assert set(result["baseline"]["micro"]) == {"precision", "recall", "f1"}


def test_eval_needs_a_clause_set(tmp_path: Path, capsys):
    assert main(["clauses", "eval", str(tmp_path)]) == 2
    assert "clauses.jsonl" in capsys.readouterr().err


def test_train_builds_a_loadable_model_reproducibly(tmp_path: Path, capsys):
    contracts = []
    for i, law in enumerate(["New York", "Ohio", "Texas", "Utah", "Iowa", "Maine"]):
        text = "\n\n".join(supply_agreement(law=law, buyer=f"Buyer {i} Inc."))
        clauses = {category: [] for category in CATEGORIES}
        sentence = "This Agreement shall be governed by"
        start = text.index(sentence)
        end = text.index("principles.", start) + len("principles.")
        clauses["Governing Law"] = [{"text": text[start:end], "start": start}]
        contracts.append({"doc": f"c{i}", "text": text, "clauses": clauses})
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "contracts.jsonl").write_text(
        "\n".join(json.dumps(c) for c in contracts) + "\n"
    )
    outputs = []
    for name in ("a.npz", "b.npz"):
        out = tmp_path / name
        result = run_json(
            capsys,
            "clauses",
            "train",
            str(tmp_path / "train"),
            "--out",
            str(out),
            "--folds",
            "2",
            "--json",
        )
        assert result["contracts"] == 6 and result["bytes"] == out.stat().st_size
        outputs.append(ClauseModel.load(out))
    first, second = outputs
    assert first.categories == CATEGORIES
    assert first.words.vocabulary == second.words.vocabulary
    assert (first.coef == second.coef).all() and (first.thresholds == second.thresholds).all()


def test_list_stored_records(desk, monkeypatch: pytest.MonkeyPatch, capsys):
    from knowledge.desk.ingestion import Upload

    desk.ingest([Upload("acme.pdf", contract_pdf(law="Utah"))], "Contracts")
    monkeypatch.setenv("KDESK_DATA_DIR", str(desk.settings.data_dir))
    monkeypatch.setenv("KDESK_MODEL_BACKEND", "ollama")
    result = run_json(capsys, "clauses", "list", "--category", "Governing Law", "--json")
    [record] = result["clauses"]
    assert (record["doc"], record["value"], record["page"], record["status"]) == (
        "acme.pdf", "Utah", GOVERNING_LAW_PAGE, "extracted",
    )  # fmt: skip
    assert run_json(capsys, "clauses", "list", "--value", "Ohio", "--json") == {"clauses": []}
