"""Plain-text and JSON output shared by the CLI commands."""

from __future__ import annotations

import json
import math
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from contextvars import ContextVar
from typing import IO, Any

# Where `print_json` writes while `json_document_only` sends everything else to stderr.
_document: ContextVar[IO[str] | None] = ContextVar("json_document", default=None)


def _finite(value: Any) -> Any:
    # JSON has no NaN: an undefined number is null, which every consumer understands.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def print_json(value: Any) -> None:
    stream = _document.get() or sys.stdout
    print(json.dumps(_finite(value), indent=2, default=str, allow_nan=False), file=stream)


@contextmanager
def json_document_only(enabled: bool) -> Iterator[None]:
    """With --json, stdout carries the one JSON document and nothing else: whatever a
    library prints meanwhile (MLflow's "View run ... at" links for an HTTP tracking server,
    say) goes to stderr, where a pipeline's `json.load(stdout)` never sees it."""
    if not enabled:
        yield
        return
    token = _document.set(sys.stdout)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        _document.reset(token)


def plain(text: object) -> str:
    """`text` safe to print on a terminal: control characters (escape sequences that could
    rewrite the screen, carriage returns that hide a line) shown escaped, not obeyed."""
    return "".join(
        repr(char)[1:-1] if unicodedata.category(char) in ("Cc", "Cf") else char
        for char in str(text)
    )


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in [h] + [r[i] for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
