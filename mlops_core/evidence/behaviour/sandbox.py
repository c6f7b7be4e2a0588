"""Run the probe in a subprocess of its own: a time limit, a memory limit, no secrets.

The model's code (a pickle is code) runs only there. The subprocess is `sys.executable -m
mlops_core.evidence.behaviour.probe` in a new session, so a timeout kills it and every
process it started; its address space is capped with RLIMIT_AS, so a model that allocates
too much gets a MemoryError (or is killed) instead of taking the machine. It reads the
model from a local folder the parent downloaded, so it needs no tracking server, and its
environment carries none of the panel's settings or tokens. Whatever happens, `run_probe`
returns a report: a sandbox that did not complete is a report with `failure` set.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mlops_core.errors import InvalidInput
from mlops_core.evidence.behaviour.probe import MEMORY_EXIT, ProbeJob, empty_report
from mlops_core.evidence.behaviour.report import CheckReport, Progress

PROBE_MODULE = "mlops_core.evidence.behaviour.probe"
# The variables a Python process needs; everything else (the panel's database URLs, tokens,
# cloud credentials) stays out of reach of the model's code.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV", "PYTHONHASHSEED")
# One thread each: BLAS pools reserve address space per thread, which the memory limit counts.
_THREADS_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
    "PYTHONUNBUFFERED": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
_STDERR_TAIL = 2000
_KILL_SIGNALS = (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT)


def _environment() -> dict[str, str]:
    env = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = root
    return {**env, **_THREADS_ENV}


def _limit_memory(memory_mb: int) -> Callable[[], None]:
    limit = memory_mb * 1024 * 1024

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _progress_lines(buffer: bytearray) -> list[Progress]:
    """Complete lines of `buffer` as progress (consumed from it); anything else is ignored."""
    found = []
    while b"\n" in buffer:
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        try:
            found.append(Progress(**json.loads(line.decode("utf-8"))))
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
            continue
    return found


def _kill(process: subprocess.Popen) -> None:
    """Kill the probe's whole process group (its session), then reap the probe."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _watch(
    process: subprocess.Popen, timeout_s: float, on_progress: Callable[[Progress], None] | None
) -> bool:
    """Relay progress until the probe ends (True) or the time is up (False, probe killed)."""
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    buffer = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        open_pipe = True
        while open_pipe:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(process)
                return False
            if not selector.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            open_pipe = bool(chunk)
            buffer += chunk
            for step in _progress_lines(buffer):
                if on_progress is not None:
                    on_progress(step)
    try:
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(process)
        return False
    return True


def _read_report(path: Path) -> CheckReport | None:
    """What the probe wrote last, or None (it wrote nothing, or the file is not a report)."""
    try:
        return CheckReport.from_json(path.read_bytes())
    except (OSError, InvalidInput):
        return None


def _tail(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][-_STDERR_TAIL:] if lines else ""


def _exit_failure(returncode: int, memory_mb: int, stderr: Path) -> str:
    if returncode == MEMORY_EXIT:
        return f"exceeded the memory limit of {memory_mb} MB"
    if returncode < 0 and -returncode in _KILL_SIGNALS:
        name = signal.Signals(-returncode).name
        return f"exceeded the memory limit of {memory_mb} MB (killed by {name})"
    last = _tail(stderr)
    return f"the sandbox ended with exit code {returncode}" + (f": {last}" if last else "")


def run_probe(job: ProbeJob, on_progress: Callable[[Progress], None] | None = None) -> CheckReport:
    """Run `job` in the sandbox; never raises for what the model does, never hangs."""
    folder = Path(job.output_path).parent
    job_file = folder / "job.json"
    job_file.write_text(job.to_json(), encoding="utf-8")
    output = Path(job.output_path)
    with open(folder / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", PROBE_MODULE, str(job_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=folder,
            env=_environment(),
            start_new_session=True,
            preexec_fn=_limit_memory(job.memory_mb),  # noqa: PLW1509  (no threads touch it)
        )
        try:
            finished = _watch(process, job.timeout_s, on_progress)
        finally:
            # Also whatever the model started and left behind in the probe's session.
            _kill(process)
            if process.stdout is not None:
                process.stdout.close()
    report = _read_report(output) or empty_report(job)
    if not finished:
        return replace(report, failure=f"timed out after {job.timeout_s:g} s")
    if process.returncode != 0:
        return replace(
            report, failure=_exit_failure(process.returncode, job.memory_mb, folder / "stderr.txt")
        )
    if not output.exists():
        return replace(report, failure="the sandbox wrote no report")
    return report
