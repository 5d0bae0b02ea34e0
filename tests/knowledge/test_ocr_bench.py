"""The OCR section of `kdesk bench`: its error rate is a real edit distance, and on one clean
page it reports every case with figures that hold together (speeds are not asserted)."""

from __future__ import annotations

from knowledge.evaluation.bench import ocr_pages
from knowledge.evaluation.ocr_bench import bench_ocr, character_error_rate
from tests.ocr_engine import needs_tesseract


def test_character_error_rate_is_edits_over_the_reference_length() -> None:
    assert character_error_rate("Hotel rooms", "Hotel rooms") == 0.0
    assert character_error_rate("Hotel  rooms\n", " Hotel rooms") == 0.0  # whitespace runs
    assert character_error_rate("Hotel rooms", "Hote1 room") == 2 / 11  # one swap, one drop
    assert character_error_rate("abc", "") == 1.0
    assert character_error_rate("", "") == 0.0


@needs_tesseract
def test_one_page_is_read_in_every_case() -> None:
    figures = bench_ocr(ocr_pages(1))
    cases = figures["cases"]
    assert isinstance(cases, dict)
    assert set(cases) == {"150dpi_clean", "300dpi_clean", "150dpi_noisy", "300dpi_noisy"}
    for case in cases.values():
        assert case["pages"] == 1 and case["pages_per_s"] > 0
        assert 0 <= case["cer"] == case["worst_page_cer"] < 0.05  # the page is legible
        assert 50 < case["mean_confidence"] <= 100
    threads = figures["threads"]
    assert isinstance(threads, dict) and set(threads) == {
        "one_thread_pages_per_s",
        "two_threads_pages_per_s",
    }
