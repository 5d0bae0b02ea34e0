"""Vector indexes: Chroma (embedded and persistent, or a `chroma run` server shared by every
process of a team server) and an exact in-memory one beside it. ``open_vector_index`` picks the
Chroma of the settings (KDESK_CHROMA_URL)."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import numpy as np

from knowledge.core.errors import KdeskError, SettingsError

if TYPE_CHECKING:
    from knowledge.core.settings import Settings

# HNSW with Chroma's defaults misses many true neighbours; these settings keep recall@10 >= 0.95
# at 100k chunks (measured by `kdesk bench`).
HNSW_CONFIG = {"space": "cosine", "ef_construction": 200, "ef_search": 200, "max_neighbors": 32}
ADD_BATCH = 4000
CONNECT_TIMEOUT_S = 5.0  # the first contact with a Chroma server (its client has no timeout)
T = TypeVar("T")


class VectorIndex(Protocol):
    def add(self, collection: str, ids: Sequence[str], vectors: np.ndarray) -> None: ...

    def delete(self, collection: str, ids: Sequence[str]) -> None: ...

    def query(
        self, collection: str, vector: np.ndarray, k: int, ids: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """Nearest ids with cosine similarity, best first; only among ``ids`` when given."""
        ...

    def get_vectors(self, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def count(self, collection: str) -> int: ...

    def drop(self, collection: str) -> None: ...


def chroma_name(collection: str) -> str:
    """Chroma accepts only [a-zA-Z0-9._-] names of 3-512 chars; ours are free text."""
    return "kd-" + hashlib.sha1(collection.encode()).hexdigest()[:20]


def open_vector_index(settings: Settings) -> VectorIndex:
    """The desk's vector index: the Chroma server of ``settings.chroma_url`` when set (checked
    now: a malformed URL is a SettingsError, an unreachable server a KdeskError), else the
    embedded Chroma in ``settings.chroma_dir``."""
    if settings.chroma_url.strip():
        return ChromaIndex.server(settings.chroma_url)
    return ChromaIndex(settings.chroma_dir)


def parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """``http(s)://HOST[:PORT]`` as (host, port, ssl); the port defaults to Chroma's 8000 (443
    for https). Anything else (a path, credentials, another scheme) is a SettingsError."""
    problem = "expected http://HOST:PORT or https://HOST[:PORT], e.g. http://127.0.0.1:8000"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"KDESK_CHROMA_URL {url!r}: {exc}; {problem}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"KDESK_CHROMA_URL {url!r} is not a server URL: {problem}")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
        raise SettingsError(f"KDESK_CHROMA_URL {url!r} has more than a host and port: {problem}")
    ssl = parts.scheme == "https"
    return parts.hostname, port or (443 if ssl else 8000), ssl


def chroma_server_client(url: str) -> Any:
    """A ``chromadb.HttpClient`` of the server at ``url``, its heartbeat answered."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    host, port, ssl = parse_chroma_url(url)
    hint = (
        "start it (`chroma run --path DIR --host HOST --port PORT`) or leave KDESK_CHROMA_URL "
        "empty for the embedded index"
    )
    try:  # fast, before the client (it waits forever on a host that never answers)
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise KdeskError(f"The Chroma server at {url} is unreachable ({exc}): {hint}.") from None
    try:
        client = chromadb.HttpClient(
            host=host, port=port, ssl=ssl, settings=ChromaSettings(anonymized_telemetry=False)
        )
        client.heartbeat()
    except Exception as exc:  # noqa: BLE001 - not a Chroma server, TLS, version: say what
        raise KdeskError(f"The Chroma server at {url} does not answer ({exc}): {hint}.") from None
    return client


class ChromaIndex:
    """Chroma collections named by ``chroma_name``; embedded (``ChromaIndex(path)``) or on a
    server (``ChromaIndex.server(url)``: several processes share it and see each other's
    writes; a collection dropped and made again by another process is looked up anew)."""

    def __init__(self, path: Path | None = None, *, client: Any = None) -> None:
        if client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            if path is None:
                raise ValueError("ChromaIndex needs a path or a client")
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(
                path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
            )
        self._client = client
        self._batch = min(ADD_BATCH, int(client.get_max_batch_size()))
        self._collections: dict[str, object] = {}
        self._lock = threading.Lock()

    @classmethod
    def server(cls, url: str) -> ChromaIndex:
        return cls(client=chroma_server_client(url))

    def _collection(self, collection: str):  # type: ignore[no-untyped-def]
        with self._lock:
            if collection not in self._collections:
                self._collections[collection] = self._client.get_or_create_collection(
                    chroma_name(collection),
                    configuration={"hnsw": HNSW_CONFIG},  # type: ignore[arg-type]
                    metadata={"kdesk_collection": collection},
                    embedding_function=None,  # never let Chroma fetch its default model
                )
            return self._collections[collection]

    def _on(self, collection: str, work: Callable[[Any], T]) -> T:
        """``work(the collection)``; once more with a fresh handle when the cached one is gone
        (another client dropped the collection and maybe made it again)."""
        from chromadb.errors import NotFoundError

        try:
            return work(self._collection(collection))
        except NotFoundError:
            with self._lock:
                self._collections.pop(collection, None)
            return work(self._collection(collection))

    def add(self, collection: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        step = self._batch

        def add(target: Any) -> None:
            for start in range(0, len(ids), step):
                target.add(
                    ids=list(ids[start : start + step]), embeddings=vectors[start : start + step]
                )

        self._on(collection, add)

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        step = self._batch

        def delete(target: Any) -> None:
            for start in range(0, len(ids), step):
                target.delete(ids=list(ids[start : start + step]))

        if ids:
            self._on(collection, delete)

    def query(
        self, collection: str, vector: np.ndarray, k: int, ids: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        return self._on(collection, lambda target: self._query(target, vector, k, ids))

    def _query(
        self, target: Any, vector: np.ndarray, k: int, ids: Sequence[str] | None
    ) -> list[tuple[str, float]]:
        size = target.count()
        if size == 0 or (ids is not None and not ids):
            return []
        if ids is None:
            result = target.query(
                query_embeddings=[vector], n_results=min(k, size), include=["distances"]
            )
        else:  # the filter inside the search, not after it
            result = self._query_among(target, vector, min(k, size, len(ids)), list(ids))
            if result is None:
                return []
        found = result["ids"][0]
        distances = (result["distances"] or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(found, distances, strict=True)]

    @staticmethod
    def _query_among(target: Any, vector: np.ndarray, k: int, ids: list[str]) -> Any:
        from chromadb.errors import ChromaError

        try:
            return target.query(
                query_embeddings=[vector], n_results=k, ids=ids, include=["distances"]
            )
        except ChromaError:  # an id deleted meanwhile (a document replaced): the others
            # (a collection dropped meanwhile raises NotFoundError here: ``_on`` retries)
            present = target.get(ids=ids, include=[])["ids"]
            if not present:
                return None
            return target.query(
                query_embeddings=[vector],
                n_results=min(k, len(present)),
                ids=present,
                include=["distances"],
            )

    def get_vectors(self, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        step = self._batch

        def get(target: Any) -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(ids), step):
                result = target.get(ids=list(ids[start : start + step]), include=["embeddings"])
                embeddings = result["embeddings"]
                if embeddings is not None:
                    for i, v in zip(result["ids"], embeddings, strict=True):
                        found[i] = np.asarray(v, dtype=np.float32)
            return found

        return self._on(collection, get) if ids else {}

    def count(self, collection: str) -> int:
        return int(self._on(collection, lambda target: target.count()))

    def drop(self, collection: str) -> None:
        with self._lock:
            self._collections.pop(collection, None)
            with contextlib.suppress(Exception):  # already gone is fine
                self._client.delete_collection(chroma_name(collection))


class ExactIndex:
    """Brute-force cosine search in memory: the reference for recall, and a test double."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, np.ndarray]] = {}

    def add(self, collection: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        bucket = self._data.setdefault(collection, {})
        for i, v in zip(ids, vectors, strict=True):
            bucket[i] = np.asarray(v, dtype=np.float32)

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        bucket = self._data.get(collection, {})
        for i in ids:
            bucket.pop(i, None)

    def query(
        self, collection: str, vector: np.ndarray, k: int, ids: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        bucket = self._data.get(collection, {})
        ids = list(bucket) if ids is None else [i for i in dict.fromkeys(ids) if i in bucket]
        if not ids:
            return []
        matrix = np.stack([bucket[i] for i in ids])
        scores = matrix @ vector
        top = np.argsort(-scores)[:k]
        return [(ids[j], float(scores[j])) for j in top]

    def get_vectors(self, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        bucket = self._data.get(collection, {})
        return {i: bucket[i] for i in ids if i in bucket}

    def count(self, collection: str) -> int:
        return len(self._data.get(collection, {}))

    def drop(self, collection: str) -> None:
        self._data.pop(collection, None)
