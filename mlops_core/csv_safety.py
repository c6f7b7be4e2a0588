"""CSV cells a spreadsheet cannot run: the OWASP rule against CSV (formula) injection.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`,
`@SUM(...)`, `-2+3`), so such a cell gets a leading single quote and is shown as text.

Two decisions on top of OWASP's rule:
- Numbers are left alone: an int or float is written as a number, and so is text that is
  exactly a decimal number (`-1`, `+0.5`, `-1e-3`, e.g. an MLflow param, which is always
  text). A spreadsheet reads those as the number they are, never as a formula.
- Text that already starts with a single quote gets one more, so the rule can be undone
  without guessing: drop one leading quote from any cell that starts with one. This keeps
  exported audit events re-verifiable against their hashes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
# ASCII digits only: `\d` would also accept digits of other scripts, which are text.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def safe_cell(value: object) -> object:
    """`value`, quoted when it is text a spreadsheet would run as a formula."""
    if not isinstance(value, str):
        return value
    if value.startswith(QUOTE):
        return QUOTE + value
    if value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return QUOTE + value
    return value


def safe_row(values: Iterable[object]) -> list[object]:
    return [safe_cell(value) for value in values]


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose cells and column names are safe to write with `to_csv`."""
    safe = frame.map(safe_cell)
    safe.columns = safe_row(frame.columns)
    return safe
