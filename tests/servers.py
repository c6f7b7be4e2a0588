"""Starting real server processes (streamlit, mlflow) on free loopback ports for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 90) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited with {process.returncode}")
        try:
            response = requests.get(url, timeout=2)
            if response.ok:
                return response
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _stop(process: subprocess.Popen) -> None:
    """End the server and everything it started: `mlflow server` runs uvicorn and job
    consumers as children that outlive a plain terminate of the parent."""
    _signal_group(process, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    _signal_group(process, signal.SIGKILL)
    process.wait()


@contextmanager
def running(
    command: list[str], env: dict[str, str], health_url: str, timeout: float = 90
) -> Iterator[None]:
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / f"server-{abs(hash(tuple(command)))}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(health_url, process, timeout)
        yield
    finally:
        _stop(process)
        log.close()


@contextmanager
def streamlit_app(env: dict[str, str], script: str = "app.py") -> Iterator[str]:
    """`streamlit run <script>` on a free port; yields its base URL once it is healthy."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        script,
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
    ]
    base = f"http://127.0.0.1:{port}"
    with running(command, env, f"{base}/_stcore/health"):
        yield base


@contextmanager
def mlflow_server(
    backend_store_uri: str,
    artifacts_dir: Path,
    allowed_hosts: str = "127.0.0.1:*",
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """`mlflow server` on a free port serving artifacts from `artifacts_dir` and answering
    only the `allowed_hosts` Host headers (with `extra_env` set); yields its base URL once
    healthy."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        str(artifacts_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--allowed-hosts",
        allowed_hosts,
    ]
    # The panel needs no MLflow job runner (GenAI jobs); compose turns it off too.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(extra_env or {})}
    # The first start creates MLflow's tables in the empty database, which takes a while.
    with running(command, env, f"http://127.0.0.1:{port}/health", timeout=180):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def worker(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python -m mlops_core worker` on a free port; yields its base URL and the process
    (a test may kill it) once /healthz answers."""
    port = free_port()
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / f"worker-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "worker", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", process, timeout=90)
        yield base, process
    finally:
        _stop(process)
        log.close()
