"""The embedder the desk builds from settings: int8 by default (about twice as fast on CPU),
ranking like the float32 model, and a switch between the two re-embeds on the next ingest."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.search.embeddings import SentenceTransformerEmbedder
from tests.pdfs import make_pdf

PASSAGES = [
    "Expense claims must be submitted within 30 days with itemised receipts.",
    "Passwords must be at least 14 characters long and changed every year.",
    "Employees are entitled to 25 days of paid annual leave per calendar year.",
    "Lost laptops must be reported to the security team within one hour.",
]
QUESTIONS = {
    "When do I have to hand in my expense claims?": 0,
    "How long must a password be?": 1,
    "How many holidays do I get each year?": 2,
    "What do I do when my laptop is stolen?": 3,
}


@pytest.fixture(scope="module")
def int8() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(int8=True)


def test_the_default_desk_embeds_with_int8_weights(tmp_path):
    desk = Desk(Settings(data_dir=tmp_path / "data", model_backend="ollama"))
    assert desk.embedder.name == "all-MiniLM-L6-v2-int8"


def test_int8_ranks_like_float32(embedder, int8):
    for model in (embedder, int8):
        passages = model.embed_documents(PASSAGES)
        assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
        for question, best in QUESTIONS.items():
            assert int((passages @ model.embed_query(question)).argmax()) == best, question
    close = np.sum(embedder.embed_documents(PASSAGES) * int8.embed_documents(PASSAGES), axis=1)
    assert close.min() > 0.8  # the same model, slightly perturbed weights


def test_switching_the_embedder_re_embeds_on_the_next_ingest(tmp_path, embedder, int8, model):
    settings = Settings(data_dir=tmp_path / "data", model_backend="ollama")
    upload = Upload("policy.pdf", make_pdf(PASSAGES, title="Policy"))
    [first] = Desk(settings, embedder=embedder, model=model).ingest([upload], "HR")
    [again] = Desk(settings, embedder=embedder, model=model).ingest([upload], "HR")
    [switched] = Desk(settings, embedder=int8, model=model).ingest([upload], "HR")
    assert (first.status, again.status, switched.status) == ("added", "unchanged", "replaced")
