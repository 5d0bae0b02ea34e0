"""Why a file of a format other than PDF cannot be read; ``str(err)`` is shown to users."""

from __future__ import annotations

from ingest.document import DocumentError


class FormatError(DocumentError):
    """A file that cannot be read as a document of its type."""


class UnsupportedTypeError(FormatError):
    reason = "unsupported-type"


class MismatchedContentError(FormatError):
    """The content is another kind of file than its name says."""

    reason = "content-does-not-match-name"


class LegacyFormatError(FormatError):
    reason = "legacy-format"


class EncryptedDocumentError(FormatError):
    reason = "password-protected"


class CorruptDocumentError(FormatError):
    reason = "corrupt"


class EmptyDocumentError(FormatError):
    reason = "empty"


class NoTextDocumentError(FormatError):
    reason = "no-text"


class TooLargeDocumentError(FormatError):
    reason = "too-large"
