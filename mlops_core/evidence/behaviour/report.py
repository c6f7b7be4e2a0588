"""What the behaviour checks of one model version found, as stored evidence.

A `CheckReport` is written by the probe (the sandboxed subprocess that loaded the model),
stored as `checks/report.json` on the version's run and read back by the gates and pages.
Every number in it was measured in that subprocess; the panel process never loads the
model. `failure` is set when the sandbox itself did not complete (timeout, memory limit,
the model failing to load): the measurements it did not reach are None, and a gate on them
is "not evaluated", which blocks.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from mlops_core.errors import InvalidInput

REPORT_DIR = "checks"
REPORT_FILE = "report.json"
REPORT_ARTIFACT = f"{REPORT_DIR}/{REPORT_FILE}"
STATUS_TAG = "mlops.checks.status"
METRIC_PREFIX = "checks."
SCHEMA_VERSION = 1

Status = Literal["passed", "failed", "clear_error", "warning", "skipped"]
STATUSES: tuple[str, ...] = ("passed", "failed", "clear_error", "warning", "skipped")

# How the model meets rows with missing values: it predicts them, refuses them with an
# error that says what is wrong, or fails some other way (a crash, a wrong-shaped answer).
MissingValues = Literal["predict", "clear_error", "unclear_failure"]
MISSING_VALUES: tuple[str, ...] = ("predict", "clear_error", "unclear_failure")


@dataclass(frozen=True)
class LatencyStats:
    """Single-row call latency after warm-up; `samples_ms` feeds the histogram."""

    calls: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    samples_ms: tuple[float, ...] = ()


@dataclass(frozen=True)
class CheckOutcome:
    """One check: `name` such as "batch_prediction", "determinism",
    "missing_values.all_nan", "missing_values.<column>", "schema.wrong_type",
    "schema.extra_column", "schema.missing_column", "requirements"."""

    name: str
    status: Status
    detail: str = ""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float
    memory_mb: int


@dataclass(frozen=True)
class CheckReport:
    model: str
    version: str
    run_id: str | None
    model_uri: str
    created_at: str  # ISO 8601, UTC
    # Where the rows came from ("the version's input example", "evaluation set: ...").
    input_source: str
    rows_used: int
    limits: SandboxLimits
    outcomes: tuple[CheckOutcome, ...] = ()
    deterministic: bool | None = None
    missing_values: MissingValues | None = None
    latency: LatencyStats | None = None
    throughput_rows_per_s: float | None = None
    throughput_rows: int = 0
    model_size_mb: float | None = None
    peak_load_memory_mb: float | None = None
    requirement_warnings: tuple[str, ...] = ()
    # Empty when the sandbox completed; else why it did not ("timed out after 120 s").
    failure: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def completed(self) -> bool:
        return not self.failure

    def outcome(self, name: str) -> CheckOutcome | None:
        return next((o for o in self.outcomes if o.name == name), None)

    def metrics(self) -> dict[str, float]:
        """The MLflow metrics of this report (only the measured ones)."""
        values: dict[str, float | None] = {
            "latency_p50_ms": self.latency.p50_ms if self.latency else None,
            "latency_p95_ms": self.latency.p95_ms if self.latency else None,
            "latency_p99_ms": self.latency.p99_ms if self.latency else None,
            "deterministic": None if self.deterministic is None else float(self.deterministic),
            "throughput_rows_per_s": self.throughput_rows_per_s,
            "model_size_mb": self.model_size_mb,
            "peak_load_memory_mb": self.peak_load_memory_mb,
            "missing_values_ok": None
            if self.missing_values is None
            else float(self.missing_values != "unclear_failure"),
        }
        return {
            f"{METRIC_PREFIX}{key}": float(value)
            for key, value in values.items()
            if value is not None and math.isfinite(value)
        }

    def status_tag(self) -> str:
        return "completed" if self.completed else "failed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> CheckReport:
        """Rebuild a report, refusing anything that is not one (stored evidence is input)."""
        try:
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            if data.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema_version {data.get('schema_version')!r}")
            fields = dict(data)
            fields["limits"] = SandboxLimits(**fields["limits"])
            fields["outcomes"] = tuple(_outcome(o) for o in fields.get("outcomes", ()))
            latency = fields.get("latency")
            if latency is not None:
                latency = dict(latency)
                latency["samples_ms"] = tuple(float(v) for v in latency.get("samples_ms", ()))
                fields["latency"] = LatencyStats(**latency)
            fields["requirement_warnings"] = tuple(
                str(w) for w in fields.get("requirement_warnings", ())
            )
            missing = fields.get("missing_values")
            if missing is not None and missing not in MISSING_VALUES:
                raise ValueError(f"missing_values {missing!r}")
            return cls(**fields)
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidInput(f"Not a behaviour check report: {exc}") from None

    @classmethod
    def from_json(cls, data: bytes) -> CheckReport:
        try:
            return cls.from_dict(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"Not a behaviour check report: {exc}") from None


def _outcome(data: Any) -> CheckOutcome:
    outcome = CheckOutcome(**data)
    if outcome.status not in STATUSES:
        raise ValueError(f"check status {outcome.status!r}")
    return outcome


@dataclass(frozen=True)
class Progress:
    """A step of a running check, reported by the probe as it goes."""

    step: str
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)
