"""The panel database's rollout tables: each staged rollout and every evaluation of it.

The rollout row is the truth about a rollout; what MLflow shows (the `challenger` alias and
the `mlops.rollout.*` tags) is published from it, and `published` says whether the last
change reached MLflow, so a tick or reconcile finishes a publication a dead process left.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mlops_core.stores.db import Base, utcnow

ACTIVE_STATUSES = ("running", "paused", "promoting")
ACTIVE_ROLLOUT = text("status IN ('running', 'paused', 'promoting')")


class Rollout(Base):
    __tablename__ = "rollout"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("promotion_request.id"), unique=True)
    model_name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    champion_version: Mapped[str | None] = mapped_column(String(64))
    # The plan as the policy stated it at the start (RolloutPlan as JSON), and that policy.
    plan: Mapped[dict] = mapped_column(JSON)
    policy_sha256: Mapped[str | None] = mapped_column(String(64))
    key_metric: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    stage_index: Mapped[int] = mapped_column(Integer, default=0)
    stage_started_at: Mapped[datetime] = mapped_column(DateTime)
    started_by: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Why it is where it is now: the breach, the pause or abort reason.
    reason: Mapped[str | None] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    # The tick lease: one tick per model at a time, across processes and hosts.
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index(
            "uq_active_rollout_per_model",
            "model_name",
            unique=True,
            sqlite_where=ACTIVE_ROLLOUT,
            postgresql_where=ACTIVE_ROLLOUT,
        ),
    )


class RolloutEvaluation(Base):
    """One evaluation of a stage's minimums and guardrails, kept as evidence."""

    __tablename__ = "rollout_evaluation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollout.id"), index=True)
    stage_index: Mapped[int] = mapped_column(Integer)
    stage_name: Mapped[str] = mapped_column(String(64))
    traffic: Mapped[float] = mapped_column()
    evaluated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # "hold" | "ready" | "breach"
    outcome: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    # {"minimums": [...], "guardrails": [...], "rows": {...}}
    evidence: Mapped[dict] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
