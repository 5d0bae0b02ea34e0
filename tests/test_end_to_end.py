"""End to end with the real embedded model: PDF in, streamed and cited answer out."""

import pytest

from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.pdfs import make_pdf

HANDBOOK = [
    "Office Handbook\n\nThe office opens at eight in the morning and closes at six in the evening.",
    "Travel\n\nHotel rooms are reimbursed up to 140 euros per night in major cities.",
]


@pytest.mark.slow
def test_pdf_to_cited_answer_with_the_embedded_model(tmp_path, embedder):
    # temperature 0: the 135M model decodes greedily, so the run is the same every time
    settings = Settings(
        data_dir=tmp_path / "data", model_backend="embedded", embedded_threads=1, temperature=0.0
    )
    desk = Desk(settings, embedder=embedder)
    [report] = desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK, title="Handbook"))], "HR")
    assert report.status == "added"

    stream = desk.ask("How much are hotel rooms reimbursed per night in major cities?")
    deltas = list(stream)
    answer = stream.answer

    assert answer.model.startswith("embedded · SmolLM2")
    assert deltas and answer.first_token_ms is not None
    assert not answer.abstained and answer.error is None
    # whatever the 135M model wrote, what is shown is backed by the cited page
    assert "140 euros" in answer.text
    assert [(c.chunk.file_name, c.page) for c in answer.citations][:1] == [("handbook.pdf", 2)]
