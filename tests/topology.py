"""docker-compose.yml read as the deployment sees it, and the same topology as local
processes: PostgreSQL databases for MLflow, the panel and the inference log, an `mlflow
server` serving artifacts with the compose file's allowed hosts, and the demo seeded through
that server's HTTP API exactly as the compose `demo` service does it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.pg import fresh_pg_url
from tests.servers import ROOT, mlflow_server

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# The subset of compose interpolation the file may use: $$, ${VAR}, ${VAR:-default},
# ${VAR:?error}. Anything else fails the tests instead of being rendered wrongly here.
_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:-|:\?)([^}]*))?\}|(.))")


def compose_variables(text: str) -> set[str]:
    """Names of the variables a compose file reads from the environment or `.env`."""
    return {m.group(2) for m in _VARIABLE.finditer(text) if m.group(2)}


def env_file(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def example_env(**overrides: str) -> dict[str, str]:
    """`.env` as a person makes it from `.env.example`: the defaults plus the secrets."""
    secrets = {
        "POSTGRES_PASSWORD": "example-password",
        "PANEL_DB_PASSWORD": "example-app-password",
        "MLOPS_AUDIT_KEY": "example-audit-key-0123456789abcdefgh",
    }
    return {**env_file(ENV_EXAMPLE), **secrets, **overrides}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        escaped, name, operator, argument, other = match.groups()
        if escaped:
            return "$"
        if other is not None:
            raise ValueError(f"unsupported interpolation in {value!r}")
        found = env.get(name, "")
        if operator == ":?" and not found:
            raise ValueError(f"{name}: {argument}")
        return found if found or operator != ":-" else argument

    return _VARIABLE.sub(substitute, value)


def _render(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _render(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_render(value, env) for value in node]
    return node


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    """docker-compose.yml after interpolation with `env` (as `docker compose config` does)."""
    return _render(yaml.safe_load(COMPOSE_FILE.read_text()), env)


def compose_option(command: list[str], name: str) -> str:
    """The value of `--name=value` in a compose command."""
    prefix = f"--{name}="
    return next(arg.removeprefix(prefix) for arg in command if arg.startswith(prefix))


@dataclass(frozen=True)
class Topology:
    tracking_uri: str
    mlflow_db_url: str
    artifacts_dir: Path
    data_dir: Path
    panel_env: dict[str, str]  # what compose gives the panel and demo containers
    demo_output: str


def seed_demo(command: list[str], env: dict[str, str]) -> str:
    """The compose `demo` service's command, in its own process."""
    program, *args = command
    assert program == "python", command
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command} exited with {result.returncode}:\n{result.stderr}")
    return result.stdout


@contextmanager
def local_topology(folder: Path, sweep_runs: int = 3) -> Iterator[Topology]:
    """Start MLflow on fresh PostgreSQL databases and seed the demo through it, both as
    docker-compose.yml says; stop and drop everything on exit."""
    services = load_compose(example_env(DEMO_SWEEP_RUNS=str(sweep_runs)))["services"]
    allowed_hosts = compose_option(services["mlflow"]["command"], "allowed-hosts")
    with ExitStack() as stack:
        mlflow_db = stack.enter_context(fresh_pg_url())
        panel_db = stack.enter_context(fresh_pg_url())
        inference_db = stack.enter_context(fresh_pg_url())
        artifacts_dir = folder / "mlartifacts"
        tracking_uri = stack.enter_context(mlflow_server(mlflow_db, artifacts_dir, allowed_hosts))
        data_dir = folder / "panel-data"
        env = {
            "MLOPS_DATA_DIR": str(data_dir),
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLOPS_DB_URL": panel_db,
            "MLOPS_INFERENCE_DB_URL": inference_db,
            "MLOPS_AUDIT_KEY": services["panel"]["environment"]["MLOPS_AUDIT_KEY"],
        }
        output = seed_demo(services["demo"]["command"], env)
        yield Topology(tracking_uri, mlflow_db, artifacts_dir, data_dir, env, output)
