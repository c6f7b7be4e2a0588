"""Markdown that someone typed into MLflow, made safe to render as Markdown.

Model and version descriptions are Markdown in MLflow's UI, so the panel renders them as
Markdown too, but never the raw HTML inside them: a description is whatever anyone with write
access to the registry typed, `<script>` and `<img onerror=…>` included. Streamlit leaves raw
HTML out unless `unsafe_allow_html` is set; escaping it here does not depend on that, and
shows the text as it was typed. Images would load from any address when a page opens, so
they become links; links go to http(s) and mailto addresses only.
"""

from __future__ import annotations

import re

_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_IMAGE = re.compile(r"!\[")
# An inline link target, or a reference definition, that is not http(s) or mailto.
_UNSAFE_TARGET = re.compile(r"\]\((?!\s*(?:https?://|mailto:))")
_UNSAFE_DEFINITION = re.compile(
    r"^( {0,3})\[([^\]\n]*)\]:(?!\s*(?:https?://|mailto:))", re.MULTILINE
)


def safe_markdown(text: str) -> str:
    """`text` as Markdown without raw HTML, images, or links other than http(s)/mailto."""
    escaped = text.translate(_HTML)
    escaped = _IMAGE.sub(r"\\![", escaped)
    escaped = _UNSAFE_TARGET.sub(r"]\\(", escaped)
    return _UNSAFE_DEFINITION.sub(r"\1\\[\2]:", escaped)
