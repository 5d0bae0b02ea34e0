"""Tests that need Tesseract skip where it is missing, unless KDESK_REQUIRE_OCR=1 (CI), where
they run and fail."""

from __future__ import annotations

import os

import pytest

from ingest.ocr import OcrUnavailableError, TesseractReader


def tesseract_missing() -> str:
    """Why Tesseract cannot run here, or "" when it can."""
    try:
        TesseractReader("eng")
    except OcrUnavailableError as exc:
        return str(exc)
    return ""


_MISSING = tesseract_missing()
needs_tesseract = pytest.mark.skipif(
    bool(_MISSING) and not os.environ.get("KDESK_REQUIRE_OCR"),
    reason=f"Tesseract is not installed: {_MISSING}",
)
