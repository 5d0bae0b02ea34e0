"""Spreadsheet-safe exports: every CSV and XLSX file the product offers is written here.

A spreadsheet runs a cell whose text starts with ``=``, ``+``, ``-`` or ``@`` as a formula (a
leading tab or carriage return does not stop it), so a question, a clause, a comment or a user
name typed as ``=HYPERLINK(...)`` would run when someone opens the export. Such text gets a
leading apostrophe, which spreadsheets read as "this is text" (OWASP: CSV injection). Only text
is escaped: numbers stay numbers, a negative number is not a formula.

Rows are mappings (by column name) or sequences (in column order) with ``columns`` naming the
columns, or a pandas DataFrame (its own columns unless ``columns`` picks some).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# characters an XLSX file cannot hold (openpyxl refuses them): C0 controls but tab, LF and CR
_NOT_IN_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

Row = Mapping[str, object] | Sequence[object]


def safe_cell(value: object) -> object:
    """``value``, with an apostrophe before text that a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(out: TextIO, rows: Iterable[Row] | Any, columns: Sequence[str] | None = None) -> int:
    """A header line and the rows, as CSV, every cell made safe; returns the number of rows."""
    header, table = _table(rows, columns)
    writer = csv.writer(out)
    writer.writerow([safe_cell(name) for name in header])
    count = 0
    for count, row in enumerate(table, start=1):  # noqa: B007
        writer.writerow([safe_cell(_present(value)) for value in row])
    return count


def csv_bytes(
    rows: Iterable[Row] | Any, columns: Sequence[str] | None = None, *, bom: bool = False
) -> bytes:
    """The rows as UTF-8 CSV; ``bom`` starts it with the byte-order mark Excel needs to read
    UTF-8."""
    buffer = io.StringIO()
    write_csv(buffer, rows, columns)
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")


def xlsx_bytes(
    rows: Iterable[Row] | Any,
    columns: Sequence[str] | None = None,
    *,
    sheet: str = "Export",
    widths: Mapping[str, float] | None = None,
    wrap: Sequence[str] = (),
) -> bytes:
    """The rows as a one-sheet workbook: a bold, frozen header row; text cells are strings
    (never formulas); ``widths`` and ``wrap`` (wrapped text) are by column name."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    header, table = _table(rows, columns)
    book = Workbook()
    worksheet = book.active
    worksheet.title = sheet
    worksheet.append([_xlsx_value(name) for name in header])
    for cell in worksheet[1]:
        cell.font = Font(bold=True)
    for row in table:
        worksheet.append([_xlsx_value(value) for value in row])
    for position, name in enumerate(header, start=1):
        letter = get_column_letter(position)
        if widths and name in widths:
            worksheet.column_dimensions[letter].width = widths[name]
        if name in wrap:
            for cell in worksheet[letter][1:]:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    worksheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _table(
    rows: Iterable[Row] | Any, columns: Sequence[str] | None
) -> tuple[list[str], Iterator[Sequence[object]]]:
    """The header and the rows as value sequences in its order."""
    if hasattr(rows, "itertuples") and hasattr(rows, "columns"):  # a pandas DataFrame
        frame: Any = rows if columns is None else rows[list(columns)]  # type: ignore[index]
        header = [str(name) for name in frame.columns]
        return header, frame.itertuples(index=False, name=None)
    if columns is None:
        raise TypeError("columns must be given unless the rows are a DataFrame")
    names = list(columns)
    return names, (
        [row.get(name) for name in names] if isinstance(row, Mapping) else row for row in rows
    )


def _present(value: object) -> object:
    """None for a missing value (None, NaN, NaT, pandas' NA): an empty cell."""
    if value is None:
        return None
    try:
        return None if value != value else value  # NaN and NaT differ from themselves
    except TypeError:  # pandas' NA has no truth value
        return None


def _xlsx_value(value: object) -> object:
    value = _present(value)
    if isinstance(value, str):
        return safe_cell(_NOT_IN_XLSX.sub("", value))  # stripped first: it may hide a "="
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)  # Excel has no time zones: UTC
    return value
