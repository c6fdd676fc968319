"""Pure arithmetic of the daily report: run counts, durations, SLA attainment, alerts, TTR.

Inputs are plain records read from the Prefect API by `flows.report`; nothing here talks to
the server, so every figure in the e-mail can be unit-tested.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flows.stats import percentile
from pricecheck_alerts import naming

FAILED_TYPES = {"FAILED", "CRASHED"}
FINISHED_TYPES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
ALERT_PREFIX = naming.PROJECT + "/"


@dataclass(frozen=True)
class RunRecord:
    """One flow run: `name` is its deployment's name, or its flow's name when ad hoc."""

    name: str
    state_type: str
    state_name: str
    start: datetime | None
    end: datetime | None
    duration_s: float | None


@dataclass(frozen=True)
class AlertRecord:
    rule: str
    severity: str
    env: str
    at: datetime


@dataclass
class DeploymentStats:
    name: str
    runs: int = 0
    completed: int = 0
    failed: int = 0
    slow: int = 0
    avg_duration_s: float | None = None
    p95_duration_s: float | None = None
    sla_s: float | None = None
    sla_attainment: float | None = None
    recoveries_s: list[float] = field(default_factory=list)


@dataclass
class ReportSummary:
    runs: int
    failed: int
    slow: int
    success_rate: float | None
    avg_duration_s: float | None
    p95_duration_s: float | None
    mean_time_to_recovery_s: float | None
    deployments: list[DeploymentStats]
    alerts: dict[tuple[str, str], int]


def recovery_times(runs: Sequence[RunRecord]) -> list[float]:
    """Seconds from the end of each failure streak to the end of the next Completed run.

    Runs must belong to one deployment. A streak still failing at the end has no recovery.
    """
    ordered = sorted((r for r in runs if r.end is not None), key=lambda r: r.end)  # type: ignore[arg-type, return-value]
    times, first_failure = [], None
    for run in ordered:
        if run.state_type in FAILED_TYPES and first_failure is None:
            first_failure = run.end
        elif run.state_type == "COMPLETED" and first_failure is not None:
            times.append((run.end - first_failure).total_seconds())  # type: ignore[operator]
            first_failure = None
    return times


def deployment_stats(name: str, runs: Sequence[RunRecord], sla_s: float | None) -> DeploymentStats:
    durations = [
        r.duration_s for r in runs if r.state_type in FINISHED_TYPES and r.duration_s is not None
    ]
    stats = DeploymentStats(
        name=name,
        runs=len(runs),
        completed=sum(r.state_type == "COMPLETED" for r in runs),
        failed=sum(r.state_type in FAILED_TYPES for r in runs),
        avg_duration_s=sum(durations) / len(durations) if durations else None,
        p95_duration_s=percentile(durations, 95),
        sla_s=sla_s,
        recoveries_s=recovery_times(runs),
    )
    if sla_s is not None:
        stats.slow = sum(d > sla_s for d in durations) + sum(
            r.state_name == "TimedOut" for r in runs
        )
        stats.sla_attainment = (
            sum(d <= sla_s for d in durations) / len(durations) if durations else None
        )
    return stats


def rule_of(automation_name: str) -> tuple[str, str] | None:
    """(env, rule) for an alert automation named `pricechecktn/<env>/<rule>[/<suffix>]`.

    The alert compiler names per-deployment automations `.../<rule>/<deployment>` and
    recovery automations `.../<rule>/resolve`; a resolve is not an alert, so it gives None,
    as do automations that are not alerts (e.g. the retrain deployment trigger).
    """
    if not automation_name.startswith(ALERT_PREFIX):
        return None
    parts = automation_name.split("/")
    if len(parts) < 3 or not parts[1] or not re.fullmatch(r"[a-z0-9-]+", parts[2]):
        return None
    if parts[-1] == "resolve" and len(parts) > 3:
        return None
    return parts[1], parts[2]


def summarise(
    runs: Sequence[RunRecord], alerts: Sequence[AlertRecord], slas: Mapping[str, float]
) -> ReportSummary:
    by_name: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_name.setdefault(run.name, []).append(run)
    deployments = [deployment_stats(n, rs, slas.get(n)) for n, rs in sorted(by_name.items())]
    finished = [r for r in runs if r.state_type in FINISHED_TYPES]
    durations = [r.duration_s for r in finished if r.duration_s is not None]
    recoveries = [t for d in deployments for t in d.recoveries_s]
    return ReportSummary(
        runs=len(runs),
        failed=sum(d.failed for d in deployments),
        slow=sum(d.slow for d in deployments),
        success_rate=(
            sum(r.state_type == "COMPLETED" for r in finished) / len(finished) if finished else None
        ),
        avg_duration_s=sum(durations) / len(durations) if durations else None,
        p95_duration_s=percentile(durations, 95),
        mean_time_to_recovery_s=sum(recoveries) / len(recoveries) if recoveries else None,
        deployments=deployments,
        alerts=dict(Counter((a.rule, a.severity) for a in alerts)),
    )
