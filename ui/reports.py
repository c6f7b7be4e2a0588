"""Evidently reports on a page, in a frame that cannot reach the panel.

The report (already hardened by `mlops_core.evidence.report_safety`) is the `srcdoc` of an
iframe sandboxed with scripts but without same-origin: its scripts draw the charts in an
opaque origin, so they can read neither the panel's page nor its cookies, cannot navigate
the panel, and its Content-Security-Policy forbids any request. `st.iframe` itself gives a
frame same-origin rights, so it only carries this small wrapper, which runs no script.
"""

from __future__ import annotations

import html

import streamlit as st

REPORT_HEIGHT = 900


def report_frame_html(report: str) -> str:
    """The wrapper document: one full-size sandboxed frame holding the report."""
    return (
        "<!doctype html><html><head><style>html,body{margin:0;height:100%;overflow:hidden}"
        "iframe{border:0;width:100%;height:100%}</style></head><body>"
        '<iframe sandbox="allow-scripts" referrerpolicy="no-referrer" '
        f'title="Evidently report" srcdoc="{html.escape(report, quote=True)}"></iframe>'
        "</body></html>"
    )


def show_report(report: str, height: int = REPORT_HEIGHT) -> None:
    """The report across the page's width; it scrolls inside its frame."""
    st.iframe(report_frame_html(report), height=height, alt="Evidently report")
