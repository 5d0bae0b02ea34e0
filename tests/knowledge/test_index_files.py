"""Search indexes saved in the indexes directory and shared by the processes on the data
directory (app replicas, workers): loaded rather than built, identical to freshly built ones,
refreshed in the background without making a request wait, never read half-written."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.search import index_files
from knowledge.search.indexes import MemoryIndexes
from tests.pdfs import make_pdf

LEAVE = [
    "Annual Leave Policy\n\nEmployees receive 25 days of annual leave per calendar year.",
    "Carry-over\n\nUp to five unused days may be carried over into the first quarter.",
]
EXPENSES = [
    "Expenses Policy\n\nMeals are reimbursed up to 40 euros per day on business travel.",
    "Claims\n\nExpense claims are submitted within 30 days, with itemised receipts.",
]
VPN = ["Remote Access\n\nThe quokka VPN must be used on every public network."]
VPN_QUESTION = "Which VPN must be used on public networks?"


def upload(name: str, pages: list[str], title: str) -> Upload:
    return Upload(name, make_pdf(pages, title=title))


def files_of(desk: Desk, question: str) -> set[str]:
    return {r.chunk.file_name for r in desk.search(question, ["HR"], 5)}


def wait_until(condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    """Poll until the condition holds (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def hr(desk: Desk) -> Desk:
    desk.ingest(
        [upload("leave.pdf", LEAVE, "Leave Policy"), upload("expenses.pdf", EXPENSES, "Expenses")],
        "HR",
        prepare_search=True,
    )
    return desk


@pytest.fixture
def replica(hr: Desk, settings: Settings, embedder, model) -> Iterator[Desk]:
    """Another app process on the same database and data directory."""
    other = Desk(
        settings.model_copy(update={"index_refresh_s": 0.05}), embedder=embedder, model=model
    )
    try:
        yield other
    finally:
        other.stop_background()


def test_saved_and_loaded_indexes_answer_like_freshly_built_ones(hr: Desk, tmp_path: Path):
    store = hr.store
    fresh = MemoryIndexes(store)  # in this process only, as before
    fresh.prepare("HR")
    MemoryIndexes(store, directory=tmp_path).prepare("HR")  # built and saved
    loaded = MemoryIndexes(store, directory=tmp_path)
    loaded.prepare("HR")
    assert loaded.made == {"loaded": 1} and fresh.made == {"built": 1}
    assert isinstance(loaded._indexes["HR"].vectors, np.memmap)  # mapped, not read whole

    vector = hr.embedder.embed_query("How many days of annual leave?")
    docs = [d.doc_id for d in store.documents(["HR"])]
    for text in ("annual leave days", "expense claims receipts", "nothing matches zzz"):
        assert loaded.query("HR", text, 5) == fresh.query("HR", text, 5)
        assert loaded.query("HR", text, 5, docs[:1]) == fresh.query("HR", text, 5, docs[:1])
        assert loaded.document_scores("HR", text) == fresh.document_scores("HR", text)
    assert loaded.vector_query("HR", vector, 3) == fresh.vector_query("HR", vector, 3)
    assert loaded.vector_query("HR", vector, 3, docs[1:]) == fresh.vector_query(
        "HR", vector, 3, docs[1:]
    )
    assert loaded.term_frequency("HR") == fresh.term_frequency("HR")
    ids = [c.id for c in store.collection_chunks("HR")]
    held, read = loaded.vectors_of("HR", ids), fresh.vectors_of("HR", ids)
    assert set(held) == set(read) and all(np.array_equal(held[i], read[i]) for i in ids)


def test_a_second_desk_on_the_same_data_loads_rather_than_builds(hr: Desk, replica: Desk):
    assert hr.retriever.keywords.made == {"built": 1}  # where the change happened
    before = REGISTRY.get_sample_value("kdesk_index_loads_total", {"how": "loaded"}) or 0
    assert files_of(replica, "How many days of annual leave?") >= {"leave.pdf"}
    assert replica.retriever.keywords.made == {"loaded": 1}
    after = REGISTRY.get_sample_value("kdesk_index_loads_total", {"how": "loaded"})
    assert after == before + 1


def test_a_refreshing_replica_serves_the_held_index_while_the_new_one_builds(
    hr: Desk, replica: Desk, monkeypatch
):
    assert "vpn.pdf" not in files_of(replica, VPN_QUESTION)  # holds the current revision
    keywords = replica.retriever.keywords
    started, gate = threading.Event(), threading.Event()
    build = keywords._build

    def slow_build(*args, **kwargs):
        started.set()
        assert gate.wait(60)
        return build(*args, **kwargs)

    monkeypatch.setattr(keywords, "_build", slow_build)
    replica.start_background()
    hr.ingest([upload("vpn.pdf", VPN, "Remote Access")], "HR")  # nothing saved: built there
    assert started.wait(30)  # the refresher noticed the change and builds in the background
    # ...while requests are answered from the held index, without waiting for the build
    assert "vpn.pdf" not in files_of(replica, VPN_QUESTION)
    assert "leave.pdf" in files_of(replica, "How many days of annual leave?")
    gate.set()
    assert wait_until(lambda: "vpn.pdf" in files_of(replica, VPN_QUESTION))
    assert keywords.made == {"loaded": 1, "built": 1}


def test_a_deleted_document_never_comes_from_a_stale_index(hr: Desk, replica: Desk, monkeypatch):
    assert "expenses.pdf" in files_of(replica, "When are expense claims submitted?")
    keywords = replica.retriever.keywords
    gate = threading.Event()
    build = keywords._build
    monkeypatch.setattr(keywords, "_build", lambda *a, **k: gate.wait(60) and build(*a, **k))
    replica.start_background()
    [doc] = [d for d in hr.store.documents(["HR"]) if d.file_name == "expenses.pdf"]
    hr.store.delete_document(doc.doc_id)  # nothing saved: the replica has to build
    try:
        held = keywords._indexes["HR"]
        assert doc.doc_id in set(held.doc_ids)  # the index served still has it...
        for question in ("When are expense claims submitted?", "Expenses Policy meals"):
            assert "expenses.pdf" not in files_of(replica, question)  # ...its chunks do not
        names = replica.search("What does the Expenses policy say?", ["HR"], 5)
        assert all(r.chunk.doc_id != doc.doc_id for r in names)
    finally:
        gate.set()


def test_a_replica_waits_for_the_indexes_of_the_process_that_changed_the_collection(
    hr: Desk, replica: Desk
):
    files_of(replica, VPN_QUESTION)
    replica.start_background()
    hr.ingest([upload("vpn.pdf", VPN, "Remote Access")], "HR", prepare_search=True)
    assert wait_until(lambda: "vpn.pdf" in files_of(replica, VPN_QUESTION))
    assert replica.retriever.keywords.made == {"loaded": 2}  # never built here
    assert hr.retriever.keywords.made == {"built": 2}


def test_a_cold_replica_warms_every_collection_from_disk(hr: Desk, replica: Desk):
    replica.start_background()
    assert wait_until(lambda: "HR" in replica.retriever.keywords._indexes)
    assert replica.retriever.keywords.made == {"loaded": 1}


def _folder(desk: Desk) -> Path:
    return index_files.collection_folder(desk.settings.indexes_dir, "HR")


def _fresh(desk: Desk) -> MemoryIndexes:
    return MemoryIndexes(desk.store, desk.settings.title_weight, desk.settings.indexes_dir)


@pytest.mark.parametrize(
    "damage",
    ["truncated matrix", "garbled vocabulary", "no manifest", "other format", "other weight"],
)
def test_broken_or_foreign_folders_are_rebuilt_and_replaced(hr: Desk, damage: str):
    revision = hr.store.revision("HR")
    folder = _folder(hr) / f"rev-{revision}"
    manifest = folder / "manifest.json"
    if damage == "truncated matrix":
        (folder / "chunks" / "data.csc.index.npy").write_bytes(b"\x93NUMPY")
    elif damage == "garbled vocabulary":
        (folder / "profiles" / "vocab.tokenizer.json").write_text("{not json")
    elif damage == "no manifest":  # as a writer that died before finishing
        manifest.unlink()
    else:
        meta = json.loads(manifest.read_text())
        meta["format" if damage == "other format" else "title_weight"] = 99
        manifest.write_text(json.dumps(meta))
    rebuilt = _fresh(hr)
    assert rebuilt.query("HR", "annual leave days", 3)
    assert rebuilt.made == {"built": 1}
    again = _fresh(hr)  # the folder was replaced by a good one
    again.prepare("HR")
    assert again.made == {"loaded": 1}


def test_temporary_folders_are_never_read(hr: Desk):
    revision = hr.store.revision("HR")
    folder = _folder(hr)
    (folder / f"rev-{revision}").rename(folder / f".tmp-rev-{revision}-deadbeef")
    fresh = _fresh(hr)
    fresh.prepare("HR")
    assert fresh.made == {"built": 1}
    assert index_files.revisions(folder) == [revision]


def test_two_processes_saving_the_same_revision_keep_one_good_folder(hr: Desk):
    index = hr.retriever.keywords._indexes["HR"]
    root = hr.settings.indexes_dir
    shutil.rmtree(_folder(hr) / f"rev-{index.revision}")
    errors: list[BaseException] = []

    def save() -> None:
        try:
            index_files.save(root, "HR", index, hr.settings.title_weight)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [p.name for p in _folder(hr).iterdir() if not p.name.startswith("rev-")] == []
    loaded = _fresh(hr)
    loaded.prepare("HR")
    assert loaded.made == {"loaded": 1}


def test_only_the_two_newest_revisions_are_kept(hr: Desk):
    for i in range(3):
        hr.ingest([upload(f"extra-{i}.pdf", [f"Extra page {i} about parking."], "Extra")], "HR")
        hr.retriever.keywords.prepare("HR")
    newest = hr.store.revision("HR")
    assert index_files.revisions(_folder(hr)) == [newest, newest - 1]


def test_without_an_indexes_dir_nothing_is_saved(hr: Desk, tmp_path: Path):
    indexes = MemoryIndexes(hr.store)
    indexes.prepare("HR")
    assert indexes.made == {"built": 1} and indexes.directory is None


def test_a_marker_of_a_dead_process_does_not_hold_replicas_back(hr: Desk):
    folder = _folder(hr)
    marker = folder / "building-dead.json"
    marker.write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 7}))
    assert not index_files.someone_building(hr.settings.indexes_dir, "HR")
    assert not marker.exists()
    with index_files.building(hr.settings.indexes_dir, "HR"):
        assert index_files.someone_building(hr.settings.indexes_dir, "HR")
    assert not index_files.someone_building(hr.settings.indexes_dir, "HR")


def test_revisions_above_the_collections_own_are_pruned(hr: Desk):
    """A collection deleted and made again under the same name counts from 0 again: the
    folders of the old one (higher numbers) must not outrank it."""
    folder = _folder(hr)
    current = hr.store.revision("HR")
    shutil.copytree(folder / f"rev-{current}", folder / f"rev-{current + 50}")
    hr.ingest([upload("vpn.pdf", VPN, "Remote Access")], "HR", prepare_search=True)
    assert index_files.revisions(folder) == [current + 1, current]


# Incremental rebuilds: token ids kept per chunk, only new chunks read and tokenized ----------

QUESTIONS = (
    "annual leave days",
    "expense claims receipts meals",
    "quokka VPN public network",
    "parental leave weeks",
    "nothing matches zzz",
)


def assert_same_answers(built: MemoryIndexes, full: MemoryIndexes, store) -> None:
    docs = [d.doc_id for d in store.documents(["HR"])]
    for text in QUESTIONS:
        assert built.query("HR", text, 10) == full.query("HR", text, 10)
        assert built.query("HR", text, 10, docs[:1]) == full.query("HR", text, 10, docs[:1])
        assert built.document_scores("HR", text) == full.document_scores("HR", text)
    assert built.term_frequency("HR") == full.term_frequency("HR")
    refs = store.chunk_refs("HR")
    for vector in store.index.get_vectors("HR", [refs[0][0], refs[-1][0]]).values():
        assert built.vector_query("HR", vector, 5) == full.vector_query("HR", vector, 5)
        assert built.vector_query("HR", vector, 5, docs[1:]) == full.vector_query(
            "HR", vector, 5, docs[1:]
        )


def count_full_reads(monkeypatch, store) -> list[int]:
    calls: list[int] = []
    read = store.collection_chunks
    monkeypatch.setattr(store, "collection_chunks", lambda c: calls.append(1) or read(c))
    return calls


def test_the_bm25_builder_makes_the_scores_bm25s_makes(hr: Desk):
    import random

    import bm25s

    from knowledge.evaluation.bench import synthetic_page
    from knowledge.search import bm25_build
    from knowledge.search.texts import keyword_text

    rng = random.Random(3)
    texts = [keyword_text(c) for c in hr.store.collection_chunks("HR")]
    texts += [synthetic_page(rng, f"{i}. Heading") for i in range(300)] + ["", "the of and"]
    for corpus in (texts, texts[:-2]):  # with and without chunks that have no words
        tokenizer = bm25_build.new_tokenizer()
        ids = tokenizer.tokenize(corpus, return_as="ids", show_progress=False)
        reference = bm25s.BM25()
        reference.index(ids, show_progress=False)
        built = bm25_build.build(bm25_build.from_lists(ids), len(tokenizer.get_vocab_dict()))
        for key in ("data", "indices", "indptr"):
            assert built.scores[key].dtype == reference.scores[key].dtype
            assert np.array_equal(built.scores[key], reference.scores[key]), key
        assert built.scores["num_docs"] == reference.scores["num_docs"]
        assert built.vocab_dict == reference.vocab_dict


def test_an_upload_replacement_and_deletion_update_the_index_like_a_full_build(
    hr: Desk, monkeypatch
):
    store, keywords = hr.store, hr.retriever.keywords
    assert keywords._indexes["HR"].tokens is not None
    full_reads = count_full_reads(monkeypatch, store)
    leave = ["Annual Leave Policy\n\nEmployees receive 27 days; parental leave is 16 weeks."]
    changes = [
        lambda: hr.ingest([upload("vpn.pdf", VPN, "Remote Access")], "HR"),  # added
        lambda: hr.ingest([upload("leave.pdf", leave, "Leave Policy")], "HR"),  # replaced
        lambda: store.delete_document(store.find_document("HR", "expenses.pdf").doc_id),
    ]
    for change in changes:
        change()
        full_reads.clear()  # (the builds from scratch compared with below read them all)
        keywords.prepare("HR")
        assert full_reads == []  # only the new chunks were read (and tokenized)
        full = MemoryIndexes(store)  # from scratch, in this process only
        assert_same_answers(keywords, full, store)
        cold = _fresh(hr)  # another process: loads the saved incremental revision
        cold.prepare("HR")
        assert cold.made == {"loaded": 1}
        assert_same_answers(cold, full, store)
        held, loaded = keywords._indexes["HR"], cold._indexes["HR"]
        assert held.tokens is not None and loaded.tokens is not None
        assert np.array_equal(held.tokens.tokens, loaded.tokens.tokens)
        assert np.array_equal(held.tokens.offsets, loaded.tokens.offsets)
        assert loaded.tokenizer.get_vocab_dict() == held.tokenizer.get_vocab_dict()
    assert hr.retriever.keywords.made == {"built": 4}
    # the token ids kept are those of the chunks' texts (the vocabulary only grew)
    index = keywords._indexes["HR"]
    words = {i: w for w, i in index.tokenizer.get_vocab_dict().items()}
    fresh = bm25_tokenizer_words([c for c in store.collection_chunks("HR")])
    kept = [
        [
            words[int(t)]
            for t in index.tokens.tokens[index.tokens.offsets[r] : index.tokens.offsets[r + 1]]
        ]
        for r in range(len(index.ids))
    ]
    assert kept == fresh


def bm25_tokenizer_words(chunks) -> list[list[str]]:
    from knowledge.search import bm25_build
    from knowledge.search.texts import keyword_text

    tokenizer = bm25_build.new_tokenizer()
    return tokenizer.tokenize(
        [keyword_text(c) for c in chunks], return_as="string", show_progress=False
    )


def test_a_cold_process_updates_a_loaded_revision_without_reading_every_chunk(
    hr: Desk, monkeypatch
):
    worker = _fresh(hr)
    worker.prepare("HR")  # loaded, with the token ids saved
    hr.ingest([upload("vpn.pdf", VPN, "Remote Access")], "HR")
    full_reads = count_full_reads(monkeypatch, hr.store)
    worker.prepare("HR")
    assert worker.made == {"loaded": 1, "built": 1} and full_reads == []
    assert_same_answers(worker, MemoryIndexes(hr.store), hr.store)


@pytest.mark.parametrize("cache", ["other version", "none saved", "nothing held"])
def test_without_usable_token_ids_the_index_is_built_in_full(hr: Desk, monkeypatch, cache: str):
    folder = _folder(hr) / f"rev-{hr.store.revision('HR')}"
    manifest = folder / "manifest.json"
    meta = json.loads(manifest.read_text())
    meta["tokens"] = 99 if cache == "other version" else None
    manifest.write_text(json.dumps(meta))
    if cache == "nothing held":
        shutil.rmtree(_folder(hr))
    worker = _fresh(hr)
    if cache != "nothing held":
        worker.prepare("HR")
        assert worker._indexes["HR"].tokens is None
    hr.ingest([upload("vpn.pdf", VPN, "Remote Access")], "HR")
    full_reads = count_full_reads(monkeypatch, hr.store)
    worker.prepare("HR")
    assert full_reads == [1]
    assert worker._indexes["HR"].tokens is not None  # the next revision is incremental again
    assert_same_answers(worker, MemoryIndexes(hr.store), hr.store)


def test_the_token_ids_of_a_new_revision_are_the_old_rows_and_the_new_ones():
    from knowledge.search import bm25_build

    rng = np.random.default_rng(0)
    old_lists = [list(rng.integers(0, 50, rng.integers(0, 6))) for _ in range(50)]
    new_lists = [list(rng.integers(0, 50, rng.integers(0, 6))) for _ in range(7)]
    old = bm25_build.from_lists(old_lists)
    for trial in range(200):  # kept in order or shuffled, new rows anywhere (also at the end)
        kept = rng.choice(50, int(rng.integers(0, 50)), replace=False)
        rows = list(kept if trial % 2 else np.sort(kept))
        for _ in range(int(rng.integers(0, 8))):
            rows.insert(int(rng.integers(0, len(rows) + 1)), -1)
        rows += [49, -1] if trial % 5 == 0 else []
        fresh = iter(new_lists)
        expected = [old_lists[r] if r >= 0 else next(fresh, []) for r in rows]
        added = [e for r, e in zip(rows, expected, strict=True) if r < 0]
        got = bm25_build.assemble(
            old, np.asarray(rows, dtype=np.int64), bm25_build.from_lists(added)
        )
        offsets = got.offsets
        assert [list(got.tokens[offsets[i] : offsets[i + 1]]) for i in range(len(rows))] == expected
