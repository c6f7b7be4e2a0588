"""Time what reviewers do all day, in Chromium, against a warm panel server on the demo store.

    .venv/bin/python bench/bench_browser.py [--repeats 20] [--cold-repeats 3]
        [--store /tmp/mlops-bench-browser] [--only "approve"]

Each interaction is timed in the page's own clock from the click (or key press) until the
server's last message of the runs it caused (a run ends with "script finished"), once what
the interaction should show is on screen and the app stayed idle (the readiness check of
the browser tests, whose fixed 0.3 s wait is not counted). The peer measured side by side is
the browser's own floor for a Streamlit page: a rerun of the Overview with nothing changed
(pressing "R"), so each figure also prints as a ratio to it. Targets (p95, 2-core machine)
come from issue #16:

    switch page 1.0 s, tick the 2nd run 1.0 s, pick a 2nd version 1.0 s, first open of
    Data profiles after server start 3 s, sign-in → Overview 1.5 s, approve → alias moved 1.5 s

The demo store is built once in --store (with --sweep-runs 20) and reused. Approvals are
reset between repeats through the core (a rollback), never through MLflow behind the panel.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_core.config import Settings, load_settings  # noqa: E402
from mlops_core.demo.scenario import run_demo, training_experiment  # noqa: E402
from mlops_core.governance.promotion.rollback import rollback  # noqa: E402
from mlops_core.governance.promotion.submit import request_promotion  # noqa: E402
from mlops_core.people.auth import authenticate  # noqa: E402
from mlops_core.stores.registry import Registry  # noqa: E402
from tests.browser import chromium, open_page, sign_in, wait_for_app  # noqa: E402
from tests.servers import streamlit_app  # noqa: E402

MODEL = "churn-predictor"
TARGETS = {
    "rerun, nothing changed (peer)": None,
    "switch page": 1.0,
    "tick the 2nd run to compare": 1.0,
    "pick a 2nd version to compare": 1.0,
    "first open of Data profiles": 3.0,
    "sign-in -> Overview": 1.5,
    "approve -> alias moved": 1.5,
}


def store(folder: Path) -> Settings:
    settings = load_settings({"MLOPS_DATA_DIR": str(folder)})
    if not Registry(settings.tracking_uri).has_models():
        run_demo(settings, sweep_runs=20)
    return load_settings({"MLOPS_DATA_DIR": str(folder)})


# Counts, in the page's own clock, the messages the server sends over Streamlit's socket:
# the last message of a run is its "script finished". The page's script-state attribute
# cannot tell: React may render a run that started and ended within one frame as no change.
COUNT_SERVER_MESSAGES = """(() => {
  const Native = window.WebSocket;
  window.__benchMessages = 0;
  window.__benchLastMessageAt = null;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", () => {
        window.__benchMessages += 1;
        window.__benchLastMessageAt = performance.now();
      });
    }
  };
})();"""
START_COUNTING = """() => {
  window.__benchMessages = 0;
  window.__benchLastMessageAt = null;
  return performance.now();
}"""


def timed(page: Page, action: Callable[[], None], settled: Callable[[], None]) -> float:
    """Seconds from the action until the server's last message of the runs it caused, once
    `settled` has seen the result on screen and the app stay idle (the readiness check's
    fixed 0.3 s of quiet is not counted)."""
    start = page.evaluate(START_COUNTING)
    action()
    page.wait_for_function("window.__benchMessages > 0", timeout=60_000)
    settled()
    last = page.evaluate("window.__benchLastMessageAt")
    return (last - start) / 1000


def _page(browser: Browser) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(COUNT_SERVER_MESSAGES)
    return page


def _main_text(page: Page, text: str) -> Callable[[], None]:
    def settled() -> None:
        wait_for_app(page)
        page.get_by_test_id("stMain").get_by_text(text).first.wait_for()

    return settled


def rerun_peer(page: Page) -> float:
    page.get_by_test_id("stMain").get_by_role("heading", name="Overview").click()
    return timed(page, lambda: page.keyboard.press("r"), _main_text(page, "Overview"))


def switch_page(page: Page, title: str) -> float:
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title)
    return timed(page, link.click, _main_text(page, title))


def _tick(page: Page, row: int) -> None:
    grid = page.get_by_test_id("stMain").get_by_test_id("stDataFrame").first
    grid.wait_for()
    box = grid.bounding_box()
    assert box is not None
    # The row marker column of the glide grid: a header row, then rows of 35 px.
    page.mouse.click(box["x"] + 18, box["y"] + 35 * row + 17)


def _comparison_drawn(page: Page) -> Callable[[], None]:
    """The comparison's tables and its chart are on screen."""
    tables = _main_text(page, "the best value of each metric is highlighted")

    def settled() -> None:
        tables()
        # Other tabs hold charts too (hidden); the one drawn for this comparison is visible.
        page.get_by_test_id("stMain").locator(".scatterlayer").filter(visible=True).first.wait_for()

    return settled


def tick_second_run(page: Page, base: str, experiment: str, first_run: str) -> float:
    """A shared link with one run ticked (the newest), then the second tick."""
    page.goto(f"{base}/experiments?exp={quote(experiment)}&runs={first_run}")
    wait_for_app(page)
    return timed(page, lambda: _tick(page, 2), _comparison_drawn(page))


def pick_second_version(page: Page, base: str) -> float:
    """A shared link with v1 chosen, then v2 picked."""
    page.goto(f"{base}/models?model={MODEL}&versions=v1")
    wait_for_app(page)
    page.get_by_role("tab", name="Compare versions").click()
    wait_for_app(page)
    panel = page.get_by_role("tabpanel", name="Compare versions")
    panel.get_by_test_id("stMultiSelect").first.click()
    option = page.get_by_role("option", name="v2")
    seconds = timed(page, option.click, _comparison_drawn(page))
    page.keyboard.press("Escape")
    return seconds


def first_data_profiles(browser: Browser, env: dict[str, str]) -> float:
    with streamlit_app(env) as base:
        page = _page(browser)
        sign_in(page, base, "viewer", "viewer-demo")
        link = page.get_by_test_id("stSidebarNav").get_by_role("link", name="Data profiles")
        seconds = timed(page, link.click, _main_text(page, "Data profiles"))
        page.close()
        return seconds


def sign_in_to_overview(browser: Browser, base: str) -> float:
    page = _page(browser)
    page.goto(base)
    wait_for_app(page)
    page.get_by_role("textbox", name="Username").fill("viewer")
    page.get_by_role("textbox", name="Password").fill("viewer-demo")
    button = page.get_by_role("button", name="Sign in")

    def settled() -> None:
        page.get_by_role("textbox", name="Username").wait_for(state="detached")
        _main_text(page, "Overview")()
        page.get_by_test_id("stDataFrame").first.wait_for()

    seconds = timed(page, button.click, settled)
    page.close()
    return seconds


def approve_once(page: Page, settings: Settings, registry: Registry) -> float:
    requester = authenticate(settings, "requester", "requester-demo")
    created = request_promotion(settings, registry, requester, MODEL, "3", "benchmark")
    open_page(page, "Approvals")
    page.get_by_role("tab", name="Queue").click()
    wait_for_app(page)
    # The queue also holds the demo's rollout request: pick this one, as a reviewer would.
    queue = page.get_by_role("tabpanel", name="Queue")
    queue.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=f"#{created.id} {MODEL} v3", exact=False).click()
    wait_for_app(page)
    page.get_by_test_id("stMain").get_by_role("button", name="Approve", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox").first.fill("Benchmark approval.")
    confirm = dialog.get_by_role("button", name="Confirm: Approve")

    def settled() -> None:
        wait_for_app(page)
        page.get_by_role("dialog").wait_for(state="detached")
        assert registry.version_by_alias(MODEL).version == "3"

    seconds = timed(page, confirm.click, settled)
    approver = authenticate(settings, "approver", "approver-demo")
    rollback(settings, registry, approver, MODEL, "benchmark reset")
    return seconds


@contextmanager
def signed_in(browser: Browser, base: str, user: str) -> Iterator[Page]:
    page = _page(browser)
    sign_in(page, base, user, f"{user}-demo")
    try:
        yield page
    finally:
        page.close()


def summary(name: str, samples: list[float], peer: float) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    target = TARGETS[name]
    verdict = "" if target is None else ("meets" if p95 <= target else "MISSES")
    goal = "" if target is None else f"{target:.1f}"
    return (
        f"| {name} | {len(samples)} | {p50:.2f} | {p95:.2f} | {p95 / peer:.1f}x | {goal} | "
        f"{verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--store", type=Path, default=Path("/tmp/mlops-bench-browser"))
    parser.add_argument(
        "--only", help="time only the interactions whose name contains this (and the peer)"
    )
    args = parser.parse_args()
    settings = store(args.store)
    env = {"MLOPS_DATA_DIR": str(settings.data_dir)}
    registry = Registry(settings.tracking_uri)
    experiment_name = training_experiment(MODEL)
    experiment = registry.experiment_by_name(experiment_name)
    assert experiment is not None
    first_run = registry.search_runs([experiment.experiment_id], page_size=1).runs.run_id[0]
    results: dict[str, list[float]] = {name: [] for name in TARGETS}

    def wanted(name: str) -> bool:
        return args.only is None or args.only in name

    with chromium() as browser, streamlit_app(env) as base:
        # One untimed pass warms the server's caches, as for a panel already in use.
        with signed_in(browser, base, "approver") as page:
            for title in ("Models", "Experiments", "Overview"):
                switch_page(page, title)
            for _ in range(args.repeats):
                results["rerun, nothing changed (peer)"].append(rerun_peer(page))
                if wanted("switch page"):
                    results["switch page"].append(switch_page(page, "Models"))
                    results["switch page"].append(switch_page(page, "Overview"))
                if wanted("tick the 2nd run to compare"):
                    results["tick the 2nd run to compare"].append(
                        tick_second_run(page, base, experiment_name, first_run)
                    )
                if wanted("pick a 2nd version to compare"):
                    results["pick a 2nd version to compare"].append(pick_second_version(page, base))
                page.goto(base)
                wait_for_app(page)
        if wanted("sign-in -> Overview"):
            for _ in range(args.repeats):
                results["sign-in -> Overview"].append(sign_in_to_overview(browser, base))
        if wanted("approve -> alias moved"):
            with signed_in(browser, base, "approver") as page:
                for _ in range(args.repeats):
                    results["approve -> alias moved"].append(approve_once(page, settings, registry))
        if wanted("first open of Data profiles"):
            for _ in range(args.cold_repeats):
                results["first open of Data profiles"].append(first_data_profiles(browser, env))
    peer = statistics.median(results["rerun, nothing changed (peer)"])
    print("| interaction | n | p50 s | p95 s | p95 / peer p50 | target p95 s | |")
    print("|---|---|---|---|---|---|---|")
    for name, samples in results.items():
        if samples:
            print(summary(name, samples, peer))


if __name__ == "__main__":
    main()
