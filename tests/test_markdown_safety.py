"""Descriptions render as Markdown, never as the HTML someone typed into MLflow."""

from __future__ import annotations

import pytest

from mlops_core.markdown_safety import safe_markdown
from tests.team_store import HOSTILE_DESCRIPTION


def test_raw_html_becomes_text_and_markdown_stays() -> None:
    safe = safe_markdown(HOSTILE_DESCRIPTION)
    assert "<" not in safe and ">" not in safe
    assert "&lt;script&gt;alert('xss')&lt;/script&gt;" in safe
    assert '&lt;img src=x onerror="alert(1)"&gt;' in safe
    assert safe.startswith("# Churn model") and "**growth**" in safe
    assert "[runbook](https://example.invalid/runbook)" in safe


@pytest.mark.parametrize(
    ("typed", "rendered"),
    [
        ("[x](javascript:alert(1))", "[x]\\(javascript:alert(1))"),
        ("[x]( data:text/html,hi)", "[x]\\( data:text/html,hi)"),
        ("![pixel](https://tracker.example/p.png)", "\\![pixel](https://tracker.example/p.png)"),
        ("[ref]: javascript:alert(1)", "\\[ref]: javascript:alert(1)"),
        ("[ref]: https://example.invalid", "[ref]: https://example.invalid"),
        ("[mail](mailto:team@example.invalid)", "[mail](mailto:team@example.invalid)"),
        ("Tom & Jerry", "Tom &amp; Jerry"),
    ],
)
def test_links_go_to_web_or_mail_addresses_and_images_do_not_load(
    typed: str, rendered: str
) -> None:
    assert safe_markdown(typed) == rendered
