"""The chunks' BM25 model from cached token ids: a collection keeps the token ids of every chunk
(one flat int32 array and its offsets, in the tokenizer's vocabulary), so a new revision
tokenizes only its new chunks. BM25's IDF and average length change with every document, so
the score matrix is rebuilt each time, vectorised, with exactly the values bm25s' own
``BM25.index`` computes from the same token ids (``tests/knowledge/test_index_files.py``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TOKENS_VERSION = 1  # what a saved token cache holds; another version: rebuilt from the texts


@dataclass
class TokenCache:
    """The token ids of chunk ``i``: ``tokens[offsets[i]:offsets[i + 1]]``."""

    tokens: np.ndarray  # int32
    offsets: np.ndarray  # int64, one more than the chunks

    def __len__(self) -> int:
        return len(self.offsets) - 1


def from_lists(token_ids: Sequence[Sequence[int]]) -> TokenCache:
    lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
    offsets = np.zeros(len(token_ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.fromiter((i for t in token_ids for i in t), dtype=np.int32, count=int(offsets[-1]))
    return TokenCache(tokens, offsets)


def tokenize(tokenizer: Any, texts: Sequence[str]) -> TokenCache:
    """Token ids of the texts; new words get new ids (the vocabulary grows, never renumbers)."""
    ids = tokenizer.tokenize(list(texts), update_vocab=True, return_as="ids", show_progress=False)
    return from_lists(ids)


def assemble(old: TokenCache | None, old_rows: np.ndarray, new: TokenCache) -> TokenCache:
    """The cache of a new revision: row ``i`` is ``old``'s row ``old_rows[i]`` where that is
    >= 0, else the next row of ``new`` (the new chunks, in order)."""
    kept = old_rows >= 0
    lengths = np.zeros(len(old_rows), dtype=np.int64)
    if old is not None and kept.any():
        old_lengths = np.diff(old.offsets)
        lengths[kept] = old_lengths[old_rows[kept]]
    lengths[~kept] = np.diff(new.offsets)
    offsets = np.zeros(len(old_rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.empty(int(offsets[-1]), dtype=np.int32)
    # source rows: old rows as they are, new rows after them (numbered past old's)
    first_new = len(old) if old is not None else 0
    sources = old_rows.copy()
    sources[~kept] = first_new + np.arange(int((~kept).sum()), dtype=np.int64)
    # copied run by run: rows that follow each other in their source are one slice
    breaks = np.flatnonzero((np.diff(sources) != 1) | (kept[1:] != kept[:-1])) + 1
    if not len(sources):
        return TokenCache(tokens, offsets)
    for start, end in zip(
        np.concatenate(([0], breaks)), np.concatenate((breaks, [len(sources)])), strict=True
    ):
        first, last = int(sources[start]), int(sources[end - 1])
        source, base = (old, 0) if first < first_new else (new, first_new)
        assert source is not None
        begin, stop = int(source.offsets[first - base]), int(source.offsets[last - base + 1])
        tokens[offsets[start] : offsets[end]] = source.tokens[begin:stop]
    return TokenCache(tokens, offsets)


def build(cache: TokenCache, vocabulary_size: int) -> Any:
    """A bm25s model (Lucene BM25, bm25s' defaults) over the cached chunks, its ``scores``
    the same arrays ``BM25.index`` makes of these token ids; columns are the tokenizer's ids
    (a word no chunk uses any more keeps an empty column)."""
    import bm25s

    bm25 = bm25s.BM25()
    assert bm25.method == "lucene" and bm25.idf_method == "lucene"
    n_docs = len(cache)
    lengths = np.diff(cache.offsets)
    tokens = np.asarray(cache.tokens, dtype=np.int64)
    vocabulary_size = max(vocabulary_size, int(tokens.max(initial=-1)) + 1)
    docs = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    # (token, document) pairs sorted by token, then document: the CSC order, with counts
    pairs, counts = np.unique(tokens * n_docs + docs, return_counts=True)
    columns, rows = np.divmod(pairs, n_docs)
    df = np.bincount(columns, minlength=vocabulary_size)
    if df[0]:  # as bm25s: a chunk without words uses the empty token 0, and one more column
        vocabulary_size += 1
        df = np.append(df, 0)
    idf = np.zeros(vocabulary_size, dtype=bm25.dtype)
    for value in np.unique(df[df > 0]):  # bm25s' own formula per distinct frequency
        idf[df == value] = math.log(1 + (n_docs - int(value) + 0.5) / (int(value) + 0.5))
    avg_doc_len = lengths.mean()
    tf = counts.astype(bm25.dtype)
    k1, b = bm25.k1, bm25.b
    tfc = tf / (k1 * ((1 - b) + b * lengths[rows] / avg_doc_len) + tf)
    data = (idf[columns] * tfc).astype(bm25.dtype)
    indptr = np.zeros(vocabulary_size + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    bm25.scores = {
        "data": data,
        "indices": rows.astype(bm25.int_dtype),
        "indptr": indptr,
        "num_docs": n_docs,
    }
    bm25.vocab_dict = {i: i for i in range(vocabulary_size)}
    bm25.unique_token_ids_set = set(bm25.vocab_dict.values())
    bm25.nonoccurrence_array = None
    return bm25


def new_tokenizer() -> Any:
    from bm25s.tokenization import Tokenizer

    return Tokenizer(stopwords="en")


def copy_tokenizer(tokenizer: Any) -> Any:
    """A tokenizer with the same vocabulary, to grow without touching the one serving."""
    copied = new_tokenizer()
    copied.word_to_stem = dict(tokenizer.word_to_stem)
    copied.stem_to_sid = dict(tokenizer.stem_to_sid)
    copied.word_to_id = dict(tokenizer.word_to_id)
    return copied
