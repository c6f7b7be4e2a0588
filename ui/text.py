"""Values from MLflow, files and people shown as text, never as Markdown or HTML.

Streamlit renders the body of titles, captions and alert boxes as Markdown, so a model
named `**x**` would turn bold, `![](http://…)` would load an image and `[a](javascript:…)`
would become a link. Every message that carries such a value goes through `plain`.
"""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"([\\`*_\[\]()<>#|~$!{}+\-.:=])")


def plain(text: object) -> str:
    """`text` with every character that Markdown gives meaning to escaped."""
    return _MARKDOWN.sub(r"\\\1", str(text))
