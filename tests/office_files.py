"""Small Office files for tests (written by knowledge.evaluation.office_samples) and the broken
ones a reader must refuse clearly."""

from __future__ import annotations

import io
import zipfile

from knowledge.evaluation.office_samples import make_docx, make_pptx, make_xlsx

__all__ = ["encrypted", "make_docx", "make_pptx", "make_xlsx", "many_members", "zip_bomb"]


def encrypted(data: bytes, password: str = "secret") -> bytes:
    """An OOXML file saved with a password: an OLE compound file with an EncryptedPackage."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()


def zip_bomb(main_part: str = "word/document.xml", size: int = 64 * 1024 * 1024) -> bytes:
    """A small ZIP that would unpack to ``size`` bytes of zeros under an Office part name."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(main_part, "w", force_zip64=True) as member,
    ):
        chunk = b"\0" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return buffer.getvalue()


def many_members(count: int = 10_001) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
        for i in range(count):
            archive.writestr(f"x/{i}", "")
    return buffer.getvalue()
