"""The vector index on embedded Chroma and on a `chroma run` server (KDESK_CHROMA_URL): the same
behaviours, the same HNSW configuration; on the server several clients share the collections."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from knowledge.core.errors import KdeskError, SettingsError
from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.search.vectors import (
    HNSW_CONFIG,
    ChromaIndex,
    chroma_name,
    open_vector_index,
    parse_chroma_url,
)
from tests.pdfs import make_pdf
from tests.postgres import free_port

LEAVE = [
    "Leave Policy\n\nEmployees receive 25 days of paid annual leave each calendar year.",
    "Sick leave requires a medical certificate after three consecutive days of absence.",
    "Parental leave is 26 weeks for birth parents and four weeks for partners.",
]


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def index(chroma_mode: str, tmp_path: Path) -> ChromaIndex:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_mode)
    built = open_vector_index(settings)
    assert isinstance(built, ChromaIndex)
    return built


def test_add_query_get_count_delete_drop(index: ChromaIndex):
    ids = ["a", "b", "c", "d"]
    index.add("Human Resources", ids, np.eye(4, dtype=np.float32))
    assert index.count("Human Resources") == 4 and index.count("Other") == 0
    query = unit(1.0, 0.5, 0.0, 0.0)
    hits = index.query("Human Resources", query, 2)
    assert [i for i, _ in hits] == ["a", "b"]
    assert hits[0][1] == pytest.approx(float(query[0]), abs=1e-5)  # cosine similarity
    assert [i for i, _ in index.query("Human Resources", query, 2, ["c", "b"])] == ["b", "c"]
    assert [i for i, _ in index.query("Human Resources", query, 5, ["gone", "d"])] == ["d"]
    assert index.query("Human Resources", query, 5, []) == []
    vectors = index.get_vectors("Human Resources", ["b", "gone"])
    assert set(vectors) == {"b"} and np.allclose(vectors["b"], [0, 1, 0, 0])
    index.delete("Human Resources", ["a"])
    assert index.count("Human Resources") == 3
    assert [i for i, _ in index.query("Human Resources", query, 1)] == ["b"]
    index.drop("Human Resources")
    assert index.count("Human Resources") == 0
    assert index.query("Human Resources", query, 3) == []


def test_large_batches_are_split(index: ChromaIndex):
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(index._batch + 10, 8)).astype(np.float32)
    ids = [f"v{i}" for i in range(len(vectors))]
    index.add("big", ids, vectors)
    assert index.count("big") == len(ids)
    assert len(index.get_vectors("big", ids)) == len(ids)
    index.delete("big", ids)
    assert index.count("big") == 0


def test_the_same_hnsw_configuration_on_the_server(chroma_url: str):
    index = ChromaIndex.server(chroma_url)
    index.add("HR", ["a"], np.eye(1, 4, dtype=np.float32))
    import chromadb

    host, port, _ = parse_chroma_url(chroma_url)
    stored = chromadb.HttpClient(host=host, port=port).get_collection(chroma_name("HR"))
    hnsw = stored.configuration["hnsw"]
    assert {key: hnsw[key] for key in HNSW_CONFIG} == HNSW_CONFIG  # type: ignore[index]
    assert stored.metadata == {"kdesk_collection": "HR"}


def test_two_clients_of_the_server_see_each_other(chroma_url: str):
    first, second = ChromaIndex.server(chroma_url), ChromaIndex.server(chroma_url)
    first.add("HR", ["a", "b"], np.eye(2, 4, dtype=np.float32))
    assert second.count("HR") == 2
    assert [i for i, _ in second.query("HR", unit(0, 1, 0, 0), 1)] == ["b"]
    second.delete("HR", ["b"])
    assert first.count("HR") == 1
    # one drops the collection and makes it again: the other's cached handle is stale
    first.drop("HR")
    first.add("HR", ["c"], np.eye(1, 4, dtype=np.float32))
    assert second.count("HR") == 1
    assert [i for i, _ in second.query("HR", unit(1, 0, 0, 0), 3)] == ["c"]
    second.add("HR", ["d"], np.eye(1, 4, k=1, dtype=np.float32))
    assert set(first.get_vectors("HR", ["c", "d"])) == {"c", "d"}


def test_another_process_sees_the_writes(chroma_url: str):
    import subprocess
    import sys

    mine = ChromaIndex.server(chroma_url)
    mine.add("HR", ["a", "b"], np.eye(2, 4, dtype=np.float32))
    script = (
        "import sys, numpy as np\n"
        "from knowledge.search.vectors import ChromaIndex\n"
        "index = ChromaIndex.server(sys.argv[1])\n"
        "print(index.count('HR'), index.query('HR', np.eye(1, 4, k=1)[0], 1)[0][0])\n"
        "index.add('HR', ['c'], np.eye(1, 4, k=2, dtype=np.float32))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, chroma_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "b"]
    assert mine.count("HR") == 3 and [i for i, _ in mine.query("HR", unit(0, 0, 1, 0), 1)] == ["c"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", ("127.0.0.1", 8000, False)),
        ("http://chroma.internal", ("chroma.internal", 8000, False)),
        (" https://chroma.example.com/ ", ("chroma.example.com", 443, True)),
        ("https://chroma.example.com:8443", ("chroma.example.com", 8443, True)),
    ],
)
def test_server_urls(url: str, expected: tuple[str, int, bool]):
    assert parse_chroma_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "127.0.0.1:8000",
        "ftp://127.0.0.1:8000",
        "http://",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:port",
        "http://127.0.0.1:8000/api",
        "http://user:secret@127.0.0.1:8000",
    ],
)
def test_malformed_urls_are_a_settings_error(url: str, tmp_path: Path):
    with pytest.raises(SettingsError, match="KDESK_CHROMA_URL"):
        open_vector_index(Settings(data_dir=tmp_path, chroma_url=url))


def test_an_unreachable_server_is_a_clear_error_at_start(tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    started = time.monotonic()
    with pytest.raises(KdeskError, match=f"Chroma server at {url} is unreachable"):
        Desk(Settings(data_dir=tmp_path / "data", chroma_url=url))
    assert time.monotonic() - started < 10


def test_not_a_chroma_server_is_a_clear_error(tmp_path: Path):
    from tests.fake_ollama import FakeOllama

    # an HTTP server, but not Chroma
    with FakeOllama("hello") as other, pytest.raises(KdeskError, match="does not answer"):
        open_vector_index(Settings(data_dir=tmp_path, chroma_url=other.url))


# A desk on the server ------------------------------------------------------------------------


def test_desk_ingests_replaces_and_deletes_through_the_server(
    chroma_url: str, tmp_path: Path, embedder, model
):
    settings = Settings(data_dir=tmp_path / "data", model_backend="ollama", chroma_url=chroma_url)
    desk = Desk(settings, embedder=embedder, model=model)
    assert not settings.chroma_dir.exists()  # nothing embedded
    [report] = desk.ingest([Upload("leave.pdf", make_pdf(LEAVE, title="Leave Policy"))], "HR")
    assert report.status == "added"
    [hit, *_] = desk.search("How many days of annual leave?", ["HR"], 3)
    assert hit.chunk.file_name == "leave.pdf" and "25 days" in hit.chunk.text
    chunks = desk.store.collection_chunks("HR")
    assert desk.store.index.count("HR") == len(chunks)

    changed = [*LEAVE[:2], "Parental leave is 40 weeks for birth parents."]
    [report] = desk.ingest([Upload("leave.pdf", make_pdf(changed))], "HR")
    assert report.status == "replaced"
    chunks = desk.store.collection_chunks("HR")
    assert desk.store.index.count("HR") == len(chunks)
    hits = desk.search("How long is parental leave for birth parents?", ["HR"], 3)
    assert "40 weeks" in hits[0].chunk.text and all("26 weeks" not in h.chunk.text for h in hits)

    # a second process (its own desk, the same database and server) sees the document
    other = Desk(settings, embedder=embedder, model=model)
    assert other.search("parental leave weeks", ["HR"], 1)[0].chunk.id in {c.id for c in chunks}

    desk.store.delete_document(report.doc_id)
    assert desk.store.index.count("HR") == 0 and other.store.index.count("HR") == 0
    assert other.search("annual leave", ["HR"]) == []
