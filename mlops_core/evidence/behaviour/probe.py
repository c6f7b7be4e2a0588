"""The program the sandbox runs: load one model as an MLflow pyfunc and measure how it behaves.

`python -m mlops_core.evidence.behaviour.probe JOB.json` reads its `ProbeJob`, writes one
JSON line of `Progress` per step to its stdout and the `CheckReport` to the job's output
file, again after every step, so that a parent that kills it (timeout) still has what was
measured. Whatever the model itself prints goes to stderr: stdout carries only progress.
This is the only place that imports `mlflow.pyfunc` and the model's flavor: the panel and
the CLI never load a model in their own process.

How each outcome is judged:

- `batch_prediction`: predicting the rows returns one answer per row (passed), else failed.
- `determinism`: two predictions of the same rows are identical (NaN equal to NaN).
- `missing_values.all_nan` (one row whose every value is missing) and
  `missing_values.<column>` (the first row with that one value missing): passed when the
  model predicts it (one finite answer per row); clear_error when it refuses with an
  exception whose message names the problem (MLflow's schema enforcement, or a message
  mentioning NaN / missing / null / infinity / a column name); failed otherwise (a crash
  without such a message, NaN answers, the wrong number of answers). The report's
  `missing_values` is the worst of them: "unclear_failure" if any failed, else
  "clear_error" if any refused, else "predict".
- `schema.wrong_type` (text in a numeric column, or a number in a text column),
  `schema.extra_column` (a column the model does not take) and `schema.missing_column`
  (one input left out): passed when the model's signature enforced it (MLflow refused the
  input) or, for an extra column, when it was ignored and the answers did not change;
  clear_error when the model's own code refused it with a message; failed when it answered
  as if nothing were wrong (a wrong type or a missing column predicted anyway, an extra
  column changing the answers) or crashed without a message.
- `latency`: single-row calls after a warm-up; failed when a call raises.
- `throughput`: one prediction of the throughput batch; failed when it raises.
- `requirements`: the model's requirements.txt (else conda.yaml's pip list) against the
  installed versions; warning for each package missing or at another version.

A MemoryError (the sandbox's address-space limit) ends the probe with `MEMORY_EXIT`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from mlops_core.evidence.behaviour.report import (
    CheckOutcome,
    CheckReport,
    LatencyStats,
    MissingValues,
    Progress,
    SandboxLimits,
)

MEMORY_EXIT = 3
WARMUP_CALLS = 20
LATENCY_CALLS = 500
THROUGHPUT_ROWS = 10_000
# Words that make a refusal clear: the message says what is wrong with the input.
_CLEAR_WORDS = ("nan", "missing", "null", "none", "infinit", "not a number", "schema", "dtype")


@dataclass(frozen=True)
class ProbeJob:
    """What the parent asks: the model's local files, the rows (parquet), the report's
    header and where to write it."""

    model_dir: str
    rows_path: str
    output_path: str
    model: str
    version: str
    run_id: str | None
    model_uri: str
    input_source: str
    timeout_s: float
    memory_mb: int
    latency_calls: int = LATENCY_CALLS
    warmup_calls: int = WARMUP_CALLS
    throughput_rows: int = THROUGHPUT_ROWS

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_file(cls, path: str) -> ProbeJob:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def empty_report(job: ProbeJob, rows_used: int = 0) -> CheckReport:
    return CheckReport(
        model=job.model,
        version=job.version,
        run_id=job.run_id,
        model_uri=job.model_uri,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        input_source=job.input_source,
        rows_used=rows_used,
        limits=SandboxLimits(timeout_s=job.timeout_s, memory_mb=job.memory_mb),
    )


class _Probe:
    def __init__(self, job: ProbeJob, progress: IO[str]) -> None:
        self.job = job
        self.progress = progress
        self.report = empty_report(job)

    def say(self, step: str, done: int, total: int, message: str = "") -> None:
        self.progress.write(json.dumps(asdict(Progress(step, done, total, message))) + "\n")
        self.progress.flush()

    def update(self, **changes: Any) -> None:
        """Change the report and write it out, so a killed probe leaves what it measured."""
        self.report = replace(self.report, **changes)
        self.save()

    def add(self, *outcomes: CheckOutcome, **changes: Any) -> None:
        self.update(outcomes=(*self.report.outcomes, *outcomes), **changes)

    def save(self) -> None:
        path = Path(self.job.output_path)
        partial = path.with_suffix(".partial")
        partial.write_bytes(self.report.to_json())
        partial.replace(path)

    def run(self) -> None:
        rows = pd.read_parquet(self.job.rows_path)
        self.update(
            rows_used=len(rows),
            model_size_mb=_size_mb(Path(self.job.model_dir)),
            requirement_warnings=tuple(requirement_warnings(Path(self.job.model_dir))),
        )
        warnings = self.report.requirement_warnings
        self.add(
            CheckOutcome(
                "requirements",
                "warning" if warnings else "passed",
                "; ".join(warnings) or "every declared requirement is installed as declared",
            )
        )
        self.say("load", 0, 1, "loading the model")
        model = self._load()
        if model is None:
            return
        self.say("load", 1, 1, "model loaded")
        baseline = self._batch(model, rows)
        if baseline is None:
            skipped = "skipped: the model cannot predict the rows"
            self.add(*(CheckOutcome(name, "skipped", skipped) for name in _DEPENDENT))
            return
        self._determinism(model, rows, baseline)
        self._missing_values(model, rows)
        self._schema(model, rows, baseline)
        self._latency(model, rows)
        self._throughput(model, rows)
        self.say("done", 1, 1, "checks complete")

    def _load(self) -> Any:
        import mlflow.pyfunc  # noqa: PLC0415  (the sandbox alone imports the model's code)

        before = _rss_mb()
        try:
            model = mlflow.pyfunc.load_model(self.job.model_dir)
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001
            if _caused_by_memory(exc):
                raise MemoryError from exc
            self.update(failure=f"the model failed to load: {_message(exc)}")
            return None
        self.update(peak_load_memory_mb=round(max(0.0, _peak_rss_mb() - before), 1))
        return model

    def _batch(self, model: Any, rows: pd.DataFrame) -> np.ndarray | None:
        self.say("batch_prediction", 0, 1, f"predicting {len(rows)} rows")
        try:
            answers = _answers(model.predict(rows.copy()))
        except Exception as exc:  # noqa: BLE001
            self.add(CheckOutcome("batch_prediction", "failed", _message(exc)))
            return None
        if len(answers) != len(rows):
            detail = f"{len(answers)} answers for {len(rows)} rows"
            self.add(CheckOutcome("batch_prediction", "failed", detail))
            return None
        self.add(CheckOutcome("batch_prediction", "passed", f"{len(rows)} rows predicted"))
        return answers

    def _determinism(self, model: Any, rows: pd.DataFrame, baseline: np.ndarray) -> None:
        self.say("determinism", 0, 1, "predicting the same rows again")
        try:
            again = _answers(model.predict(rows.copy()))
        except Exception as exc:  # noqa: BLE001
            self.add(
                CheckOutcome("determinism", "failed", f"the second call failed: {_message(exc)}")
            )
            return
        same = _same(baseline, again)
        detail = (
            "two calls on the same rows gave identical answers"
            if same
            else f"two calls on the same rows differ in {_differing(baseline, again)} answer(s)"
        )
        self.add(
            CheckOutcome("determinism", "passed" if same else "failed", detail), deterministic=same
        )

    def _missing_values(self, model: Any, rows: pd.DataFrame) -> None:
        first = rows.iloc[[0]].reset_index(drop=True)
        cases = [("missing_values.all_nan", _with_missing(first, list(first.columns)))]
        cases += [(f"missing_values.{c}", _with_missing(first, [c])) for c in first.columns]
        found: list[MissingValues] = []
        for done, (name, frame) in enumerate(cases):
            self.say("missing_values", done, len(cases), name)
            kind, detail = _classify_missing(model, frame)
            found.append(kind)
            status = {"predict": "passed", "clear_error": "clear_error"}.get(kind, "failed")
            self.report = replace(
                self.report, outcomes=(*self.report.outcomes, CheckOutcome(name, status, detail))
            )
        worst: MissingValues = (
            "unclear_failure"
            if "unclear_failure" in found
            else "clear_error"
            if "clear_error" in found
            else "predict"
        )
        self.update(missing_values=worst)

    def _schema(self, model: Any, rows: pd.DataFrame, baseline: np.ndarray) -> None:
        first = rows.iloc[[0]].reset_index(drop=True)
        expected = baseline[:1]
        self.say("schema", 0, 3, "a wrong type, an extra column, a missing column")
        self.add(
            _schema_outcome(model, "schema.wrong_type", _wrong_type(first), None),
            _schema_outcome(
                model, "schema.extra_column", first.assign(__unexpected_column__=1.0), expected
            ),
            _schema_outcome(model, "schema.missing_column", first.iloc[:, 1:], None)
            if first.shape[1] > 1
            else CheckOutcome("schema.missing_column", "skipped", "the model takes one column"),
        )

    def _latency(self, model: Any, rows: pd.DataFrame) -> None:
        job = self.job
        singles = [rows.iloc[[i % len(rows)]] for i in range(job.warmup_calls + job.latency_calls)]
        samples: list[float] = []
        step = max(1, job.latency_calls // 20)
        try:
            for i, row in enumerate(singles):
                elapsed = _timed_call(model, row)
                if i >= job.warmup_calls:
                    samples.append(elapsed)
                    if len(samples) % step == 0:
                        self.say("latency", len(samples), job.latency_calls, "single-row calls")
        except Exception as exc:  # noqa: BLE001
            self.add(
                CheckOutcome("latency", "failed", f"a single-row call failed: {_message(exc)}")
            )
            return
        stats = latency_stats(samples)
        detail = f"{stats.calls} calls: p50 {stats.p50_ms:.2f} ms, p99 {stats.p99_ms:.2f} ms"
        self.add(CheckOutcome("latency", "passed", detail), latency=stats)

    def _throughput(self, model: Any, rows: pd.DataFrame) -> None:
        count = self.job.throughput_rows
        batch = rows.sample(n=count, replace=True, random_state=0).reset_index(drop=True)
        self.say("throughput", 0, 1, f"predicting a batch of {count} rows")
        started = time.perf_counter()
        try:
            model.predict(batch)
        except Exception as exc:  # noqa: BLE001
            self.add(CheckOutcome("throughput", "failed", _message(exc)), throughput_rows=count)
            return
        elapsed = max(time.perf_counter() - started, 1e-9)
        rate = round(count / elapsed, 1)
        self.add(
            CheckOutcome("throughput", "passed", f"{count} rows in {elapsed:.3f} s"),
            throughput_rows_per_s=rate,
            throughput_rows=count,
        )
        self.say("throughput", 1, 1, f"{rate:,.0f} rows/s")


_DEPENDENT = (
    "determinism",
    "missing_values.all_nan",
    "schema.wrong_type",
    "schema.extra_column",
    "schema.missing_column",
    "latency",
    "throughput",
)


# --- judging answers ------------------------------------------------------------------------


def _answers(output: Any) -> np.ndarray:
    """The model's answers as an array with one entry (or row) per input row."""
    if isinstance(output, pd.DataFrame | pd.Series):
        return output.to_numpy()
    if isinstance(output, dict):
        return pd.DataFrame(output).to_numpy()
    return np.asarray(output)


def _same(left: np.ndarray, right: np.ndarray) -> bool:
    if left.shape != right.shape:
        return False
    try:
        return bool(np.array_equal(left, right, equal_nan=True))
    except TypeError:  # text answers cannot be NaN-compared
        return bool(np.array_equal(left, right))


def _differing(left: np.ndarray, right: np.ndarray) -> int:
    if left.shape != right.shape:
        return max(len(left), len(right))
    unequal = pd.DataFrame(left.reshape(len(left), -1)).ne(
        pd.DataFrame(right.reshape(len(right), -1))
    )
    return int(unequal.any(axis=1).sum())


def _finite(answers: np.ndarray) -> bool:
    try:
        return bool(np.isfinite(answers.astype(float)).all())
    except (TypeError, ValueError):  # text labels: judged by being there at all
        return bool(pd.notna(pd.DataFrame(answers.reshape(len(answers), -1))).all().all())


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    # MLflow's schema errors start with the whole input and schema; the cause is at the end.
    _, marker, cause = text.rpartition("Error: ")
    text = cause.strip() if marker and cause.strip() else text
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:500]}" if first else type(exc).__name__


def _is_mlflow_refusal(exc: BaseException) -> bool:
    return any(cls.__name__ == "MlflowException" for cls in type(exc).__mro__)


def _clear(exc: BaseException, columns: list[str]) -> bool:
    text = str(exc).lower()
    if not text.strip():
        return False
    named = any(str(c).lower() in text for c in columns)
    return _is_mlflow_refusal(exc) or named or any(word in text for word in _CLEAR_WORDS)


def _classify_missing(model: Any, frame: pd.DataFrame) -> tuple[MissingValues, str]:
    try:
        answers = _answers(model.predict(frame))
    except Exception as exc:  # noqa: BLE001
        if _clear(exc, list(frame.columns)):
            return "clear_error", f"refused: {_message(exc)}"
        return "unclear_failure", f"failed without saying why: {_message(exc)}"
    if len(answers) != len(frame):
        return "unclear_failure", f"{len(answers)} answers for {len(frame)} row(s)"
    if not _finite(answers):
        return "unclear_failure", "answered with missing or infinite values"
    return "predict", "predicted"


def _schema_outcome(
    model: Any, name: str, frame: pd.DataFrame, expected: np.ndarray | None
) -> CheckOutcome:
    """`expected` set: the answers the input should still get (an extra column is ignored)."""
    try:
        answers = _answers(model.predict(frame))
    except Exception as exc:  # noqa: BLE001
        if _is_mlflow_refusal(exc):
            return CheckOutcome(name, "passed", f"refused by the signature: {_message(exc)}")
        if str(exc).strip():
            return CheckOutcome(name, "clear_error", f"refused: {_message(exc)}")
        return CheckOutcome(name, "failed", f"failed without saying why: {_message(exc)}")
    if expected is not None and _same(answers, expected):
        return CheckOutcome(name, "passed", "ignored: the answers did not change")
    if expected is not None:
        return CheckOutcome(name, "failed", "the extra column changed the answers")
    return CheckOutcome(name, "failed", "predicted anyway, without a word")


def _with_missing(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    changed = frame.copy()
    for column in columns:
        series = changed[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            changed[column] = series.astype("float64")
        else:
            changed[column] = series.astype(object)
        changed[column] = np.nan
    return changed


def _wrong_type(frame: pd.DataFrame) -> pd.DataFrame:
    """The row with text in its first numeric column (or a number in its first other one)."""
    changed = frame.copy()
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    column = numeric[0] if numeric else frame.columns[0]
    changed[column] = changed[column].astype(object)
    changed[column] = "not a number" if numeric else 12345.678
    return changed


def _runqueue_wait_ns() -> int | None:
    """Nanoseconds this thread has waited for a CPU (Linux schedstat), None elsewhere."""
    try:
        stats = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text()
        return int(stats.split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _timed_call(model: Any, row: pd.DataFrame) -> float:
    """Milliseconds of one call, less the time the thread was ready to run but waited for a
    CPU: on a busy machine that wait measures the machine's load, not the model. A model
    that waits (I/O, a sleep) is not ready to run meanwhile, so its slowness counts."""
    waited = _runqueue_wait_ns()
    started = time.perf_counter()
    model.predict(row)
    elapsed = (time.perf_counter() - started) * 1000
    after = _runqueue_wait_ns()
    if waited is None or after is None:
        return elapsed
    return max(0.0, elapsed - (after - waited) / 1e6)


def latency_stats(samples: list[float]) -> LatencyStats:
    values = np.asarray(samples, dtype=float)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return LatencyStats(
        calls=len(samples),
        p50_ms=round(float(p50), 4),
        p95_ms=round(float(p95), 4),
        p99_ms=round(float(p99), 4),
        mean_ms=round(float(values.mean()), 4),
        max_ms=round(float(values.max()), 4),
        samples_ms=tuple(round(float(v), 3) for v in values),
    )


# --- the model's files and requirements -----------------------------------------------------


def _size_mb(folder: Path) -> float:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return round(total / 1e6, 3)


def declared_requirements(model_dir: Path) -> list[str]:
    """The pip requirements the model was logged with (requirements.txt, else conda.yaml)."""
    text_file = model_dir / "requirements.txt"
    if text_file.is_file():
        lines = text_file.read_text(encoding="utf-8").splitlines()
        return [line.split("#")[0].strip() for line in lines if line.strip()]
    conda_file = model_dir / "conda.yaml"
    if conda_file.is_file():
        import yaml  # noqa: PLC0415  (only models without requirements.txt need it)

        conda = yaml.safe_load(conda_file.read_text(encoding="utf-8")) or {}
        for item in conda.get("dependencies") or []:
            if isinstance(item, dict) and "pip" in item:
                return [str(line).strip() for line in item["pip"] or []]
    return []


def requirement_warnings(model_dir: Path) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415

    warnings = []
    for line in declared_requirements(model_dir):
        if not line or line.startswith("-"):
            continue  # pip options (-r, --index-url) are not packages
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            warnings.append(f"{line!r} is not a requirement pip understands")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            warnings.append(f"{line} is not installed")
            continue
        if requirement.specifier and not requirement.specifier.contains(
            installed, prereleases=True
        ):
            warnings.append(f"{line} declared, {requirement.name} {installed} installed")
    return warnings


# --- memory ---------------------------------------------------------------------------------


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def _caused_by_memory(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def main(argv: list[str]) -> int:
    job = ProbeJob.from_file(argv[1])
    # Progress keeps the real stdout; the model's own prints go to stderr.
    progress = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    probe = _Probe(job, progress)
    try:
        probe.run()
    except MemoryError:
        return MEMORY_EXIT
    except Exception as exc:  # noqa: BLE001
        if _caused_by_memory(exc):
            return MEMORY_EXIT
        traceback.print_exc()
        probe.update(failure=f"the check stopped: {_message(exc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
