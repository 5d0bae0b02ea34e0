"""The CLI contract that scripts and monitoring rely on: commands, JSON shapes, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.assistant.evidence import SIGNAL_NAMES, EvidenceModel
from knowledge.cli.main import main
from tests.fake_ollama import FakeOllama
from tests.pdfs import make_pdf

POLICY = [
    "Expenses Policy\n\nExpense claims must be submitted within 30 days with itemised receipts.",
    "Hotels\n\nHotel rooms are limited to 180 euros per night in capital cities.",
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    with FakeOllama(
        "Hotel rooms are limited to 180 euros per night in capital cities [1].", models=["test:1b"]
    ) as server:
        monkeypatch.setenv("KDESK_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("KDESK_MODEL_BACKEND", "ollama")
        monkeypatch.setenv("KDESK_OLLAMA_HOST", server.url)
        monkeypatch.setenv("KDESK_OLLAMA_MODEL", "test:1b")
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {"text": out}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "expenses.pdf").write_bytes(make_pdf(POLICY, title="Expenses Policy"))
    return folder


def test_ingest_search_ask_json_contract(env, docs, tmp_path, capsys):
    (docs / "broken.pdf").write_bytes(b"this is not a pdf")
    code, out = run(capsys, "ingest", str(docs), "--collection", "Finance", "--json")
    assert code == 1  # one file failed
    by_name = {r["file_name"]: r for r in out["reports"]}
    assert by_name["expenses.pdf"]["status"] == "added" and by_name["expenses.pdf"]["pages"] == 2
    assert (
        by_name["broken.pdf"]["status"] == "failed"
        and "not a PDF" in by_name["broken.pdf"]["reason"]
    )

    # the search indexes were built and saved where the change happened, for the app to load
    assert list((tmp_path / "data" / "indexes").glob("*/rev-*/manifest.json"))

    code, out = run(capsys, "search", "hotel limit per night", "--json", "-k", "2")
    assert code == 0
    [first, *_] = out["results"]
    assert set(first) == {"doc", "page", "page_end", "location", "ocr", "text", "score"}
    assert first["doc"] == "expenses.pdf" and first["page"] <= 2 <= first["page_end"]
    assert first["location"] == f"p. {first['page']}" and first["ocr"] is False

    code, out = run(capsys, "ask", "What is the hotel limit per night in capital cities?", "--json")
    assert code == 0
    assert {"answer", "abstained", "model", "citations"} <= set(out)
    assert not out["abstained"] and "180 euros" in out["answer"]
    assert out["model"] == "ollama · test:1b"
    [citation] = out["citations"]
    assert set(citation) >= {"n", "doc", "page", "text", "score"}
    assert citation["doc"] == "expenses.pdf" and citation["page"] == 2


def test_collection_filter_on_search(env, docs, capsys):
    run(capsys, "ingest", str(docs), "--collection", "Finance")
    code, out = run(capsys, "search", "hotel", "--collection", "Other", "--json")
    assert code == 0 and out["results"] == []


def test_eval_reports_figures_for_both_pipelines(env, docs, tmp_path, capsys):
    dataset = tmp_path / "set"
    dataset.mkdir()
    (dataset / "docs").symlink_to(docs)
    questions = [
        {
            "id": "1",
            "question": "How much may a hotel room cost per night in a capital?",
            "answer": "180 euros",
            "evidence": [{"doc": "expenses.pdf", "page": 2, "text": None}],
        },
        {
            "id": "2",
            "question": "When must expense claims be submitted?",
            "answer": "30 days",
            "evidence": [{"doc": "expenses.pdf", "page": None, "text": None}],
        },
    ]
    (dataset / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in questions))
    details = tmp_path / "details.jsonl"
    for pipeline in ("default", "naive"):
        code, out = run(
            capsys,
            "eval",
            str(dataset),
            "--json",
            "--pipeline",
            pipeline,
            "--details",
            str(details),
        )
        assert code == 0
        assert out["questions"] == 2 and out["k"] == 5
        assert out["doc_hit_at_k"] == 1.0 and out["page_hit_at_k"] == 1.0 and out["mrr"] > 0.5
        assert set(out["latency_ms"]) == {"p50", "p95"}
        assert set(out["by_k"]) == {"1", "3", "5", "10"}
        lines = [json.loads(x) for x in details.read_text().splitlines()]
        assert [x["id"] for x in lines] == ["1", "2"]
        assert set(lines[0]["results"][0]) == {"doc", "page", "page_end", "chars", "score"}
        assert out["pipeline"] == pipeline and "naive" not in out


def test_eval_both_puts_the_baseline_beside_every_figure(env, docs, tmp_path, capsys):
    dataset = tmp_path / "set"
    dataset.mkdir()
    (dataset / "docs").symlink_to(docs)
    question = {
        "id": "1",
        "question": "How much may a hotel room cost per night in a capital?",
        "evidence": [{"doc": "expenses.pdf", "page": 2, "text": None}],
    }
    (dataset / "questions.jsonl").write_text(json.dumps(question))
    details = tmp_path / "out" / "details.jsonl"
    code, out = run(
        capsys, "eval", str(dataset), "--json", "--pipeline", "both", "--details", str(details)
    )
    assert code == 0
    assert out["pipeline"] == "default" and out["naive"]["pipeline"] == "naive"
    for summary in (out, out["naive"]):
        assert summary["questions"] == 1 and summary["page_hit_at_k"] == 1.0
        assert set(summary["by_k"]) == {"1", "3", "5", "10"}
    naive_lines = (tmp_path / "out" / "details.naive.jsonl").read_text().splitlines()
    assert len(details.read_text().splitlines()) == len(naive_lines) == 1


def test_bad_input_gets_a_clear_error(env, tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nowhere"), "--json"]) == 2
    assert "not a dataset" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "empty-folder-that-does-not-exist")]) in (1, 2)


def test_bad_settings_name_the_variable(env, monkeypatch, capsys):
    monkeypatch.setenv("KDESK_TOP_K", "0")
    assert main(["search", "anything"]) == 2
    assert "KDESK_TOP_K" in capsys.readouterr().err


SECURITY = [
    "IT Security Policy\n\nPasswords must be at least 14 characters long.",
    "Lost laptops must be reported to the security team within one hour.",
]
HOTEL_QUESTION = "What is the hotel limit per night in capital cities?"


def test_ingest_tags_and_search_ask_filters(env, docs, tmp_path, capsys):
    code, out = run(
        capsys,
        "ingest",
        str(docs),
        "--collection",
        "Finance",
        "--tag",
        "Travel ",
        "--tag",
        "travel",
        "--tag",
        "Finance",
        "--json",
    )
    assert code == 0 and out["reports"][0]["tags"] == ["travel", "finance"]
    security = tmp_path / "security.pdf"
    security.write_bytes(make_pdf(SECURITY, title="Security Policy"))
    code, out = run(capsys, "ingest", str(security), "--collection", "IT", "--tag", "IT", "--json")
    assert code == 0 and out["reports"][0]["tags"] == ["it"]

    def found(*flags: str) -> set[str]:
        code, out = run(capsys, "search", HOTEL_QUESTION, "--json", *flags)
        assert code == 0
        keys = {"doc", "page", "page_end", "location", "ocr", "text", "score"}
        assert all(set(r) == keys for r in out["results"])
        return {r["doc"] for r in out["results"]}

    assert found() == {"expenses.pdf", "security.pdf"}
    assert found("--tag", "IT") == {"security.pdf"}
    assert found("--tag", "travel", "--tag", "it") == {"expenses.pdf", "security.pdf"}
    assert found("--doc", "security.pdf") == {"security.pdf"}
    assert found("--doc", "security.pdf", "--tag", "travel") == set(), "every flag must hold"
    assert found("--since", "2000-01-01", "--until", "2999-12-31") == {
        "expenses.pdf",
        "security.pdf",
    }
    assert found("--until", "2000-01-01") == set()

    code, out = run(capsys, "ask", HOTEL_QUESTION, "--tag", "travel", "--json")
    assert code == 0 and not out["abstained"] and "180 euros" in out["answer"]
    assert {c["doc"] for c in out["citations"]} == {"expenses.pdf"}
    code, out = run(capsys, "ask", HOTEL_QUESTION, "--tag", "no such tag", "--json")
    assert code == 0 and out["abstained"] and out["citations"] == []


def test_bad_filters_and_tags_get_a_clear_error(env, docs, capsys):
    assert main(["search", "hotel", "--since", "2024-02-30"]) == 2
    assert "--since: '2024-02-30' is not a date (YYYY-MM-DD)" in capsys.readouterr().err
    assert main(["ask", "What is the hotel limit?", "--until", "yesterday"]) == 2
    assert "--until: 'yesterday' is not a date" in capsys.readouterr().err
    assert main(["search", "hotel", "--since", "2024-03-01", "--until", "2024-02-01"]) == 2
    assert "comes after the last day" in capsys.readouterr().err
    assert main(["ingest", str(docs), "--tag", "x" * 41]) == 2
    assert "limited to 40 characters" in capsys.readouterr().err
    code, out = run(capsys, "search", "hotel", "--json")
    assert code == 0 and out["results"] == [], "the refused ingest stored nothing"


def _dataset(root: Path, name: str, pdf: bytes, questions: list[str]) -> Path:
    folder = root / name
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / f"{name}.pdf").write_bytes(pdf)
    lines = [
        {"id": str(i), "question": q, "evidence": [{"doc": f"{name}.pdf", "page": None}]}
        for i, q in enumerate(questions)
    ]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    return folder


def test_calibrate_trains_the_evidence_model_on_easy_and_hard_negatives(env, tmp_path, capsys):
    expenses = _dataset(
        tmp_path,
        "expenses",
        make_pdf(POLICY, title="Expenses Policy"),
        ["When must expense claims be submitted?", "What is the hotel limit per night?"],
    )
    security = _dataset(
        tmp_path,
        "security",
        make_pdf(["Passwords must be at least 14 characters.", "Report lost laptops in an hour."]),
        ["How long must a password be?", "When must a lost laptop be reported?"],
    )
    hard = tmp_path / "unanswerable.jsonl"
    hard.write_text(json.dumps({"dataset": "expenses", "question": "Is there a gym allowance?"}))
    model_file = tmp_path / "evidence.npz"
    code, out = run(
        capsys,
        "calibrate",
        str(expenses),
        str(security),
        "--unanswerable",
        str(hard),
        "--out",
        str(model_file),
    )
    assert code == 0
    figures = out["sets"]["expenses"]
    assert figures["answerable"] == 2 and figures["cross"]["questions"] == 2
    assert figures["hard"]["questions"] == 1
    assert out["sets"]["all"]["cross"]["auc"] > 0.9  # own documents beat the other set's
    low, high = out["operating_point"]["abstain_below"], out["operating_point"]["weak_below"]
    assert 0 <= low <= high <= 1
    assert set(out["top_cosine_baseline"]["expenses"]) == {"cross", "hard"}
    saved = EvidenceModel.load(model_file)  # the trained model is what the desk then reads
    assert (saved.abstain_below, saved.weak_below) == (low, high)
    assert set(out["weights"]) == set(SIGNAL_NAMES)

    hard.write_text(json.dumps({"dataset": "nowhere", "question": "?"}))
    assert main(["calibrate", str(expenses), str(security), "--unanswerable", str(hard)]) == 2
    assert "'nowhere' is not among those given" in capsys.readouterr().err


def test_eval_answers_scores_citations_and_abstentions(env, tmp_path, capsys):
    folder = tmp_path / "hotels"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "expenses.pdf").write_bytes(make_pdf(POLICY, title="Expenses Policy"))
    lines = [
        {
            "id": "a1",
            "question": "What is the hotel limit per night?",
            "answer": "180 euros per night in capital cities.",
            "evidence": [{"doc": "expenses.pdf", "page": 2, "text": "Hotel rooms are limited"}],
        },
        {
            "id": "u1",
            "question": "Can I bring my dog to the office?",
            "answer": None,
            "evidence": [],
        },
    ]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    details = tmp_path / "answers.jsonl"
    code, out = run(capsys, "eval", str(folder), "--answers", "--json", "--details", str(details))
    assert code == 0
    assert (out["answerable"], out["unanswerable"]) == (1, 1)
    assert out["cited_hit"] == 1.0 and out["false_abstentions"] == 0.0
    assert out["gold_figures"] == 1.0  # the answer carries "180"
    assert out["abstained_unanswerable"] == 1.0
    assert set(out["total_ms"]) == {"p50", "p95"} and out["model"].startswith("ollama")
    rows = [json.loads(line) for line in details.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a1", "u1"]
    assert rows[0]["citations"][0][0] == "expenses.pdf" and rows[1]["abstained"]
    assert set(rows[0]["signals"]) >= {"best_sentence", "coverage"}


def test_ingest_a_folder_of_office_and_markdown_files(env, docs, capsys):
    from tests.office_files import make_docx

    handbook = make_docx([("h1", "Remote Work"), ("p", "Remote work is allowed two days a week.")])
    (docs / "handbook.docx").write_bytes(handbook)
    (docs / "onboarding.md").write_text(
        "# Onboarding\n\nNew starters meet their buddy on Monday.\n"
    )
    (docs / "installer.exe").write_bytes(b"MZ not a document")  # not picked up from a folder
    code, out = run(capsys, "ingest", str(docs), "--collection", "Mixed", "--json")
    assert code == 0
    statuses = {r["file_name"]: r["status"] for r in out["reports"]}
    assert statuses == {"expenses.pdf": "added", "handbook.docx": "added", "onboarding.md": "added"}
    code, out = run(capsys, "search", "When do new starters meet their buddy?", "--json", "-k", "1")
    assert code == 0 and out["results"][0]["doc"] == "onboarding.md"
    code, out = run(capsys, "search", "How many days of remote work?", "-k", "1")
    assert code == 0 and out["text"].startswith("[1] handbook.docx Remote Work (score ")

    # a file named on the command line is tried whatever its type, and refused clearly
    code, out = run(
        capsys, "ingest", str(docs / "installer.exe"), "--collection", "Mixed", "--json"
    )
    assert code == 1
    [report] = out["reports"]
    assert report["status"] == "failed" and "not supported" in report["reason"]
