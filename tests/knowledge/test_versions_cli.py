"""`kdesk ingest --supersedes`, `kdesk docs versions|supersede|unlink|diff` and
`--include-earlier`."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.cli.main import main
from tests.knowledge.test_cli import env, run  # noqa: F401 - the CLI tests' environment
from tests.pdfs import make_pdf

QUESTION = "How much is the hotel limit per night in capital cities?"


def policy(euros: int, year: int) -> bytes:
    return make_pdf(
        [
            f"Hotels\n\nHotel rooms are limited to {euros} euros per night in capital cities.",
            "Claims\n\nExpense claims must be submitted within 30 days with itemised receipts.",
        ],
        title=f"Travel Policy {year}",
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "travel-2024.pdf", tmp_path / "travel-2025.pdf"
    old.write_bytes(policy(150, 2024))
    new.write_bytes(policy(180, 2025))
    return old, new


def searched(capsys, *flags: str) -> set[str]:
    code, out = run(capsys, "search", QUESTION, "--json", "-k", "10", *flags)
    assert code == 0
    return {r["doc"] for r in out["results"]}


def test_ingest_with_supersedes_then_versions_diff_and_unlink(env, files, capsys):  # noqa: F811
    old, new = files
    code, out = run(capsys, "ingest", str(old), "--collection", "Travel", "--json")
    assert code == 0
    code, out = run(
        capsys,
        "ingest",
        str(new),
        "--collection",
        "Travel",
        "--supersedes",
        "travel-2024.pdf",
        "--json",
    )
    [report] = out["reports"]
    assert (
        code == 0 and report["supersedes"] and "new version of travel-2024.pdf" in report["reason"]
    )
    assert searched(capsys) == {"travel-2025.pdf"}
    assert "travel-2024.pdf" in searched(capsys, "--include-earlier")
    assert "travel-2024.pdf" in searched(capsys, "--doc", "travel-2024.pdf")

    code, out = run(capsys, "docs", "versions", "travel-2024.pdf", "--json")
    assert code == 0
    assert [(v["file"], v["current"]) for v in out["versions"]] == [
        ("travel-2024.pdf", False),
        ("travel-2025.pdf", True),
    ]
    code, out = run(capsys, "docs", "diff", "travel-2024.pdf", "travel-2025.pdf")
    assert code == 0 and "changed  Hotels" in out["text"]
    assert "- Hotel rooms are limited to 150 euros" in out["text"]
    assert "+ Hotel rooms are limited to 180 euros" in out["text"]

    code, out = run(capsys, "docs", "unlink", "travel-2025.pdf")
    assert code == 0 and "no longer supersedes travel-2024.pdf" in out["text"]
    assert "travel-2024.pdf" in searched(capsys)


def test_proposal_then_supersede_and_clear_errors(env, files, capsys):  # noqa: F811
    old, new = files
    run(capsys, "ingest", str(old), "--collection", "Travel", "--json")
    code, out = run(capsys, "ingest", str(new), "--collection", "Travel", "--json")
    [report] = out["reports"]
    assert "looks like a new version of travel-2024.pdf" in report["reason"]
    assert report["proposed_supersedes"] and not report["supersedes"]
    code, out = run(capsys, "docs", "supersede", "travel-2025.pdf", "travel-2024.pdf")
    assert code == 0 and "new version of travel-2024.pdf" in out["text"]
    assert searched(capsys) == {"travel-2025.pdf"}
    assert refused(capsys, "docs", "supersede", "travel-2024.pdf", "travel-2025.pdf") == (
        "error: travel-2024.pdf is an earlier version of travel-2025.pdf: it cannot supersede it."
    )
    assert "No document 'missing.pdf'" in refused(capsys, "docs", "versions", "missing.pdf")
    assert "--supersedes takes one file" in refused(
        capsys, "ingest", str(old), str(new), "--supersedes", "travel-2024.pdf"
    )
    assert [
        v["file"]
        for v in run(capsys, "docs", "versions", "travel-2025.pdf", "--json")[1]["versions"]
    ] == ["travel-2024.pdf", "travel-2025.pdf"]


def refused(capsys, *argv: str) -> str:
    """The error line of a command that must exit 2."""
    assert main(list(argv)) == 2
    return capsys.readouterr().err.strip().splitlines()[-1]
