"""Every rule kind, end to end: real server, real flow runs, real receivers.

One module fixture provisions the `local` stack (destinations overridden to this session's
receivers, as a user would with PRICECHECK_* variables), plays every drill scenario, and
waits for the alerts; each test then checks the payloads that actually arrived.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.local_server import LocalPrefectServer
from devtools.receivers import Delivery, Receivers
from devtools.scenarios import (
    SCENARIOS,
    Expected,
    deploy_drills,
    identify,
    play,
    wait_for_alerts,
)
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources
from pricecheck_alerts.config.loader import Catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision import BlockDocuments
from pricecheck_alerts.provision.apply import apply_stack, managed_automations
from pricecheck_alerts.provision.client import prefect_client
from pricecheck_alerts.signals import send_signal
from tests.end_to_end.conftest import ROUTING_KEY


@pytest.fixture(scope="module")
def played(
    project_root: Path,
    receivers: Receivers,
    environ: dict[str, str],
    stack: tuple[Catalog, StackResources],
) -> Iterator[list[Delivery]]:
    _, resources = stack
    apply_stack(resources, resolve_secrets(project_root, "local", environ))
    deploy_drills(project_root, resources.work_pools[0].name)
    receivers.store.clear()
    expected: Counter[Expected] = Counter()
    background = []
    for scenario in SCENARIOS:
        running = play(scenario, project_root)
        if running is not None:
            background.append(running)
        expected.update(scenario.alerts)
    # `settle`: anything extra (a duplicate, a stray resolve) shows up meanwhile
    arrived = wait_for_alerts(receivers.store.all, expected, timeout=90, settle=5)
    for process in background:
        process.wait(timeout=60)
    yield arrived
    settle_lost_deliveries()


def settle_lost_deliveries() -> None:
    """What a stack's `alert-redelivery` deployment does every minute: the deliveries this
    module broke on purpose are handled (and reported) now, so that a later module whose
    worker runs the real schedule (the pipeline story) does not get their report."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from flows.redelivery import alert_redelivery
    from pricecheck_alerts import redelivery
    from pricecheck_alerts.events import read_events

    since = datetime.now(UTC) - timedelta(seconds=5)
    result = asyncio.run(alert_redelivery(env="local"))
    records = result["lost"] + result["redelivered"]
    deadline = time.monotonic() + 20  # until the server has stored what the sweep emitted
    names = [redelivery.LOST, redelivery.REDELIVERED]
    while len(read_events(since, names=names)) < records and time.monotonic() < deadline:
        time.sleep(0.5)


def of(
    deliveries: list[Delivery],
    rule: str,
    channel: str,
    action: str = "trigger",
) -> list[Delivery]:
    return [d for d in deliveries if identify(d) == Expected(channel, rule, action)]


def test_exactly_the_expected_alerts_arrived(played: list[Delivery]) -> None:
    expected = Counter(e for s in SCENARIOS for e in s.alerts)
    assert Counter(identify(d) for d in played) == expected
    assert [d.error for d in played if d.status >= 300] == []  # every payload was valid


def test_failure_pages_everywhere_with_hostile_text(played: list[Delivery]) -> None:
    [slack] = of(played, "flow-run-failed", "slack-critical")
    [page] = of(played, "flow-run-failed", "pagerduty")
    [mail] = of(played, "flow-run-failed", "email")
    assert slack.body["blocks"][0]["text"]["text"].startswith(
        "🔴 CRITICAL [local] Flow run failed: drill-flaky"
    )
    message = next(
        b for b in slack.body["blocks"] if b.get("text", {}).get("text", "").startswith("*Message*")
    )["text"]["text"]
    assert 'Prix "faux" \\ échec' in message and "سعر غير صحيح 🚨" in message
    assert "&lt;script&gt;&amp;amp;&lt;/script&gt;" in message
    assert len(message) <= 3000
    payload = page.body["payload"]
    assert page.body["routing_key"] == ROUTING_KEY
    assert page.body["dedup_key"] == "pricechecktn/local/drill-flaky/drill-flaky/flow-run-failed"
    assert len(payload["summary"]) <= 1024 and payload["severity"] == "critical"
    assert payload["component"] == "drill-flaky" and payload["class"] == "flow-run-failed"
    assert "/runs/flow-run/" in page.body["links"][0]["href"]
    assert mail.body["subject"].startswith("CRITICAL [local] Flow run failed: drill-flaky")
    assert "Deployment: drill-flaky" in mail.body["text"]
    assert "سعر غير صحيح" in mail.body["text"]


def test_crash_and_timeout_page(played: list[Delivery]) -> None:
    [crash] = of(played, "flow-run-crashed", "pagerduty")
    assert crash.body["payload"]["custom_details"]["State"] == "Crashed"
    [timeout] = of(played, "flow-run-timed-out", "slack-critical")
    assert "exceeded timeout of 2" in json.dumps(timeout.body)


def test_recovery_resolves_with_the_same_dedup_key_once(played: list[Delivery]) -> None:
    [trigger] = of(played, "flow-run-failed", "pagerduty")
    [resolve] = of(played, "flow-run-failed", "pagerduty", "resolve")
    assert resolve.body == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger.body["dedup_key"],
    }
    [note] = of(played, "flow-run-failed", "slack-critical", "resolve")
    assert note.body["blocks"][0]["text"]["text"].startswith("✅ RESOLVED")
    assert played.index(trigger) < played.index(resolve)


def test_sla_overrun_fires_while_the_run_is_still_running(played: list[Delivery]) -> None:
    [sla] = of(played, "run-duration-sla", "slack-warnings")
    text = json.dumps(sla.body, ensure_ascii=False)
    assert "*Duration SLA*\\n10 s" in text and "*State*\\nRunning" in text
    assert "drill-slow" in sla.body["text"]


def test_scraping_task_failure_says_what_to_do(played: list[Delivery]) -> None:
    [alert] = of(played, "task-run-failed", "slack-warnings")
    text = json.dumps(alert.body, ensure_ascii=False)
    assert "*Task*\\nscrape-site" in text
    # run_count is read from the API when the action runs: at least the first attempt
    assert re.search(r"\*Attempts\*\\n[12] \(retries allowed: 1\)", text), text
    assert "Cause: http-401-403" in text and "403 Forbidden" in text


def test_pipeline_signal_shows_its_payload(played: list[Delivery]) -> None:
    [alert] = of(played, "model-drift", "slack-warnings")
    text = json.dumps(alert.body, ensure_ascii=False)
    assert "*psi*\\n0.31" in text and "*threshold*\\n0.25" in text
    assert "*feature*\\nprice_tnd" in text


def test_secrets_stay_in_block_secret_fields(
    played: list[Delivery],
    prefect_server: LocalPrefectServer,
    environ: dict[str, str],
) -> None:
    secrets = [ROUTING_KEY, environ["PRICECHECK_SLACK_CRITICAL_URL"]]
    with prefect_client() as client:
        automations = [a.model_dump_json() for a in client.read_automations()]
    api = httpx.post(f"{prefect_server.api_url}/block_documents/filter", json={}).text
    log = (prefect_server.home / "server.log").read_text(errors="replace")
    for secret in secrets:
        assert not any(secret in a for a in automations)
        assert secret not in api  # the API masks secret fields unless asked
        assert secret not in log


def test_apply_is_idempotent_prunes_and_spares_the_unmanaged(
    played: list[Delivery],
    project_root: Path,
    environ: dict[str, str],
    stack: tuple[Catalog, StackResources],
) -> None:
    catalog, resources = stack
    secrets = resolve_secrets(project_root, "local", environ)
    assert apply_stack(resources, secrets).writes == 0

    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    with prefect_client() as client:
        foreign = client.create_automation(
            AutomationCore(name="someone-elses", trigger=EventTrigger(expect={"x.y"}), actions=[])
        )
    info = [r for r in catalog.rules if r.severity == "info"]
    fewer = Catalog(
        rules=tuple(r for r in catalog.rules if r not in info),
        routes=catalog.routes,
        slas=catalog.slas,
    )
    report = apply_stack(compile_stack(fewer, load_stack(project_root, "local", environ)), secrets)
    # no info rule left: the info channel's send-test automation and its block (and its
    # secret) go too
    assert report.counts[("automation", "deleted")] == len(info) + 1
    assert report.counts[("block_document", "deleted")] == 1
    assert report.writes == len(info) + 2
    assert "pricechecktn/local/slow-task" not in managed_automations("local")
    assert "pricechecktn-local-slack-info" not in BlockDocuments().of_type(
        "pricechecktn-slack-alert"
    )
    with prefect_client() as client:
        assert client.read_automation(foreign) is not None
    # and back: the full stack restores the pruned rule and block, nothing else changes
    report = apply_stack(resources, secrets)
    assert report.counts[("automation", "created")] == len(info) + 1
    assert report.writes == len(info) + 2


def test_editing_a_rule_reports_the_windows_it_restarts(
    played: list[Delivery],
    project_root: Path,
    environ: dict[str, str],
    stack: tuple[Catalog, StackResources],
) -> None:
    """A failure waiting for its recovery (or a run inside its SLA window) lives in a
    bucket keyed by trigger id, and the server gives a trigger a new id on every update:
    apply must say which automations lost their windows."""
    catalog, resources = stack
    secrets = resolve_secrets(project_root, "local", environ)
    name = "pricechecktn/local/flow-run-failed/resolve"

    def trigger_id() -> str:
        [automation_id] = managed_automations("local")[name]
        path = {"id": automation_id}
        with prefect_client() as client:
            return client.request("GET", "/automations/{id}", path_params=path).json()["trigger"][
                "id"
            ]

    before = trigger_id()
    edited = Catalog(
        rules=tuple(
            r.model_copy(update={"message": "Flow run failed (edited)"})
            if r.name == "flow-run-failed"
            else r
            for r in catalog.rules
        ),
        routes=catalog.routes,
        slas=catalog.slas,
    )
    report = apply_stack(compile_stack(edited, load_stack(project_root, "local", environ)), secrets)
    assert report.counts[("automation", "updated")] == 2  # the rule and its resolve
    assert trigger_id() != before  # the server's doing: the reason for the report
    assert report.restarted_windows == [name]
    assert apply_stack(resources, secrets).writes == 2


def test_drift_in_the_ui_is_put_back(
    played: list[Delivery],
    project_root: Path,
    environ: dict[str, str],
    stack: tuple[Catalog, StackResources],
) -> None:
    _, resources = stack
    from prefect.events.schemas.automations import AutomationCore

    [automation_id] = managed_automations("local")["pricechecktn/local/flow-run-crashed"]
    with prefect_client() as client:
        current = client.read_automation(automation_id)
        edited = AutomationCore.model_validate(
            {
                **current.model_dump(exclude={"id", "owner_resource"}),
                "enabled": False,
                "description": "edited in the UI",
            }
        )
        client.update_automation(current.id, edited)
    report = apply_stack(resources, resolve_secrets(project_root, "local", environ))
    assert report.counts[("automation", "updated")] == 1 and report.writes == 1
    with prefect_client() as client:
        restored = client.read_automation(automation_id)
    assert restored.enabled and restored.description != "edited in the UI"


def test_invalid_config_provisions_nothing(
    played: list[Delivery], tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pricecheck_alerts.cli import main

    (tree / "automations" / "rules" / "bad.yaml").write_text(
        "rules:\n  - name: bad\n    severity: loud\n"
    )
    before = managed_automations("local")
    assert main(["--root", str(tree), "apply", "--stack", "local"]) == 1
    assert managed_automations("local") == before
    err = capsys.readouterr().err
    assert "error: automations/rules/bad.yaml:3: rule 'bad': field 'severity'" in err


def test_a_dead_destination_raises_its_own_alert(
    played: list[Delivery],
    prefect_server: LocalPrefectServer,
    project_root: Path,
    receivers: Receivers,
    environ: dict[str, str],
    stack: tuple[Catalog, StackResources],
) -> None:
    """Slack answers 404 for an archived webhook: the lost alert becomes a critical
    `delivery-failed` alert on the channels that still work, once per dead block."""
    _, resources = stack
    dead_url = f"{receivers.base_url}/slack/archived"
    dead = {**environ, "PRICECHECK_SLACK_INFO_URL": dead_url}
    assert apply_stack(resources, resolve_secrets(project_root, "local", dead)).writes == 1
    try:
        receivers.store.clear()
        send_signal(
            "pricechecktn.performance.slow_task",
            "predict",
            {"task": "predict", "seconds": 7.2, "limit_s": 5},
        )
        expected = Counter(
            Expected(c, "delivery-failed") for c in ("slack-critical", "pagerduty", "email")
        )
        arrived = wait_for_alerts(receivers.store.all, expected, timeout=60)
        assert Counter(identify(d) for d in arrived) == expected  # once, and no loop
        [slack] = [d for d in arrived if d.channel == "slack-critical"]
        text = json.dumps(slack.body, ensure_ascii=False)
        assert "*Failed automation*\\npricechecktn/local/slow-task" in text
        assert "*Failed channel block*\\npricechecktn-local-slack-info" in text
        assert "HTTP 404: no_service" in text
        assert dead_url not in json.dumps([d.body for d in arrived])
        # The server stores events a moment after it acts on them: poll, bounded.
        deadline = time.monotonic() + 15
        while True:
            failures = httpx.post(
                f"{prefect_server.api_url}/events/filter",
                json={"filter": {"event": {"name": ["prefect.automation.action.failed"]}}},
            ).text
            if "HTTP 404: no_service" in failures or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "HTTP 404: no_service" in failures  # what the server recorded...
        assert dead_url not in failures  # ...without the secret URL
        # a second lost delivery to the same block within the window: no second page
        receivers.store.clear()
        send_signal("pricechecktn.performance.slow_task", "predict", {"seconds": 8.1})
        assert wait_for_alerts(receivers.store.all, Counter(), timeout=0, settle=8) == []
    finally:
        apply_stack(resources, resolve_secrets(project_root, "local", environ))


def test_emit_sends_a_signal_that_alerts_and_names_its_rules(
    played: list[Delivery], receivers: Receivers, capsys: pytest.CaptureFixture[str]
) -> None:
    from pricecheck_alerts.cli import main
    from scripts.emit_signal import main as emit_script

    receivers.store.clear()
    args = ["pricechecktn.matching.quality_low", "--stack", "local", "--check", "matching"]
    facts = ["--fact", "mean_confidence=0.42", "--fact", "matches=3"]
    assert main(["emit", *args, *facts]) == 0
    out = capsys.readouterr().out
    assert "emitted pricechecktn.matching.quality_low (2 facts, id " in out
    assert "  rule matching-quality-low (warning) -> slack-warnings" in out
    expected = Expected("slack-warnings", "matching-quality-low")
    [alert] = wait_for_alerts(receivers.store.all, Counter([expected]), timeout=30)
    assert identify(alert) == expected
    assert "*mean_confidence*\\n0.42" in json.dumps(alert.body)

    # A misspelt event is refused, with the likely one; nothing is sent.
    receivers.store.clear()
    assert main(["emit", "pricechecktn.matching.quality_lwo", "--stack", "local"]) == 2
    err = capsys.readouterr().err
    assert "not in automations/signals.yaml; did you mean pricechecktn.matching.quality_low?" in err
    assert emit_script(["not.a.signal!", "--stack", "local"]) == 2  # the script is the command
    # --force sends an event the catalog lacks, and says no rule takes it.
    assert main(["emit", "pricechecktn.matching.unheard_of", "--stack", "local", "--force"]) == 0
    assert "no enabled rule matches it: nothing will be sent" in capsys.readouterr().out
    assert wait_for_alerts(receivers.store.all, Counter(), timeout=0, settle=3) == []


def test_history_says_what_fired_and_where_it_went(
    played: list[Delivery], capsys: pytest.CaptureFixture[str]
) -> None:
    """After the scenarios: the failure pages went to every critical channel and the
    recovery resolved them, as the server recorded it."""
    from pricecheck_alerts.cli import main

    assert main(["history", "--stack", "local", "--since", "1h", "--format", "json"]) == 0
    firings = json.loads(capsys.readouterr().out)
    failed = [f for f in firings if f["rule"] == "flow-run-failed" and f["kind"] == "alert"]
    assert failed, firings
    assert {d["channel"] for d in failed[0]["deliveries"]} == {
        "slack-critical",
        "pagerduty-pipeline",
        "email",
    }
    assert all(d["delivered"] for d in failed[0]["deliveries"])
    assert failed[0]["event"] == "prefect.flow-run.Failed"
    assert failed[0]["about"].startswith("drill-flaky/")
    assert any(f["rule"] == "flow-run-failed" and f["kind"] == "resolve" for f in firings)

    assert main(["history", "--stack", "local", "--since", "1h", "--rule", "model-drift"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("history: stack local on http://127.0.0.1:")
    assert all(" model-drift " in line for line in out[2:-1])
    assert out[-1].endswith("with a failed delivery")
    assert main(["history", "--stack", "local", "--rule", "no-such-rule"]) == 2


def test_send_test_goes_through_the_servers_own_block(
    played: list[Delivery],
    project_root: Path,
    environ: dict[str, str],
    stack: tuple[Catalog, StackResources],
    receivers: Receivers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pricecheck_alerts.cli import main

    receivers.store.clear()
    assert main(["send-test", "--stack", "local", "--channel", "slack-critical"]) == 0
    out = capsys.readouterr().out
    assert "pricechecktn-meta/local/send-test/slack-critical: 1 delivered, 0 failed" in out
    [test] = receivers.wait_for(lambda d: d.channel == "slack-critical", timeout=10)
    assert "TEST alert, nothing to do" in test.body["blocks"][0]["text"]["text"]

    # PagerDuty: every domain's block, each a trigger then its resolve (nobody stays paged)
    receivers.store.clear()
    assert main(["send-test", "--stack", "local", "--channel", "pagerduty"]) == 0
    assert ": 4 delivered, 0 failed" in capsys.readouterr().out
    pages = receivers.wait_for(lambda d: d.channel == "pagerduty", count=4, timeout=10)
    assert Counter(page.body["event_action"] for page in pages) == {"trigger": 2, "resolve": 2}
    [key] = {page.body["dedup_key"] for page in pages}  # each resolve closes its trigger
    assert key.endswith("/send-test")

    # a dead destination: one line per failed delivery, exit 1
    _, resources = stack
    dead = {**environ, "PRICECHECK_SLACK_INFO_URL": f"{receivers.base_url}/slack/archived"}
    apply_stack(resources, resolve_secrets(project_root, "local", dead))
    try:
        assert main(["send-test", "--stack", "local", "--channel", "slack-info"]) == 1
        out = capsys.readouterr().out
        assert "0 delivered, 1 failed" in out
        assert "FAILED: pricechecktn-local-slack-info: HTTP 404: no_service" in out
    finally:
        apply_stack(resources, resolve_secrets(project_root, "local", environ))


def test_a_late_run_warns_with_how_late_and_the_work_pool(
    played: list[Delivery], project_root: Path, receivers: Receivers
) -> None:
    """A PriceCheckTN deployment in a pool no worker polls, with a run due a minute ago:
    the server marks it Late and the warning says by how much and which pool."""
    from datetime import UTC, datetime, timedelta

    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.states import Scheduled

    from devtools import runs
    from flows.fixtures import drills

    pool = "pricechecktn-nobody-polls"
    with prefect_client() as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)
    deployment_id = runs.deploy(drills.flaky, "late-drill", pool, project_root, ("pricechecktn",))
    receivers.store.clear()
    due = datetime.now(UTC) - timedelta(minutes=5)  # past the server's 60 s Late delay
    with prefect_client() as client:
        run = client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=due)
        )
    try:
        expected = Expected("slack-warnings", "flow-run-late")
        [alert] = wait_for_alerts(receivers.store.all, Counter([expected]), timeout=60, settle=2)
        text = json.dumps(alert.body)
        assert alert.body["blocks"][0]["text"]["text"].startswith(
            "🟠 WARNING [local] Flow run is late: late-drill"
        )
        assert f"*Work pool*\\n{pool}" in text
        assert re.search(r"\*Late by\*\\n\d+ min", text), text
    finally:
        with prefect_client() as client:
            client.delete_flow_run(run.id)
            client.delete_deployment(deployment_id)


def test_smoke_proves_the_stack_delivers(
    played: list[Delivery],
    project_root: Path,
    receivers: Receivers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the deploy workflow runs after `pulumi up`: one signal through the stack's
    real automation, checked through the server's own action events."""
    from pricecheck_alerts.cli import main

    receivers.store.clear()
    assert main(["--root", str(project_root), "smoke", "--stack", "local"]) == 0
    out = capsys.readouterr().out
    assert "pricechecktn/local/daily-report: 1 delivered, 0 failed" in out
    assert "delivered: pricechecktn-local-slack-info" in out
    [note] = receivers.wait_for(lambda d: d.channel == "slack-info", timeout=10)
    assert "smoke" in json.dumps(note.body)


def test_smoke_fails_loudly_on_a_dead_channel(
    played: list[Delivery],
    project_root: Path,
    environ: dict[str, str],
    stack: tuple[Catalog, StackResources],
    receivers: Receivers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pricecheck_alerts.cli import main

    _, resources = stack
    dead_url = f"{receivers.base_url}/slack/archived"
    dead = {**environ, "PRICECHECK_SLACK_INFO_URL": dead_url}
    apply_stack(resources, resolve_secrets(project_root, "local", dead))
    try:
        assert main(["--root", str(project_root), "smoke", "--stack", "local"]) == 1
        out = capsys.readouterr().out
        assert "0 delivered, 1 failed" in out
        assert "FAILED: pricechecktn-local-slack-info: HTTP 404" in out
        assert dead_url not in out
    finally:
        apply_stack(resources, resolve_secrets(project_root, "local", environ))


def test_smoke_refuses_without_a_server(
    project_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pricecheck_alerts.cli import main

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["--root", str(project_root), "smoke", "--stack", "staging"]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err


def test_a_deployment_over_its_failure_budget_warns_once_per_window(
    played: list[Delivery], project_root: Path, receivers: Receivers
) -> None:
    """`pricechecktn-pipeline` may fail twice a day (slas.yaml): the third failure within
    24 h warns, the fourth does not warn again (each still pages on its own)."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.states import Failed

    from devtools import runs
    from flows.fixtures import drills

    pool = "pricechecktn-budget-test"
    with prefect_client() as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)
    deployment_id = runs.deploy(drills.flaky, "pricechecktn-pipeline", pool, project_root)
    budget = Expected("slack-warnings", "failure-budget")
    receivers.store.clear()
    created = []
    try:
        with prefect_client() as client:
            for attempt in range(4):
                run = client.create_flow_run_from_deployment(deployment_id)
                created.append(run.id)
                client.set_flow_run_state(run.id, Failed(message=f"failure {attempt + 1}"))
                if attempt == 1:  # two failures: within budget
                    got = wait_for_alerts(receivers.store.all, Counter(), timeout=0, settle=4)
                    assert budget not in {identify(d) for d in got}
        arrived = wait_for_alerts(receivers.store.all, Counter([budget]), timeout=30, settle=5)
        [warning] = [d for d in arrived if identify(d) == budget]
        assert warning.body["blocks"][0]["text"]["text"].startswith(
            "🟠 WARNING [local] Deployment over its daily failure budget: pricechecktn-pipeline"
        )
        assert "*Failure budget*\\nmore than 2 failures in 24 h" in json.dumps(warning.body)
        pages = [d for d in arrived if identify(d) == Expected("pagerduty", "flow-run-failed")]
        assert len(pages) == 4  # every failure still pages (same dedup key)
    finally:
        with prefect_client() as client:
            for run_id in created:
                client.delete_flow_run(run_id)
            client.delete_deployment(deployment_id)
