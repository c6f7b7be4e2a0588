"""`rollout` on the command line, in-process against private stores, and the demo's
rollout: credit-default v3 at its 10% stage, which `rollout tick` judges on the demo data."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from mlops_core.commands.cli import main
from mlops_core.config import Settings, load_settings
from mlops_core.rollout.publish import Publication, read_publication
from mlops_core.stores.registry import Registry
from tests.rollout_traffic import (
    MODEL,
    SHADOW_THEN_CANARY,
    Traffic,
    approved_request,
    clean_registry,
    rollout_env,
)
from tests.test_workflow_cli import seed_people


@pytest.fixture(scope="module")
def env(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return rollout_env(demo_settings, tmp_path_factory.mktemp("rollout-cli"), SHADOW_THEN_CANARY)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    def run(env: dict[str, str], *args: str, token: str | None = None) -> tuple[int, str, str]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if token is None:
            monkeypatch.delenv("MLOPS_TOKEN", raising=False)
        else:
            monkeypatch.setenv("MLOPS_TOKEN", token)
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_start_status_pause_tick_and_abort(cli, env: dict[str, str]) -> None:
    settings = load_settings(env)
    tokens = seed_people(settings)
    registry = Registry(settings.tracking_uri)
    clean_registry(registry)
    request_id = str(approved_request(settings, registry))
    model = ["--model", MODEL]

    code, _, err = cli(env, "rollout", "start", "--request", request_id)
    assert code == 2 and "`rollout start` changes state, so it needs an access token" in err
    code, _, err = cli(env, "rollout", "start", "--request", request_id, token=tokens["requester"])
    assert code == 2 and "start a rollout" in err and "approver" in err
    approver = tokens["approver"]
    start = ["rollout", "start", "--request", request_id, "--as", "approver"]
    code, out, _ = cli(env, *start, token=approver)
    assert code == 0 and "is at stage 1 of 2 (shadow): shadow." in out
    code, out, _ = cli(env, "rollout", "status", *model, "--json")
    status = json.loads(out)
    assert (code, status["status"], status["stage"], status["mode"]) == (
        0,
        "running",
        "shadow",
        "shadow",
    )
    assert status["latest_evaluation"] is None

    code, _, err = cli(env, "rollout", "pause", *model, "--reason", " ", token=approver)
    assert code == 2 and "A reason is required." in err
    code, out, _ = cli(
        env, "rollout", "pause", *model, "--reason", "freeze", token=tokens["approver"]
    )
    assert code == 0 and "is paused" in out
    Traffic(settings).send(70)
    code, out, _ = cli(env, "rollout", "tick", "--json")
    (held,) = json.loads(out)
    assert (code, held["outcome"], held["status"]) == (0, "held", "paused")
    cli(env, "rollout", "resume", *model, "--reason", "freeze over", token=approver)
    code, out, _ = cli(env, "rollout", "tick", *model)
    assert code == 0 and "credit-default (rollout #1): advanced." in out
    assert read_publication(registry, MODEL) == Publication(1, "canary", "3", "split", 25)
    code, out, _ = cli(env, "rollout", "status", *model)
    assert code == 0 and "Last evaluated" in out and "prediction_drift" in out

    code, out, _ = cli(env, "reconcile")
    assert code == 0, out
    code, out, _ = cli(
        env, "rollout", "abort", *model, "--reason", "enough", token=tokens["approver"]
    )
    assert code == 0 and "is aborted: enough" in out
    code, out, _ = cli(env, "rollout", "status", *model)
    assert code == 1 and "aborted" in out


def test_the_demo_leaves_credit_default_v3_at_its_10_percent_stage(
    cli, demo_settings: Settings, tmp_path: Path
) -> None:
    demo_env = {"MLOPS_DATA_DIR": str(demo_settings.data_dir)}
    code, out, _ = cli(demo_env, "rollout", "status", "--model", MODEL, "--json")
    status = json.loads(out)
    assert code == 0
    assert (status["status"], status["stage"], status["mode"], status["traffic"]) == (
        "running",
        "canary-10",
        "split",
        10,
    )
    registry = Registry(demo_settings.tracking_uri)
    assert read_publication(registry, MODEL) == Publication(
        status["id"], "canary-10", "3", "split", 10
    )
    assert registry.version_by_alias(MODEL).version == "1"

    # The README's rollout example, on a copy of the demo: the same commands, the same output.
    copy = tmp_path / "demo-copy"
    shutil.copytree(demo_settings.data_dir, copy, ignore=shutil.ignore_patterns("artifacts"))
    copied = {"MLOPS_DATA_DIR": str(copy)}
    codes = []
    for args, shown in readme_rollout_example():
        code, out, err = cli(copied, *args)
        codes.append(code)
        assert _timeless(out) == _timeless(shown), (args, err)
    # Advanced to its next stage: nothing for a scheduler's log to flag.
    assert codes == [0, 0, 0]


README = Path(__file__).resolve().parents[1] / "README.md"
PROMPT = "$ python -m mlops_core "


def readme_rollout_example() -> list[tuple[list[str], str]]:
    """The commands of the README's console block on rollouts and the output it shows."""
    section = README.read_text().split("## Staged rollouts", 1)[1]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[list[str], str]] = []
    for line in block.splitlines():
        if line.startswith(PROMPT):
            steps.append((shlex.split(line.removeprefix(PROMPT)), ""))
        else:
            args, shown = steps[-1]
            steps[-1] = (args, shown + line + "\n")
    assert [args[:2] for args, _ in steps] == [
        ["rollout", "status"],
        ["rollout", "tick"],
        ["rollout", "status"],
    ]
    return steps


def _timeless(text: str) -> list[str]:
    """Lines without trailing blanks, and the evaluation's time left out."""
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")
    return [stamp.sub("(time) UTC", line.rstrip()) for line in text.strip().splitlines()]
