"""data_validation, model_monitoring, retrain_model, api_health_probe and daily_report,
run for real on the session's Prefect server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.events.actions import DoNothing
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from flows.fixtures.generator import DataFaults
from flows.fixtures.shops import FixtureSites
from flows.monitoring import model_monitoring
from flows.pipeline import pricechecktn_pipeline
from flows.probe import api_health_probe
from flows.report import daily_report
from flows.retrain import retrain_model
from flows.validation import data_validation
from pricecheck_alerts.signals import emit_signal
from tests.pipeline.conftest import just_before, wait_for_events

pipeline = pricechecktn_pipeline.with_options(retries=0, timeout_seconds=120)

pytestmark = pytest.mark.usefixtures("pipeline_env")


def test_validation_and_monitoring_rerun_checks_on_the_snapshot(sites: FixtureSites) -> None:
    sites.set_all(faults=DataFaults(duplicates=True))
    assert pipeline(site_urls=sites.urls, rate_limit_s=0)["signals"]
    validation = data_validation()
    assert validation["products"] == 1500
    assert validation["signals"] == ["pricechecktn.data.quality_low"] * 3
    monitoring = model_monitoring()
    assert monitoring["signals"] == []
    assert model_monitoring(holdout_label_noise=0.5)["signals"] == ["pricechecktn.model.degraded"]


def test_retrain_accepts_the_new_normal(
    sites: FixtureSites, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRICECHECK_STATE_DIR", str(tmp_path))
    sites.set_all(faults=DataFaults(price_drift=True))
    first = pipeline(site_urls=sites.urls, rate_limit_s=0)
    assert first["signals"] == ["pricechecktn.model.drift_detected"]
    result = retrain_model(reason="test drift")
    assert result["version"] == 2
    assert result["holdout_accuracy"] >= 0.8
    assert result["baseline"] == "latest snapshot, model v2"
    second = pipeline(site_urls=sites.urls, rate_limit_s=0)
    assert second["signals"] == []


class _Api(BaseHTTPRequestHandler):
    status = 200
    delay_s = 0.0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        time.sleep(type(self).delay_s)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def api() -> Iterator[tuple[str, type[_Api]]]:
    handler = type("Api", (_Api,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health", handler
    server.shutdown()
    server.server_close()


def test_api_probe_healthy_slow_and_failing(
    api: tuple[str, type[_Api]], tight_slas: dict[str, Any]
) -> None:
    url, handler = api
    tight_slas["data"]["thresholds"]["api"]["max_response_ms"] = 150
    tight_slas["write"]()
    since = just_before()
    healthy = api_health_probe(url=url, requests=4)
    assert healthy["breached"] is False and healthy["error_rate"] == 0
    handler.delay_s = 0.2
    slow = api_health_probe(url=url, requests=3)
    assert slow["breached"] and slow["metric"] == "latency" and slow["p95_ms"] > 150
    handler.delay_s, handler.status = 0.0, 503
    failing = api_health_probe(url=url, requests=3)
    assert failing["metric"] == "error_rate" and failing["last_error"] == "HTTP 503"
    events = wait_for_events(since, ["pricechecktn.api.degraded"], count=2)
    assert sorted(e["payload"]["metric"] for e in events) == ["error_rate", "latency"]


def test_daily_report_counts_runs_and_alerts_and_emails_it(
    sites: FixtureSites, receivers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = just_before()
    with get_client(sync_client=True) as client:
        client.create_automation(
            AutomationCore(
                name="pricechecktn/test/data-volume-anomaly",
                trigger=EventTrigger(
                    expect={"pricechecktn.data.volume_anomaly"},
                    posture=Posture.Reactive,
                    threshold=1,
                ),
                actions=[DoNothing()],
            )
        )
    time.sleep(1.5)  # the triggers service loads new automations periodically
    emit_signal(
        "pricechecktn.data.volume_anomaly",
        "volume:report-test",
        {"metric": "products_scraped", "observed": 1},
    )
    assert wait_for_events(since, ["prefect.automation.triggered"], timeout=30)
    pipeline(site_urls=sites.urls, rate_limit_s=0)

    monkeypatch.setenv("PRICECHECK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PRICECHECK_SMTP_PORT", str(receivers.smtp_port))
    monkeypatch.setenv("PRICECHECK_EMAIL_TO", "ops@pricecheck.tn, ml@pricecheck.tn")
    report = daily_report()
    assert report["runs"] >= 1
    assert report["alerts"] >= 1
    assert "| data-volume-anomaly | warning |" in report["markdown"]
    assert (
        "| pricechecktn-pipeline |" in report["markdown"]
        or "pricechecktn-pipeline" in (report["markdown"])
    )
    assert Path(report["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    [mail] = receivers.wait_for(
        lambda d: (
            d.channel == "email"
            and "daily report" in d.body["subject"]
            and "ops@pricecheck.tn" in d.body["to"]
        ),
        timeout=10,
    )
    assert mail.body["to"] == ["ops@pricecheck.tn", "ml@pricecheck.tn"]
    assert "SLA attainment" in mail.body["text"]

    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    keys = {a.key for a in artifact}
    assert {"pricechecktn-daily-report", "pricechecktn-daily-slas"} <= keys
    [published] = wait_for_events(since, ["pricechecktn.report.published"])
    assert published["payload"]["emailed_to"] == 2

    other_env = daily_report(env="no-such-env", recipients=["x@pricecheck.tn"])
    assert (other_env["runs"], other_env["alerts"]) == (0, 0)
