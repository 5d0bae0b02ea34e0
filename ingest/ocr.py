"""Text read from page images (OCR), for PDF pages without a text layer: a small protocol and
the Tesseract engine (tesserocr, with the language data of Debian's ``tesseract-ocr``)."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PIL import Image

INSTALL_HINT = "apt-get install tesseract-ocr"
# where Debian's tesseract-ocr (5.x, 4.x) and source builds put their language data
TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)


@dataclass(frozen=True)
class PageText:
    text: str
    confidence: float  # the mean word confidence, 0-100 (0 when no word was found)


class PageReader(Protocol):
    """Reads the text of one page image; safe to call from several threads."""

    name: str

    def read(self, image: Image.Image) -> PageText: ...


@dataclass(frozen=True)
class OcrStep:
    """OCR is about to read ``page`` (1-based), the ``done + 1``-th of ``to_read`` pages."""

    page: int
    done: int
    to_read: int
    page_count: int


class OcrUnavailableError(Exception):
    """No OCR engine can run here; ``str(err)`` says why and how to install one."""


@dataclass(frozen=True)
class OcrOptions:
    """How pages without a text layer are read: by ``reader`` at ``dpi``, or (``reader`` None)
    not at all, for the reason in ``unavailable``."""

    reader: PageReader | None
    dpi: int = 300
    unavailable: str = "OCR was not asked for"


def ocr_options(enabled: bool, languages: str, dpi: int, tessdata: str = "") -> OcrOptions:
    """The OCR to use: Tesseract when enabled and installed, else none and why."""
    if not enabled:
        return OcrOptions(None, dpi, "OCR is off (KDESK_OCR=off)")
    try:
        return OcrOptions(TesseractReader(languages, tessdata), dpi)
    except OcrUnavailableError as exc:
        return OcrOptions(None, dpi, str(exc))


class TesseractReader:
    """Tesseract through tesserocr's in-process API (no process per page). One API object
    is not thread-safe, so each call borrows one from a pool."""

    def __init__(self, languages: str = "eng", tessdata: str = "") -> None:
        try:
            import tesserocr
        except ImportError:
            raise OcrUnavailableError(
                f"the OCR engine is not installed (pip install tesserocr; {INSTALL_HINT})"
            ) from None
        self._tesserocr: Any = tesserocr
        self.languages = languages.strip() or "eng"
        self.tessdata = find_tessdata(self.languages, tessdata)
        self.name = f"tesseract {tesserocr.tesseract_version().split()[1]} ({self.languages})"
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def read(self, image: Image.Image) -> PageText:
        api = self._borrow()
        try:
            api.SetImage(image)
            text = str(api.GetUTF8Text())
            confidences = [c for c in api.AllWordConfidences() if c >= 0]
        finally:
            api.Clear()
            with self._lock:
                self._idle.append(api)
        mean = sum(confidences) / len(confidences) if confidences else 0.0
        return PageText(joined_paragraphs(text), float(mean))

    def _borrow(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._tesserocr.PyTessBaseAPI(path=self.tessdata, lang=self.languages)


_BROKEN_PARAGRAPH = re.compile(r"\n\s*\n(?=[a-z])")


def joined_paragraphs(text: str) -> str:
    """Tesseract sometimes starts a paragraph inside a sentence (a blank line before a line in
    lower case): that line goes on the paragraph before."""
    return _BROKEN_PARAGRAPH.sub("\n", text)


def find_tessdata(languages: str, given: str = "") -> str:
    """The folder holding every language's ``.traineddata``: ``given``, else $TESSDATA_PREFIX,
    else where Debian's package puts it; ``OcrUnavailableError`` naming what is missing."""
    wanted = [lang for lang in languages.split("+") if lang]
    candidates = [given] if given else [os.environ.get("TESSDATA_PREFIX", ""), *TESSDATA_DIRS]
    for folder in filter(None, candidates):
        if all((Path(folder) / f"{lang}.traineddata").is_file() for lang in wanted):
            return str(Path(folder)) + os.sep
    if any((Path(folder) / "eng.traineddata").is_file() for folder in filter(None, candidates)):
        packages = " ".join(f"tesseract-ocr-{lang}" for lang in wanted)
        raise OcrUnavailableError(
            f"the OCR language data for {'+'.join(wanted)} is not installed "
            f"(apt-get install {packages})"
        )
    raise OcrUnavailableError(f"no OCR engine is installed ({INSTALL_HINT})")
