"""Evidently's HTML reports made safe to show and to hand out: data is never code.

Evidently writes the data it reports (column names, category values) as JSON inside a
`<script>` element. JSON leaves `</script>` as it is, so a column named
`</script><script>…` closes the element and runs as script in whoever opens the report.
`harden_report` re-encodes that JSON the way HTML-embedded JSON must be encoded (`<`, `>`
and `&` as `\\u003c`, `\\u003e`, `\\u0026`: the same data for JavaScript, inert for the
HTML parser), adds a Content-Security-Policy that lets the report's inline scripts draw
but forbids every network request, and a visible note that the file embeds data.

The UI shows the result inside a sandboxed iframe without same-origin, so even a script
that slipped through could not reach the panel (see `ui/reports.py`).
"""

from __future__ import annotations

import json
import re

from mlops_core.errors import InvalidInput

# Inline scripts and styles only (Evidently embeds its whole bundle), fonts and images from
# data: URLs, and nothing fetched, posted, framed or submitted anywhere.
REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
    "frame-src 'none'; form-action 'none'; base-uri 'none'"
)
DATA_WARNING = (
    "This report embeds the data it describes (column names, values and statistics of the "
    "reference and current data). Share it only with people allowed to see that data."
)
_DATA_ASSIGNMENT = re.compile(r"var ((?:additional_graphs_)?metric_[0-9a-f]{32}) = ")
_HTML_SIGNIFICANT = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _html_safe_json(value: object) -> str:
    text = json.dumps(value)
    for char, escaped in _HTML_SIGNIFICANT.items():
        text = text.replace(char, escaped)
    return text


def _reencode_data(html: str) -> str:
    """Every data assignment Evidently writes, decoded as JSON and encoded HTML-safe."""
    decoder = json.JSONDecoder()
    parts: list[str] = []
    position = 0
    found = 0
    while (match := _DATA_ASSIGNMENT.search(html, position)) is not None:
        try:
            value, end = decoder.raw_decode(html, match.end())
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"The Evidently report's data could not be read: {exc}") from None
        parts += [html[position : match.end()], _html_safe_json(value)]
        position = end
        found += 1
    if found == 0:
        # An Evidently release that embeds data differently must not be shown unchecked.
        raise InvalidInput("The Evidently report has no data block this panel knows how to check.")
    parts.append(html[position:])
    return "".join(parts)


def harden_report(html: str) -> str:
    """The report with its data HTML-safe, a no-network CSP and a note that it holds data."""
    safe = _reencode_data(html)
    head = (
        f'<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}"><!-- {DATA_WARNING} -->'
    )
    banner = (
        '<div role="note" style="font:14px sans-serif;background:#fff4e5;color:#663c00;'
        f'padding:8px 12px;border-bottom:1px solid #f0c36d">{DATA_WARNING}</div>'
    )
    if "<head>" not in safe or "<body>" not in safe:
        raise InvalidInput("The Evidently report is not a whole HTML document.")
    return safe.replace("<head>", "<head>" + head, 1).replace("<body>", "<body>" + banner, 1)
