"""`kdesk bench` OCR section: pages/s and character error rate of reading scanned pages, made
here from known text (fpdf2 text -> PDFium image -> image-only PDF), clean and degraded (blur,
noise, a slight rotation; seeded), read at two resolutions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from ingest.ocr import OcrOptions, OcrUnavailableError, TesseractReader
from ingest.pdf import parse_pdf

if TYPE_CHECKING:
    from PIL.Image import Image

SCAN_DPI = 300  # the scanner's resolution; OCR then renders the page at each of READ_DPIS
READ_DPIS = (150, 300)


def scanned_pdf(texts: Sequence[str], *, noisy: bool, seed: int = 11) -> bytes:
    """An image-only PDF: each text printed on an A4 page, then scanned at SCAN_DPI."""
    from fpdf import FPDF

    from knowledge.desk.demo import write_pdf

    rng = np.random.default_rng(seed)
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    for image in _page_images(write_pdf("scan", texts)):
        pdf.add_page()
        pdf.image(degrade(image, rng) if noisy else image, x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def _page_images(data: bytes) -> list[Image]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        return [page.render(scale=SCAN_DPI / 72, grayscale=True).to_pil() for page in document]
    finally:
        document.close()


def degrade(image: Image, rng: np.random.Generator) -> Image:
    """A worn photocopy: rotated by up to 1 degree, blurred, speckled with grey noise."""
    from PIL import Image as PilImage
    from PIL import ImageFilter

    angle = float(rng.uniform(-1.0, 1.0))
    turned = image.rotate(angle, resample=PilImage.Resampling.BILINEAR, fillcolor=255)
    blurred = np.asarray(turned.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float32)
    noisy = blurred + rng.normal(0, 25, blurred.shape)
    return PilImage.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def character_error_rate(reference: str, read: str) -> float:
    """Edit distance over the reference's length, whitespace runs counted as one space."""
    ref, hyp = " ".join(reference.split()), " ".join(read.split())
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, char in enumerate(ref, start=1):
        current = [i]
        for j, other in enumerate(hyp, start=1):
            cost = 0 if char == other else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1] / len(ref)


def bench_ocr(texts: Sequence[str], languages: str = "eng") -> dict[str, object]:
    """Each (resolution, clean/noisy) case: pages/s through parse_pdf and the mean CER."""
    try:
        reader = TesseractReader(languages)
    except OcrUnavailableError as exc:
        return {"skipped": str(exc)}
    cases: dict[str, object] = {}
    for noisy in (False, True):
        data = scanned_pdf(texts, noisy=noisy)
        for dpi in READ_DPIS:
            started = time.perf_counter()
            parsed = parse_pdf(data, "scan.pdf", ocr=OcrOptions(reader, dpi))
            seconds = time.perf_counter() - started
            rates = [
                character_error_rate(t, p.text) for t, p in zip(texts, parsed.pages, strict=True)
            ]
            cases[f"{dpi}dpi_{'noisy' if noisy else 'clean'}"] = {
                "pages": len(rates),
                "pages_per_s": round(len(rates) / seconds, 3),
                "cer": round(sum(rates) / len(rates), 4),
                "worst_page_cer": round(max(rates), 4),
                "mean_confidence": round(float(np.mean(list(parsed.ocr_pages.values()))), 1),
            }
    return {
        "engine": reader.name,
        "scanned_at_dpi": SCAN_DPI,
        "cases": cases,
        "threads": bench_threads(reader, scanned_pdf(texts, noisy=False)),
    }


def bench_threads(reader: TesseractReader, data: bytes) -> dict[str, float]:
    """Pages/s of reading the same page images one at a time and two at a time."""
    images = _page_images(data)

    def one_by_one() -> None:
        for image in images:
            reader.read(image)

    def two_at_a_time() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(reader.read, images))

    figures = {}
    for name, run in (("one_thread", one_by_one), ("two_threads", two_at_a_time)):
        started = time.perf_counter()
        run()
        figures[f"{name}_pages_per_s"] = round(len(images) / (time.perf_counter() - started), 3)
    return figures
