"""`api_health_probe`: a synthetic check of the PriceCheckTN API every five minutes.

Sends a few GETs, measures latency and errors, and compares p95 latency and error rate
with the API SLA in slas.yaml; a breach is reported as `pricechecktn.api.degraded`. The
probe itself only fails when it cannot run, not when the API is slow: the event carries it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
from prefect import flow

from flows.checks import Finding, emit_findings
from flows.config import RunSettings
from flows.stats import percentile
from pricecheck_alerts.config.models import ApiThresholds
from pricecheck_alerts.signals import Signal

DEFAULT_API_URL = "https://api.pricecheck.tn/health"


@dataclass(frozen=True)
class ProbeResult:
    latencies_ms: list[float]
    errors: list[str]

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def error_rate(self) -> float:
        return len(self.errors) / self.requests if self.requests else 1.0


def probe(url: str, requests: int, timeout_s: float) -> ProbeResult:
    latencies, errors = [], []
    with httpx.Client(timeout=timeout_s) as client:
        for _ in range(requests):
            started = time.perf_counter()
            try:
                response = client.get(url)
                if response.status_code >= 400:
                    errors.append(f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append((time.perf_counter() - started) * 1000)
    return ProbeResult(latencies, errors)


def check_api(url: str, result: ProbeResult, t: ApiThresholds) -> Finding:
    p95 = percentile(result.latencies_ms, 95)
    reasons = []
    if p95 is not None and p95 > t.max_response_ms:
        reasons.append("latency")
    if result.error_rate > t.max_error_rate:
        reasons.append("error_rate")
    return Finding(
        Signal.api_degraded,
        "api:health",
        bool(reasons),
        {
            "metric": ",".join(reasons) or "none",
            "url": url,
            "requests": result.requests,
            "p95_ms": round(p95, 1) if p95 is not None else None,
            "max_response_ms": t.max_response_ms,
            "error_rate": round(result.error_rate, 4),
            "max_error_rate": t.max_error_rate,
            "last_error": result.errors[-1][:300] if result.errors else None,
        },
    )


@flow(name="api-health-probe")
def api_health_probe(
    url: str | None = None, requests: int = 5, timeout_s: float = 5.0
) -> dict[str, Any]:
    url = url or os.environ.get("PRICECHECK_API_URL") or DEFAULT_API_URL
    result = probe(url, requests, timeout_s)
    finding = check_api(url, result, RunSettings.from_env().slas().thresholds.api)
    emit_findings([finding])
    return {"breached": finding.breached, **finding.facts}
