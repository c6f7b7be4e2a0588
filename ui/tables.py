"""Shaping tables for the screen: a table whose columns run past the page hides them."""

import pandas as pd

# What MLflow and the core tables put in a cell that holds nothing.
BLANKS = {"", "None", "-"}


def without_blank_columns(table: pd.DataFrame, optional: list[str]) -> pd.DataFrame:
    """`table` without those of its `optional` columns that are blank on every row."""
    blank = [
        column
        for column in optional
        if column in table and table[column].map(lambda v: pd.isna(v) or v in BLANKS).all()
    ]
    return table.drop(columns=blank)
