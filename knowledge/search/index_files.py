"""A collection's search indexes on disk, shared by every process on the data directory.

``indexes_dir/<collection folder>/rev-<N>/`` holds the indexes of revision N: both BM25 models
(bm25s' own format, memory-mapped when loaded) with their tokenizers' vocabularies, the chunk
and document ids, the documents' profile texts, the vector matrix and which rows have a vector
(.npy, memory-mapped), the chunks' token ids (``tokens.npy``, ``token_offsets.npy``: what the
next revision's BM25 is made from) and ``manifest.json`` (revision, format, title weight). A folder
is written under a temporary name and renamed into place, so a reader never sees a half-written
one; two processes writing the same revision keep whichever rename came first.

While a process changes a collection and will save its indexes (an ingestion that prepares
search, a rebuild), it holds a ``building-*.json`` marker in the collection's folder: other
processes refreshing in the background wait for its folder instead of building the same thing.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.search.bm25_build import TOKENS_VERSION, TokenCache

FORMAT_VERSION = 1
KEEP_REVISIONS = 2
MARKER_MAX_AGE_S = 600.0  # a marker of another machine older than this is a crashed writer's
TEMP_MAX_AGE_S = 3600.0  # a temporary folder older than this is a crashed writer's


class IndexFileError(Exception):
    """A folder that cannot be used (another format or title weight, missing or broken files)."""


@dataclass
class CollectionIndex:
    revision: int
    ids: list[str]
    doc_ids: np.ndarray
    tokenizer: Any
    bm25: Any
    profile_docs: list[str]  # one BM25 row per document: its profile
    profile_tokenizer: Any
    profile_bm25: Any
    vectors: np.ndarray | None  # row i: the vector of ids[i] (zeros if missing); None: too many
    has_vector: np.ndarray | None
    profiles: dict[str, str]  # profile text by a document's first chunk id (names its version)
    rows: dict[str, int] = field(init=False)  # chunk id -> its row
    frequencies: dict[str, int] | None = None  # word -> chunks using it, built on first use
    tokens: TokenCache | None = None  # the chunks' token ids: the next revision reuses them

    def __post_init__(self) -> None:
        self.rows = {chunk_id: row for row, chunk_id in enumerate(self.ids)}


def collection_folder(root: Path, collection: str) -> Path:
    """Collection names are free text: a readable slug and a hash of the exact name."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", collection).strip("_")[:40] or "collection"
    return root / f"{slug}-{hashlib.sha1(collection.encode()).hexdigest()[:12]}"


def revisions(folder: Path) -> list[int]:
    """The revisions with a complete folder, newest first."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in folder.iterdir():
            match = re.fullmatch(r"rev-(\d+)", entry.name)
            if match and (entry / "manifest.json").exists():
                found.append(int(match.group(1)))
    return sorted(found, reverse=True)


def _save_bm25(bm25: Any, tokenizer: Any, folder: Path) -> None:
    # bm25s indexed from token ids keys its vocabulary by int, which its JSON writer refuses:
    # a shallow copy (the same score arrays) with string keys, the model itself untouched
    writable = copy.copy(bm25)
    writable.vocab_dict = {str(k): v for k, v in bm25.vocab_dict.items()}
    writable.save(str(folder), show_progress=False)
    tokenizer.save_vocab(str(folder))


def _load_bm25(folder: Path) -> tuple[Any, Any]:
    import bm25s
    from bm25s.tokenization import Tokenizer

    bm25 = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
    bm25.vocab_dict = {int(k): v for k, v in bm25.vocab_dict.items()}
    bm25.unique_token_ids_set = set(bm25.vocab_dict.values())
    tokenizer = Tokenizer(stopwords="en")
    tokenizer.load_vocab(str(folder))
    return tokenizer, bm25


def save(root: Path, collection: str, index: CollectionIndex, title_weight: int) -> Path:
    """Write the index as ``rev-<N>`` atomically; returns the folder (ours or the one another
    process renamed into place first). A broken folder of the same name is replaced."""
    folder = collection_folder(root, collection)
    final = folder / f"rev-{index.revision}"
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".tmp-rev-{index.revision}-{uuid.uuid4().hex[:8]}"
    try:
        temp.mkdir()
        _save_bm25(index.bm25, index.tokenizer, temp / "chunks")
        _save_bm25(index.profile_bm25, index.profile_tokenizer, temp / "profiles")
        np.save(temp / "doc_ids.npy", np.asarray(index.doc_ids, dtype=str))
        if index.vectors is not None and index.has_vector is not None:
            np.save(temp / "vectors.npy", np.ascontiguousarray(index.vectors, dtype=np.float32))
            np.save(temp / "has_vector.npy", np.asarray(index.has_vector, dtype=bool))
        if index.tokens is not None:
            np.save(temp / "tokens.npy", np.asarray(index.tokens.tokens, dtype=np.int32))
            np.save(temp / "token_offsets.npy", np.asarray(index.tokens.offsets, dtype=np.int64))
        texts = {"ids": index.ids, "profile_docs": index.profile_docs, "profiles": index.profiles}
        (temp / "ids.json").write_text(json.dumps(texts), encoding="utf-8")
        manifest = {
            "format": FORMAT_VERSION,
            "revision": index.revision,
            "title_weight": title_weight,
            "collection": collection,
            "chunks": len(index.ids),
            "vectors": index.vectors is not None,
            "tokens": TOKENS_VERSION if index.tokens is not None else None,
        }
        (temp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")  # last
        if final.exists() and not (final / "manifest.json").exists():
            _discard(final)  # a broken folder (no manifest): never read, replaced
        try:
            temp.rename(final)
        except OSError:  # another process renamed its folder of this revision first
            if not (final / "manifest.json").exists():
                _discard(final)
                temp.rename(final)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return final


def _discard(path: Path) -> None:
    """Move a folder out of the way (atomically), then delete it."""
    trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
    with contextlib.suppress(FileNotFoundError):
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def discard(root: Path, collection: str, revision: int) -> None:
    """Remove a folder found broken, so the next save can put a good one in its place."""
    _discard(collection_folder(root, collection) / f"rev-{revision}")


def load(root: Path, collection: str, revision: int, title_weight: int) -> CollectionIndex:
    """The saved index of this revision, memory-mapped; IndexFileError if there is none
    usable (missing, another format or title weight, broken or inconsistent files)."""
    path = collection_folder(root, collection) / f"rev-{revision}"
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexFileError(f"{path}: format {manifest.get('format')}")
        if manifest.get("title_weight") != title_weight or manifest.get("revision") != revision:
            raise IndexFileError(f"{path}: built for other settings")
        texts = json.loads((path / "ids.json").read_text(encoding="utf-8"))
        tokenizer, bm25 = _load_bm25(path / "chunks")
        profile_tokenizer, profile_bm25 = _load_bm25(path / "profiles")
        doc_ids = np.load(path / "doc_ids.npy", mmap_mode="r")
        vectors = has_vector = None
        if manifest.get("vectors"):
            vectors = np.load(path / "vectors.npy", mmap_mode="r")
            has_vector = np.load(path / "has_vector.npy", mmap_mode="r")
        ids = list(texts["ids"])
        tokens = _load_tokens(path, manifest, len(ids))
        sizes = {len(ids), len(doc_ids), int(bm25.scores["num_docs"])}
        if vectors is not None and has_vector is not None:
            sizes |= {len(vectors), len(has_vector)}
        if len(sizes) != 1 or len(texts["profile_docs"]) != profile_bm25.scores["num_docs"]:
            raise IndexFileError(f"{path}: inconsistent files")
    except IndexFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - missing, truncated, garbled: all "not usable"
        raise IndexFileError(f"{path}: {type(exc).__name__}: {exc}") from exc
    return CollectionIndex(
        revision,
        ids,
        doc_ids,
        tokenizer,
        bm25,
        list(texts["profile_docs"]),
        profile_tokenizer,
        profile_bm25,
        vectors,
        has_vector,
        dict(texts["profiles"]),
        tokens=tokens,
    )


def _load_tokens(path: Path, manifest: dict[str, Any], chunks: int) -> TokenCache | None:
    """The saved token ids (memory-mapped); None where another version (or none) was saved:
    the next revision is then tokenized in full."""
    if manifest.get("tokens") != TOKENS_VERSION:
        return None
    tokens = np.load(path / "tokens.npy", mmap_mode="r")
    offsets = np.load(path / "token_offsets.npy", mmap_mode="r")
    if tokens.dtype != np.int32 or offsets.dtype != np.int64 or len(offsets) != chunks + 1:
        raise IndexFileError(f"{path}: inconsistent token ids")
    if int(offsets[0]) != 0 or int(offsets[-1]) != len(tokens):
        raise IndexFileError(f"{path}: inconsistent token ids")
    return TokenCache(tokens, offsets)


def prune(root: Path, collection: str, current: int, keep: int = KEEP_REVISIONS) -> None:
    """Keep the newest ``keep`` revisions up to ``current`` (the collection's revision now; a
    process may be loading the one before the newest); delete older ones, newer ones (of a
    collection of the same name deleted before) and temporary folders of crashed writers."""
    folder = collection_folder(root, collection)
    saved = revisions(folder)
    for revision in [r for r in saved if r > current] + [r for r in saved if r <= current][keep:]:
        _discard(folder / f"rev-{revision}")
    now = time.time()
    with contextlib.suppress(FileNotFoundError):
        for entry in folder.iterdir():
            if entry.name.startswith((".tmp-", ".trash-")):
                with contextlib.suppress(FileNotFoundError):
                    if now - entry.stat().st_mtime > TEMP_MAX_AGE_S:
                        shutil.rmtree(entry, ignore_errors=True)


# Markers: "this collection is changing here, its indexes will be saved" ----------------------


@contextlib.contextmanager
def building(root: Path, collection: str) -> Iterator[None]:
    """Hold a marker while this process changes the collection and saves its indexes."""
    folder = collection_folder(root, collection)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"building-{uuid.uuid4().hex[:12]}.json"
    marker.write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid()}), encoding="utf-8"
    )
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def someone_building(root: Path, collection: str) -> bool:
    """Whether a live process holds a marker for the collection (stale ones are removed)."""
    folder = collection_folder(root, collection)
    live = False
    for marker in folder.glob("building-*.json"):
        try:
            holder = json.loads(marker.read_text(encoding="utf-8"))
            age = time.time() - marker.stat().st_mtime
        except (OSError, ValueError):
            continue  # just removed, or being written
        if _alive(holder, age):
            live = True
        else:
            marker.unlink(missing_ok=True)
    return live


def _alive(holder: dict[str, Any], age: float) -> bool:
    if holder.get("host") != socket.gethostname():
        return age < MARKER_MAX_AGE_S
    try:
        pid = int(holder.get("pid", 0))
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        return age < MARKER_MAX_AGE_S
    return True
