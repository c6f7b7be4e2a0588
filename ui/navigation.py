"""The panel's pages in navigation order; the role each needs lives in
`mlops_core.people.access`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import streamlit as st

from mlops_core.identity import Actor
from mlops_core.people.access import allowed_pages
from ui.identity import not_allowed_page


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    icon: str

    @property
    def file(self) -> str:
        return f"pages/{self.key}.py"


# A page is listed here only once it really works. Icons are Streamlit's bundled Material
# icons: emoji show as empty boxes where no emoji font is installed.
PAGES = [
    PageSpec("overview", "Overview", ":material/home:"),
    PageSpec("experiments", "Experiments", ":material/science:"),
    PageSpec("models", "Models", ":material/inventory_2:"),
    PageSpec("data_profiles", "Data profiles", ":material/query_stats:"),
    PageSpec("drift", "Drift", ":material/waves:"),
    PageSpec("quality", "Quality", ":material/monitoring:"),
    PageSpec("fairness", "Fairness", ":material/balance:"),
    PageSpec("approvals", "Approvals", ":material/task_alt:"),
    PageSpec("rollouts", "Rollouts", ":material/alt_route:"),
    PageSpec("audit", "Audit log", ":material/history:"),
    PageSpec("users", "Users and roles", ":material/manage_accounts:"),
    PageSpec("system", "System", ":material/monitor_heart:"),
]


def navigation_plan(actor: Actor) -> list[tuple[PageSpec, bool]]:
    """Each page with whether the actor may open it, in navigation order."""
    allowed = set(allowed_pages(actor))
    return [(spec, spec.key in allowed) for spec in PAGES]


def build_navigation(actor: Actor) -> list[st.Page]:
    """Pages the actor may open; the others answer their URL with "not allowed"."""
    pages = []
    for spec, allowed in navigation_plan(actor):
        if allowed:
            pages.append(st.Page(spec.file, title=spec.title, icon=spec.icon, url_path=spec.key))
        else:
            refusal = partial(not_allowed_page, actor, spec.key)
            pages.append(st.Page(refusal, title=spec.title, url_path=spec.key, visibility="hidden"))
    return pages


def sign_in_navigation(sign_in: Callable[[], None]) -> list[st.Page]:
    """The sign-in form under every page's URL, so a shared link survives signing in."""
    return [st.Page(sign_in, title="Sign in", default=True)] + [
        st.Page(sign_in, title=spec.title, url_path=spec.key, visibility="hidden")
        for spec in PAGES
        if spec.key != "overview"
    ]
