"""The decision record of a promotion request, as Markdown or HTML, for compliance files.

It holds everything a reviewer saw and decided: who asked and why, the candidate's
metrics against the champion frozen at request time, the gates at request time and at
each decision (with their evidence), the decisions with comments and override
justifications, how the request ended, and its audit events with their hashes.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from mlops_core.config import Settings
from mlops_core.errors import MlopsError
from mlops_core.evidence.comparison import TOLERANCE_SLACK, metric_deltas
from mlops_core.governance.gates import GateResult, summarize
from mlops_core.governance.promotion.state import RequestView, get_request
from mlops_core.policy import Policy, describe_target, load_policy
from mlops_core.stores import audit
from mlops_core.stores.db import utcnow
from mlops_core.stores.registry import Registry


@dataclass(frozen=True)
class DecisionRecord:
    request: RequestView
    # `comparison.metric_deltas` of the candidate against the champion frozen at request.
    metrics: pd.DataFrame
    metrics_note: str | None
    events: list[audit.AuditRecord]
    generated_at: datetime


def _run_metrics(registry: Registry, model: str, version: str | None) -> dict[str, float]:
    if version is None:
        return {}
    found = registry.get_version(model, version)
    return registry.get_run(found.run_id).metrics if found.run_id else {}


def metric_comparison(
    registry: Registry, policy: Policy, model: str, version: str, champion_version: str | None
) -> pd.DataFrame:
    """The candidate's metrics against the champion's, as `comparison.metric_deltas` has them."""
    return metric_deltas(
        _run_metrics(registry, model, version),
        _run_metrics(registry, model, champion_version),
        policy.for_model(model),
        policy.metric_direction,
    )


def verdict(regression: float) -> str:
    """How the candidate compares, from its regression (positive: worse than the champion)."""
    if math.isnan(regression):
        return "-"
    if abs(regression) < TOLERANCE_SLACK:
        return "same"
    return "worse" if regression > 0 else "better"


def build_record(settings: Settings, registry: Registry, request_id: int) -> DecisionRecord:
    """Gather the record; metrics the registry cannot give are noted, not fatal."""
    request = get_request(settings, request_id)
    try:
        metrics = metric_comparison(
            registry,
            load_policy(settings.policy_file),
            request.model_name,
            request.version,
            request.champion_version,
        )
        note = None
    except MlopsError as exc:
        metrics, note = pd.DataFrame(), f"Metrics could not be read from MLflow: {exc}"
    events = audit.list_events(settings.db_url, audit.AuditFilter(request_id=request_id))
    return DecisionRecord(request, metrics, note, sorted(events, key=lambda e: e.id), utcnow())


# --- shared formatting ----------------------------------------------------------------------


def _number(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.4f}"
    return str(value)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _policy(source: str | None, sha256: str | None) -> str:
    if sha256 is None:
        return f"{source or 'built-in defaults'} (no policy file)"
    return f"{source} sha256 {sha256}"


def _status(status: str) -> str:
    return status.replace("_", " ")


def _facts(request: RequestView) -> list[tuple[str, str]]:
    return [
        ("Model", request.model_name),
        ("Target", describe_target(request.alias)),
        ("Policy at request", _policy(request.policy_source, request.policy_sha256)),
        ("Candidate version", f"v{request.version}"),
        (
            "Champion at request",
            f"v{request.champion_version}" if request.champion_version else "none",
        ),
        ("Status", _status(request.status)),
        ("Requested by", f"{request.requested_by} (via {request.requested_via})"),
        ("Requested at", _time(request.created_at)),
        ("Reason", request.reason),
        ("Approvals required", str(request.approvals_required)),
        ("Decided at", _time(request.decided_at)),
        ("Applied at", _time(request.applied_at)),
        ("Last error", request.last_error or "-"),
    ]


def _gate_cells(gate: GateResult) -> list[str]:
    return [
        gate.name,
        _status(gate.status),
        _number(gate.observed),
        _number(gate.threshold),
        gate.reason,
        gate.evidence,
    ]


GATE_HEADERS = ["gate", "status", "observed", "threshold", "reason", "evidence"]
METRIC_HEADERS = ["metric", "candidate", "champion", "delta", "candidate is"]
EVENT_HEADERS = ["#", "time", "actor", "action", "reason", "hash"]


def _metric_rows(metrics: pd.DataFrame) -> list[list[str]]:
    return [
        [
            row["metric"],
            _number(row["candidate"]),
            _number(row["champion"]),
            _number(row["delta"]),
            verdict(row["regression"]),
        ]
        for row in metrics.to_dict("records")
    ]


def _event_cells(event: audit.AuditRecord) -> list[str]:
    return [
        str(event.id),
        _time(event.created_at),
        f"{event.actor} ({event.actor_via})",
        event.action,
        event.reason or "",
        event.hash,
    ]


def _decision_title(verdict: str, actor: str, override: bool, at: datetime) -> str:
    label = "Approved with override" if override else verdict.capitalize() + "d"
    return f"{label} by {actor} at {_time(at)}"


# --- Markdown -------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def _md(text: str) -> str:
    """User text as literal Markdown: no links, HTML or table breaks sneak in."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\r", "").replace("\n", " ")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def gates_markdown(results: list[GateResult]) -> str:
    if not results:
        return "_No gates configured for this model._"
    return markdown_table(GATE_HEADERS, [_gate_cells(g) for g in results])


def to_markdown(record: DecisionRecord) -> str:
    request = record.request
    parts = [
        f"# Decision record: promotion request #{request.id}",
        f"Generated {_time(record.generated_at)} by the MLOps control panel.",
        "## Request",
        markdown_table(["field", "value"], [list(fact) for fact in _facts(request)]),
        "## Metrics: candidate vs champion at request",
        _md(record.metrics_note)
        if record.metrics_note
        else markdown_table(METRIC_HEADERS, _metric_rows(record.metrics)),
        f"## Gates at request ({summarize(request.gates_at_request)})",
        gates_markdown(request.gates_at_request),
        "## Decisions",
    ]
    if not request.decisions:
        parts.append("_No decision yet._")
    for decision in request.decisions:
        parts.append(
            "### "
            + _md(
                _decision_title(
                    decision.verdict, decision.actor, decision.override, decision.created_at
                )
            )
        )
        parts.append(f"Comment: {_md(decision.comment)}")
        policy = _policy(decision.policy_source, decision.policy_sha256)
        parts.append(f"Policy at this decision: {_md(policy)}")
        if decision.override:
            parts.append(f"**Override justification:** {_md(decision.justification or '')}")
        parts.append(f"Gates at this decision ({summarize(decision.gates)}):")
        parts.append(gates_markdown(decision.gates))
    parts += [
        "## Audit trail",
        markdown_table(EVENT_HEADERS, [_event_cells(e) for e in record.events]),
    ]
    return "\n\n".join(parts) + "\n"


# --- HTML -----------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}"
    # Long reasons, comments and hashes wrap inside their cell instead of widening the page.
    "td{white-space:pre-wrap;overflow-wrap:anywhere;max-width:40rem}"
    "th{background:#f4f4f4}.failed,.not_evaluated,.not_configured{color:#b00020}.passed{color:#1b5e20}"
    ".override{background:#fff3cd;padding:.5rem}"
)


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def html_table(headers: list[str], rows: list[list[str]], status_column: int | None = None) -> str:
    head = "".join(f"<th>{_h(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            css = f' class="{_h(cell.replace(" ", "_"))}"' if index == status_column else ""
            cells.append(f"<td{css}>{_h(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _gates_html(results: list[GateResult]) -> str:
    if not results:
        return "<p><em>No gates configured for this model.</em></p>"
    return html_table(GATE_HEADERS, [_gate_cells(g) for g in results], status_column=1)


def to_html(record: DecisionRecord) -> str:
    request = record.request
    title = f"Decision record: promotion request #{request.id}"
    parts = [
        f"<h1>{_h(title)}</h1>",
        f"<p>Generated {_h(_time(record.generated_at))} by the MLOps control panel.</p>",
        "<h2>Request</h2>",
        html_table(["field", "value"], [list(fact) for fact in _facts(request)]),
        "<h2>Metrics: candidate vs champion at request</h2>",
        f"<p>{_h(record.metrics_note)}</p>"
        if record.metrics_note
        else html_table(METRIC_HEADERS, _metric_rows(record.metrics)),
        f"<h2>Gates at request ({_h(summarize(request.gates_at_request))})</h2>",
        _gates_html(request.gates_at_request),
        "<h2>Decisions</h2>",
    ]
    if not request.decisions:
        parts.append("<p><em>No decision yet.</em></p>")
    for decision in request.decisions:
        title_text = _decision_title(
            decision.verdict, decision.actor, decision.override, decision.created_at
        )
        parts.append(f"<h3>{_h(title_text)}</h3>")
        parts.append(f"<p>Comment: {_h(decision.comment)}</p>")
        parts.append(
            "<p>Policy at this decision: "
            f"{_h(_policy(decision.policy_source, decision.policy_sha256))}</p>"
        )
        if decision.override:
            parts.append(
                '<p class="override"><strong>Override justification:</strong> '
                f"{_h(decision.justification or '')}</p>"
            )
        parts.append(f"<p>Gates at this decision ({_h(summarize(decision.gates))}):</p>")
        parts.append(_gates_html(decision.gates))
    parts += [
        "<h2>Audit trail</h2>",
        html_table(EVENT_HEADERS, [_event_cells(e) for e in record.events]),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_h(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
