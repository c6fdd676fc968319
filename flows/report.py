"""`daily_report`: the last 24 h of PriceCheckTN runs and alerts, for people.

Figures come from the Prefect API (flow runs, and the automation events that are the
alerts), are published as markdown and table artifacts with a PNG chart of durations
against each deployment's SLA, e-mailed with prefect-email, and announced with a
`pricechecktn.report.published` event (the server routes that to slack-info; this flow
holds no webhook). The e-mail is this flow's own output, so it sends it itself.
"""

from __future__ import annotations

import html
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterStartTime,
    FlowRunFilterTags,
)
from prefect.client.schemas.sorting import FlowRunSort
from prefect_email import EmailServerCredentials, email_send_message

from flows.config import RunSettings
from flows.report_stats import (
    AlertRecord,
    ReportSummary,
    RunRecord,
    rule_of,
    summarise,
)
from pricecheck_alerts import naming, redelivery
from pricecheck_alerts.config.loader import ConfigError, load_catalog
from pricecheck_alerts.events import read_events
from pricecheck_alerts.notify.email import (
    EMAIL_FROM_ENV,
    EMAIL_TO_ENV,
    recipients_from_env,
    smtp_credentials_from_env,
)
from pricecheck_alerts.signals import Signal, emit_signal

PAGE = 200


@task(name="collect-runs")
def collect_runs(since: datetime, env: str | None = None) -> list[RunRecord]:
    """Flow runs started since `since`, only those tagged `env:<env>` when env is given."""
    run_filter = FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since))
    if env:
        run_filter.tags = FlowRunFilterTags(all_=[naming.environment_tag(env)])
    with get_client(sync_client=True) as client:
        deployments = {d.id: d.name for d in client.read_deployments()}
        flows = {f.id: f.name for f in client.read_flows()}
        runs, offset = [], 0
        while True:
            page = client.read_flow_runs(
                flow_run_filter=run_filter,
                sort=FlowRunSort.START_TIME_ASC,
                limit=PAGE,
                offset=offset,
            )
            runs.extend(page)
            offset += PAGE
            if len(page) < PAGE:
                break
    records = []
    for run in runs:
        name = deployments.get(run.deployment_id) if run.deployment_id else None
        duration = (
            (run.end_time - run.start_time).total_seconds()
            if (run.start_time and run.end_time)
            else None
        )
        records.append(
            RunRecord(
                name=name or flows.get(run.flow_id, "unknown"),
                state_type=run.state_type.value if run.state_type else "UNKNOWN",
                state_name=run.state_name or "",
                start=run.start_time,
                end=run.end_time,
                duration_s=duration,
            )
        )
    return records


@task(name="collect-alerts")
def collect_alerts(since: datetime, config_root: Path, env: str | None = None) -> list[AlertRecord]:
    """Alert firings = `prefect.automation.triggered` events of `pricechecktn/...` automations
    (of environment `env` when given)."""
    try:
        # severities only: no cross-checks, which need docs/ (not in the pipeline image)
        catalog = load_catalog(config_root, references=False)
        rules = {r.name: r.severity.value for r in catalog.rules}
    except ConfigError:
        rules = {}
    alerts = []
    for event in read_events(since, names=["prefect.automation.triggered"]):
        parsed = rule_of(event["resource"].get("prefect.resource.name", ""))
        if parsed and (env is None or parsed[0] == env):
            alerts.append(
                AlertRecord(
                    parsed[1],
                    rules.get(parsed[1], "unknown"),
                    parsed[0],
                    datetime.fromisoformat(event["occurred"]),
                )
            )
    return alerts


@task(name="collect-deliveries")
def collect_deliveries(since: datetime, env: str | None = None) -> dict[str, int]:
    """How alert deliveries went: failed at first (`prefect.automation.action.failed` of
    alert automations), then delivered late or lost for good (the `alert-redelivery`
    flow's records)."""
    counts = {"failed_at_first": 0, "delivered_late": 0, "lost": 0}
    names = [redelivery.FAILED, redelivery.REDELIVERED, redelivery.LOST]
    for event in read_events(since, names=names, max_events=50_000):
        if event["event"] == redelivery.FAILED:
            parsed = rule_of(event["resource"].get("prefect.resource.name", ""))
            if parsed and (env is None or parsed[0] == env):
                counts["failed_at_first"] += 1
        elif env is None or str(event.get("payload", {}).get("automation", "")).startswith(
            naming.automation_prefix(env)
        ):
            key = "delivered_late" if event["event"] == redelivery.REDELIVERED else "lost"
            counts[key] += 1
    return counts


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:,.1f} s"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def render_chart(summary: ReportSummary, path: Path) -> Path:
    """Average and p95 duration per deployment, with its SLA as a marker."""
    names = [d.name for d in summary.deployments] or ["(no runs)"]
    avg = [d.avg_duration_s or 0 for d in summary.deployments] or [0]
    p95 = [d.p95_duration_s or 0 for d in summary.deployments] or [0]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 1.5))
    y = range(len(names))
    ax.barh([i - 0.2 for i in y], avg, height=0.4, label="average")
    ax.barh([i + 0.2 for i in y], p95, height=0.4, label="p95")
    for i, d in enumerate(summary.deployments):
        if d.sla_s is not None:
            ax.plot(
                [d.sla_s, d.sla_s],
                [i - 0.45, i + 0.45],
                color="red",
                linewidth=2,
                label="SLA" if i == 0 or "SLA" not in ax.get_legend_handles_labels()[1] else None,
            )
    ax.set_yticks(list(y), names)
    ax.set_xlabel("run duration (s)")
    ax.set_title("PriceCheckTN run durations, last 24 h")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render_markdown(
    summary: ReportSummary,
    since: datetime,
    chart: Path,
    deliveries: dict[str, int] | None = None,
) -> str:
    lines = [
        f"# PriceCheckTN daily report - {since:%Y-%m-%d %H:%M} UTC + 24 h",
        "",
        f"- Runs: **{summary.runs}**, failed: **{summary.failed}**, "
        f"over SLA: **{summary.slow}**, success rate: **{_pct(summary.success_rate)}**",
        f"- Duration: average {_fmt(summary.avg_duration_s)}, p95 {_fmt(summary.p95_duration_s)}",
        f"- Mean time to recovery: {_fmt(summary.mean_time_to_recovery_s)}",
        *(
            [
                f"- Alert deliveries that failed at first: {deliveries['failed_at_first']}; "
                f"delivered late: {deliveries['delivered_late']}; "
                f"lost for good: **{deliveries['lost']}**"
            ]
            if deliveries is not None
            else []
        ),
        "",
        "| deployment | runs | failed | over SLA | avg | p95 | SLA | SLA attainment |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in summary.deployments:
        lines.append(
            f"| {d.name} | {d.runs} | {d.failed} | {d.slow} | {_fmt(d.avg_duration_s)} | "
            f"{_fmt(d.p95_duration_s)} | {_fmt(d.sla_s)} | {_pct(d.sla_attainment)} |"
        )
    lines += ["", "| alert rule | severity | firings |", "|---|---|---|"]
    for (rule, severity), count in sorted(summary.alerts.items()):
        lines.append(f"| {rule} | {severity} | {count} |")
    if not summary.alerts:
        lines.append("| (none) | | 0 |")
    lines += ["", f"Chart: `{chart}`"]
    return "\n".join(lines)


def smtp_credentials() -> EmailServerCredentials:
    """A saved `EmailServerCredentials` block named in PRICECHECK_SMTP_BLOCK (it holds the
    password), else the same PRICECHECK_SMTP_* settings alert e-mail uses."""
    block = os.environ.get("PRICECHECK_SMTP_BLOCK")
    if block:
        return cast(EmailServerCredentials, EmailServerCredentials.load(block))
    return smtp_credentials_from_env()


@flow(name="daily-report")
def daily_report(
    hours: int = 24, recipients: list[str] | None = None, env: str | None = None
) -> dict[str, Any]:
    """`env` (default PRICECHECK_ENV, set by the deployment) limits the report to that
    environment's runs and alerts when several environments share one server."""
    logger = get_run_logger()
    env = env or os.environ.get("PRICECHECK_ENV") or None
    settings = RunSettings.from_env()
    slas = {name: float(s.max_duration_s) for name, s in settings.slas().deployments.items()}
    now = datetime.now(UTC)
    since = now - timedelta(hours=hours)
    summary = summarise(
        collect_runs(since, env), collect_alerts(since, settings.config_root, env), slas
    )

    chart = render_chart(summary, settings.state_dir / "reports" / f"daily-{now:%Y%m%dT%H%M%S}.png")
    deliveries = collect_deliveries(since, env)
    markdown = render_markdown(summary, since, chart, deliveries)
    create_markdown_artifact(
        key="pricechecktn-daily-report", markdown=markdown, description="PriceCheckTN daily report"
    )
    create_table_artifact(
        key="pricechecktn-daily-slas",
        table=[
            {
                "deployment": d.name,
                "runs": d.runs,
                "failed": d.failed,
                "over_sla": d.slow,
                "avg_s": round(d.avg_duration_s, 2) if d.avg_duration_s is not None else None,
                "p95_s": round(d.p95_duration_s, 2) if d.p95_duration_s is not None else None,
                "sla_s": d.sla_s,
                "sla_attainment": round(d.sla_attainment, 4)
                if d.sla_attainment is not None
                else None,
            }
            for d in summary.deployments
        ],
        description="Per-deployment durations and SLA attainment, last 24 h",
    )

    to = recipients or recipients_from_env()
    if to:
        # An async task submitted from this sync flow: Prefect runs it; `.result()` waits.
        email_send_message.submit(  # type: ignore[unused-coroutine]
            email_server_credentials=smtp_credentials(),
            subject=f"PriceCheckTN daily report {now:%Y-%m-%d}: {summary.failed} failed, "
            f"{sum(summary.alerts.values())} alerts",
            msg=f'<pre>{html.escape(markdown)}</pre><img src="cid:chart">',
            msg_plain=markdown,
            email_from=os.environ.get(EMAIL_FROM_ENV, "pricechecktn@localhost"),
            email_to=to,
            inline_images={"chart": str(chart)},
        ).result()
    else:
        logger.warning("no report recipients (%s is empty): not e-mailed", EMAIL_TO_ENV)

    facts = {
        "runs": summary.runs,
        "failed": summary.failed,
        "slow": summary.slow,
        "success_rate": round(summary.success_rate, 4)
        if summary.success_rate is not None
        else None,
        "p95_duration_s": round(summary.p95_duration_s, 2)
        if summary.p95_duration_s is not None
        else None,
        "alerts": sum(summary.alerts.values()),
        "mean_time_to_recovery_s": round(summary.mean_time_to_recovery_s, 1)
        if summary.mean_time_to_recovery_s is not None
        else None,
        "deliveries_failed": deliveries["failed_at_first"],
        "delivered_late": deliveries["delivered_late"],
        "deliveries_lost": deliveries["lost"],
        "emailed_to": len(to),
        "chart": str(chart),
        "env": env or "all",
    }
    emit_signal(Signal.report_published, "report:daily", facts)
    attainment = {d.name: d.sla_attainment for d in summary.deployments}
    return {**facts, "sla_attainment": attainment, "markdown": markdown}
