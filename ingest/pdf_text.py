"""Page text as it is indexed: normalised characters, words broken at line ends mended, running
headers and footers removed, and the document's title chosen."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

# A word broken at a line end: "exam-\nple"; PDFium reports such hyphens as \x02 and joins
# the lines itself ("exam\x02ple"); \xad is a soft hyphen.
_BROKEN_WORD = re.compile(r"(\S*[A-Za-z0-9])(?:-[ \t]*\n[ \t]*|[\x02\xad][ \t]*\n?[ \t]*)(?=\w)")


# Line-end hyphens after these are real ("non-exclusive"), not syllable breaks. Prefixes
# that also start plain words ("anti-cipate", "co-venant", "multi-ple") are left out.
_COMPOUND_PREFIXES = frozenset({"non", "self", "third", "well"})


_DELETED = dict.fromkeys([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F], None)


_TRANSLATION = str.maketrans(
    {
        **_DELETED,
        "\t": " ",
        "\xa0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u3000": " ",
        "\x0c": "\n",
        "\x85": "\n",
        "\u2028": "\n",
        "\u2029": "\n",
        "\xad": None,
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\ufeff": None,
        "\ufffe": None,
        # Symbol-font glyphs that extractors report as private-use characters.
        "\uf0b7": "•",
        "\uf0a7": "▪",
        "\uf0b3": "≥",
        "\uf0a3": "≤",
        "\uf0b1": "±",
        "\uf0b4": "×",
    }
)


_SPACE_RUN = re.compile(r"[ \u2000-\u200a]{2,}|[\u2000-\u200a]")


_BLANK_LINE_RUN = re.compile(r"\n{3,}")


def normalise_page_text(raw: str) -> str:
    """Clean one page's extracted text; line breaks survive (chunking reads structure)."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = _BROKEN_WORD.sub(_mend_broken_word, text)
    text = _SPACE_RUN.sub(" ", text.translate(_TRANSLATION))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINE_RUN.sub("\n\n", text).strip()


def _mend_broken_word(match: re.Match[str]) -> str:
    left = match.group(1)
    next_char = match.string[match.end()]
    last_word = re.split(r"[^A-Za-z]", left)[-1].lower()
    keeps_hyphen = (
        not next_char.islower()
        or left[-1].isdigit()  # "60-\nday", "2019-\n2020"
        or "-" in left  # "person-to-\nperson"
        or last_word in _COMPOUND_PREFIXES
    )
    return left + "-" if keeps_hyphen else left


EDGE_LINES = 3  # how many lines at the top and bottom of a page can be header/footer


MIN_PAGES_FOR_RUNNING_LINES = 3


# Covers, exhibits and appendices often lack the running footer, so "most pages" is 40%.
RUNNING_LINE_MIN_SHARE = 0.4


_PAGE_NUMBER_KEY = "<page number>"


_PAGE_NUMBER = re.compile(
    r"(?:page\s*)?[-–—(\[]?\s*(\d{1,4}|[ivxlc]{1,7})\s*[-–—)\]]?(?:\s*(?:of|/)\s*\d{1,4})?",
    re.IGNORECASE,
)


# Only a number at either end of a line is masked ("Acme | Q1 2023 Report | 7"): a page
# counter sits there, while numbers inside a line are content.
_EDGE_NUMBER = re.compile(r"^\d+\b|\b\d+$")


def remove_running_lines(page_texts: Sequence[str]) -> list[str]:
    """Drop header/footer lines and page numbers that repeat at the edges of most pages.

    Lines are compared with a leading or trailing number masked ("Acme | 3" ~ "Acme | 4");
    a line only counts, and is only removed, within the first or last ``EDGE_LINES`` lines
    of a page.
    """
    pages_with_text = sum(1 for text in page_texts if text)
    if pages_with_text < MIN_PAGES_FOR_RUNNING_LINES:
        return list(page_texts)
    key_of = _running_key_function(len(page_texts))
    counts: Counter[str] = Counter()
    for text in page_texts:
        counts.update({key_of(line) for line in _edge_lines(text.split("\n"))} - {""})
    needed = max(MIN_PAGES_FOR_RUNNING_LINES, RUNNING_LINE_MIN_SHARE * pages_with_text)
    running = {key for key, count in counts.items() if count >= needed}
    if not running:
        return list(page_texts)
    return [_without_running_lines(text, running, key_of) for text in page_texts]


def _edge_lines(lines: list[str]) -> list[str]:
    return lines[:EDGE_LINES] + lines[-EDGE_LINES:]


def _running_key_function(page_count: int) -> Callable[[str], str]:
    # Front matter shifts printed numbers, but a "page number" far beyond the page count
    # is a value (a year, an amount), not a page number.
    highest_page_number = page_count + 100

    def key_of(line: str) -> str:
        if not line or len(line) > 150:
            return ""
        match = _PAGE_NUMBER.fullmatch(line)
        if match:
            number = match.group(1)
            if not number.isdigit() or int(number) <= highest_page_number:
                return _PAGE_NUMBER_KEY
        return _EDGE_NUMBER.sub("#", " ".join(line.lower().split()))

    return key_of


def _without_running_lines(text: str, running: set[str], key_of: Callable[[str], str]) -> str:
    lines = text.split("\n")
    edge = set(range(min(EDGE_LINES, len(lines)))) | set(
        range(max(0, len(lines) - EDGE_LINES), len(lines))
    )
    kept = [line for i, line in enumerate(lines) if i not in edge or key_of(line) not in running]
    return _BLANK_LINE_RUN.sub("\n\n", "\n".join(kept)).strip()


TITLE_MAX_CHARS = 120


TITLE_MAX_WORDS = 12


_JUNK_TITLES = frozenset(
    {
        "untitled",
        "untitled document",
        "document",
        "new document",
        "title",
        "no title",
        "none",
        "null",
        "unknown",
        "print",
        "pdf",
        "slide 1",
        "powerpoint presentation",
        "presentation",
    }
)


_OFFICE_PREFIX = re.compile(r"^(microsoft\s+)?(word|excel|powerpoint|office)\s*-\s", re.I)


_FILE_EXTENSION = re.compile(r"\.(docx?|xlsx?|pptx?|pdf|rtf|txt|odt|indd|qxd|html?|tmp)$", re.I)


_NUMBERED_JUNK = re.compile(r"^(document|doc|untitled|slide|microsoft word)\s*\d*$", re.I)


def choose_title(metadata_title: str, page_texts: Sequence[str], file_name: str) -> str:
    """The metadata title if meaningful, else a title-like first line, else the file name."""
    return (
        _meaningful_metadata_title(metadata_title)
        or _title_from_first_page(page_texts)
        or title_from_file_name(file_name)
    )


def _meaningful_metadata_title(title: str) -> str | None:
    title = " ".join(title.replace("\x00", "").split())
    letters = sum(ch.isalpha() for ch in title)
    digits = sum(ch.isdigit() for ch in title)
    if letters < 3 or digits > letters or len(title) > 200:
        return None  # "", "0000320193-23-000006"
    if title.lower() in _JUNK_TITLES or _NUMBERED_JUNK.match(title):
        return None
    if _OFFICE_PREFIX.match(title) or _FILE_EXTENSION.search(title) or "\\" in title:
        return None
    return title[:TITLE_MAX_CHARS]


_FRONT_MATTER = [
    re.compile(p, re.I)
    for p in (
        r"(exhibit|annex|schedule|appendix|attachment)\s+[\w.\-()]+",
        r"(strictly\s+)?(private\s+(and|&)\s+)?confidential|execution (version|copy)|draft",
        r"(table of )?contents",
        r"(united states )?securities and exchange commission|united states",
        r"washington,? d\.? ?c\.?.*",
        r"form [\w\-]+",
        r"\S+\.(com|org|net|gov|edu|io|co)(\.\w\w)?(/\S*)?|www\.\S+|\S+@\S+",
        r"\d+\s+[\w\s]+\b(street|st|road|rd|avenue|ave|drive|lane|boulevard|blvd|suite)\.?",
    )
]


_DATE = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d|"
    r"\d\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|"
    r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b",
    re.I,
)


_LONG_NUMBER_END = re.compile(r"\b(?!(19|20)\d\d$)\d{4,}$")  # postcode, phone; not a year


_NUMBERED_LINE = re.compile(r"([IVXLC]+|\d+(\.\d+)*|[A-Z])[.)]\s")


_DANGLING_END = re.compile(r"(,|&|\b(and|or|of|for|the|in|on|to|with|a|an))$", re.I)


FIRST_PAGE_LINES_TO_SCAN = 8


def _title_from_first_page(page_texts: Sequence[str]) -> str | None:
    first_text = next((text for text in page_texts[:3] if text), "")
    lines = [line for line in first_text.split("\n") if line][:FIRST_PAGE_LINES_TO_SCAN]
    for index, line in enumerate(lines):
        if _is_front_matter(line):
            continue
        title = _with_continuation_lines(line, lines[index + 1 :])
        return title if _looks_like_title(title) else None
    return None


def _is_front_matter(line: str) -> bool:
    if sum(ch.isalpha() for ch in line) < 3:
        return True
    if _DATE.search(line) and len(line.split()) <= 6:
        return True
    return any(pattern.fullmatch(line) for pattern in _FRONT_MATTER)


def _with_continuation_lines(line: str, following: list[str]) -> str:
    """Titles wrap: "RISK MANAGEMENT GUIDELINES FOR" + "BANKS AND ..." is one title."""
    title = line
    for next_line in following[:2]:
        continues = _DANGLING_END.search(title) or (title.isupper() and next_line.isupper())
        if not continues or len(title) + len(next_line) > TITLE_MAX_CHARS:
            break
        if _is_front_matter(next_line) or _NUMBERED_LINE.match(next_line):
            break
        title = f"{title} {next_line}"
    return title


def _looks_like_title(line: str) -> bool:
    if not 3 <= len(line) <= TITLE_MAX_CHARS or len(line.split()) > TITLE_MAX_WORDS:
        return False
    if _LONG_NUMBER_END.search(line):
        return False
    if not (line[0].isupper() or line[0].isdigit()):
        return False
    return not line.endswith((".", ",", ";", ":")) and not _DANGLING_END.search(line)


def title_from_file_name(file_name: str) -> str:
    stem = PurePosixPath(file_name.replace("\\", "/")).name
    stem = re.sub(r"\.pdf$", "", stem, flags=re.I)
    pretty = " ".join(stem.replace("_", " ").split())
    return pretty or "Untitled document"
