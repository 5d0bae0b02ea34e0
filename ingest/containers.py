"""What is inside an Office file before any parser touches it: which kind of OOXML package a
ZIP is, whether it would unpack to far more than it weighs (a zip bomb), and whether an OLE
compound file is a password-protected OOXML file or a legacy .doc/.xls/.ppt."""

from __future__ import annotations

import io
import zipfile
from typing import Literal

from ingest.format_errors import CorruptDocumentError, EncryptedDocumentError, TooLargeDocumentError

OfficeKind = Literal["docx", "pptx", "xlsx"]

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
# Office XML compresses about 5-20x; far beyond that, and big, is a zip bomb.
MAX_RATIO = 200
RATIO_CHECKED_ABOVE = 32 * 1024 * 1024

_MAIN_PARTS: dict[str, OfficeKind] = {
    "word/document.xml": "docx",
    "ppt/presentation.xml": "pptx",
    "xl/workbook.xml": "xlsx",
}

# An encrypted OOXML file is an OLE compound file whose directory names these streams (UTF-16).
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")


def office_kind(data: bytes, name: str) -> OfficeKind | None:
    """The kind of OOXML package in ``data`` (a ZIP), None for another ZIP; raise a clear error
    for a damaged, encrypted or bomb-like one, before anything is unpacked."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CorruptDocumentError(
            f'"{name}" is damaged or truncated and cannot be opened (a broken ZIP package).'
        ) from None
    with archive:
        members = archive.infolist()
        check_unpacked_size(members, len(data), name)
        if any(member.flag_bits & 0x1 for member in members):
            raise EncryptedDocumentError(
                f'"{name}" is password-protected; remove the password and upload it again.'
            )
        names = {member.filename for member in members}
    return next((kind for part, kind in _MAIN_PARTS.items() if part in names), None)


def check_unpacked_size(members: list[zipfile.ZipInfo], packed: int, name: str) -> None:
    unpacked = sum(member.file_size for member in members)
    if len(members) > MAX_MEMBERS:
        raise TooLargeDocumentError(
            f'"{name}" is too large when unpacked: {len(members):,} files inside '
            f"(the limit is {MAX_MEMBERS:,})."
        )
    ratio = unpacked / max(packed, 1)
    if unpacked > MAX_UNPACKED_BYTES or (unpacked > RATIO_CHECKED_ABOVE and ratio > MAX_RATIO):
        raise TooLargeDocumentError(
            f'"{name}" is too large when unpacked: {unpacked / 1024**2:,.0f} MB from '
            f"{packed / 1024**2:,.1f} MB (a zip bomb?); it was not opened."
        )


def is_encrypted_ooxml(data: bytes) -> bool:
    """An OLE compound file holding an EncryptedPackage stream: Word, Excel or PowerPoint
    saved with a password."""
    return data.startswith(OLE_MAGIC) and _ENCRYPTED_STREAM in data
