"""`kdesk sync`: a folder mirrored into a collection incrementally, by file name and the sha256
of the bytes, under a lock so two runs never overlap."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from knowledge.desk.root import Desk
from knowledge.desk.sync import lock_path, plan_sync, run_sync, sync_folder
from tests.pdfs import make_pdf


def pdf(topic: str) -> bytes:
    return make_pdf(
        [f"{topic}\n\nThe {topic.lower()} policy applies to every employee of the company."],
        title=topic,
    )


@pytest.fixture
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    (folder / "hr").mkdir(parents=True)
    (folder / "travel.pdf").write_bytes(pdf("Travel"))
    (folder / "hr" / "leave.pdf").write_bytes(pdf("Leave"))
    (folder / "setup.exe").write_bytes(b"MZ not a document, not synced")
    return folder


def outcomes(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.file_name: f.outcome for f in result.files}


def test_a_folder_is_mirrored_incrementally(
    desk: Desk, share: Path, monkeypatch: pytest.MonkeyPatch
):
    first = sync_folder(desk, share, "Policies")
    assert outcomes(first) == {"leave.pdf": "added", "travel.pdf": "added"}
    assert first.counts["added"] == 2 and not first.failed
    owners = {j.owner for j in desk.jobs.recent()}
    assert len(owners) == 1 and owners.pop().startswith("sync:")
    stored = {d.file_name: d for d in desk.store.documents(["Policies"])}
    assert set(stored) == {"leave.pdf", "travel.pdf"}

    # nothing changed: every file is hashed, none read for ingestion, no job made
    jobs_before = len(desk.jobs.recent())
    monkeypatch.setattr(desk, "read_files", lambda *a, **k: pytest.fail("read for ingestion"))
    monkeypatch.setattr(desk, "submit", lambda *a, **k: pytest.fail("submitted"))
    again = sync_folder(desk, share, "Policies")
    assert outcomes(again) == {"leave.pdf": "unchanged", "travel.pdf": "unchanged"}
    assert len(desk.jobs.recent()) == jobs_before
    monkeypatch.undo()

    (share / "travel.pdf").write_bytes(pdf("Trains"))  # changed
    (share / "hr" / "remote.pdf").write_bytes(pdf("Remote work"))  # new
    (share / "hr" / "leave.pdf").unlink()  # removed
    plan = plan_sync(desk, share, "Policies")
    assert {i.file_name: i.action for i in plan.items} == {
        "leave.pdf": "missing",
        "remote.pdf": "add",
        "travel.pdf": "replace",
    }
    third = run_sync(desk, plan)
    assert outcomes(third) == {
        "leave.pdf": "missing",
        "remote.pdf": "added",
        "travel.pdf": "replaced",
    }
    assert third.counts == {
        "added": 1,
        "replaced": 1,
        "unchanged": 0,
        "deleted": 0,
        "missing": 1,
        "failed": 0,
        "duplicate": 0,
    }
    names = {d.file_name for d in desk.store.documents(["Policies"])}
    assert names == {"leave.pdf", "remote.pdf", "travel.pdf"}, "missing is kept without delete"
    travel = desk.store.find_document("Policies", "travel.pdf")
    assert travel is not None and travel.doc_id == stored["travel.pdf"].doc_id
    assert travel.sha256 != stored["travel.pdf"].sha256

    fourth = sync_folder(desk, share, "Policies", delete=True)
    assert outcomes(fourth) == {
        "leave.pdf": "deleted",
        "remote.pdf": "unchanged",
        "travel.pdf": "unchanged",
    }
    assert {d.file_name for d in desk.store.documents(["Policies"])} == {
        "remote.pdf",
        "travel.pdf",
    }


def test_copies_and_clashing_names_are_not_ingested_at_every_run(desk: Desk, share: Path):
    (share / "leave-copy.pdf").write_bytes((share / "hr" / "leave.pdf").read_bytes())
    (share / "travel.pdf").rename(share / "hr" / "travel.pdf")
    (share / "travel.pdf").write_bytes(pdf("Other travel"))  # a second file of that name
    first = sync_folder(desk, share, "Policies")
    copies = {n: o for n, o in outcomes(first).items() if n.startswith("leave")}
    assert sorted(copies.values()) == ["added", "duplicate"]
    clash = [f for f in first.files if f.outcome == "failed"]
    assert [f.path for f in clash] == [str(share / "travel.pdf")]
    assert clash[0].reason and "another file of this name" in clash[0].reason
    assert first.failed
    jobs_before = len(desk.jobs.recent())
    again = sync_folder(desk, share, "Policies")
    expected = {n: "unchanged" if o == "added" else o for n, o in copies.items()}
    assert {n: o for n, o in outcomes(again).items() if n.startswith("leave")} == expected
    assert len(desk.jobs.recent()) == jobs_before, "the copy is known by its hash"


def test_kdesk_sync_json_lock_and_bad_folder(
    desk: Desk,
    share: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    from knowledge.cli import common
    from knowledge.cli.main import main

    monkeypatch.setattr(common, "open_desk", lambda: desk)
    assert main(["sync", str(share), "--collection", "Policies", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["collection"] == "Policies" and out["counts"]["added"] == 2
    files = {f["file_name"]: f for f in out["files"]}
    assert files["travel.pdf"]["outcome"] == "added" and files["travel.pdf"]["job_id"]
    assert files["leave.pdf"]["path"] == str(share / "hr" / "leave.pdf")

    assert main(["sync", str(share), "--collection", "Policies"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert "0 added" in summary and "2 unchanged" in summary and "0 missing" in summary

    lock = lock_path(desk, "Policies")
    with lock.open("a") as held:  # another run holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["sync", str(share), "--collection", "Policies"]) == 3
        captured = capsys.readouterr()
        assert "Another sync of collection 'Policies' is running" in captured.err
        assert captured.out == ""
    assert main(["sync", str(share), "--collection", "Policies", "--json"]) == 0, "released"
    capsys.readouterr()

    assert main(["sync", str(tmp_path / "nowhere"), "--collection", "Policies"]) == 2
    assert "No such folder" in capsys.readouterr().err
    (tmp_path / "unmounted").mkdir()
    assert main(["sync", str(tmp_path / "unmounted"), "--collection", "Policies", "--delete"]) == 2
    assert "is the share mounted?" in capsys.readouterr().err
    assert len(desk.store.documents(["Policies"])) == 2, "nothing deleted"

    (share / "broken.pdf").write_bytes(b"not really a PDF")
    assert main(["sync", str(share), "--collection", "Policies", "--json"]) == 1
    broken = {f["file_name"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert broken["broken.pdf"]["outcome"] == "failed" and broken["broken.pdf"]["reason"]


def test_sync_picks_up_documents_of_every_supported_format(desk: Desk, share: Path):
    from tests.office_files import make_docx

    handbook = make_docx([("h1", "Remote Work"), ("p", "Remote work is allowed two days a week.")])
    (share / "hr" / "handbook.docx").write_bytes(handbook)
    (share / "onboarding.md").write_text("# Onboarding\n\nNew starters meet their buddy.\n")
    first = sync_folder(desk, share, "Policies")
    assert outcomes(first) == {
        "handbook.docx": "added",
        "leave.pdf": "added",
        "onboarding.md": "added",
        "travel.pdf": "added",
    }  # and setup.exe is not a document
    assert desk.search("remote work days", ["Policies"], 1)[0].chunk.file_name == "handbook.docx"
    again = sync_folder(desk, share, "Policies")
    assert set(outcomes(again).values()) == {"unchanged"}
