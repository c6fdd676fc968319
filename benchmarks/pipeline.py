"""Pipeline throughput and the cost of its self-checks.

Runs the real `pricechecktn-pipeline` flow against local fixture sites (in their own
process, like remote shops: their HTML rendering does not compete with the pipeline for
the GIL): 3 sites x 500 products and ~50 000 reviews, on a real Prefect server (a fresh
local one unless --api-url is given). Prints throughput and the share of the run spent in all checks
plus event emission (target: at most 5 %).

    .venv/bin/python benchmarks/pipeline.py [--runs 3] [--api-url http://127.0.0.1:4200/api]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRODUCTS_PER_SITE = 500
REVIEWS = 50_000
SITES = 3


def _measure(flow: Any, urls: dict[str, str], faults: dict[str, Any] | None) -> dict[str, Any]:
    started = time.perf_counter()
    summary = flow(site_urls=urls, rate_limit_s=0, faults=faults)
    summary["wall_seconds"] = time.perf_counter() - started
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--api-url", default=None)
    args = parser.parse_args()

    os.environ.setdefault("PRICECHECK_STATE_DIR", tempfile.mkdtemp(prefix="pricecheck-bench-"))
    server = None
    if args.api_url is None:
        from devtools.local_server import LocalPrefectServer

        server = LocalPrefectServer(home=Path(tempfile.mkdtemp(prefix="prefect-bench-"))).start()
        args.api_url = server.api_url
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_LEVEL, temporary_settings

    from devtools.local_server import free_port
    from flows.pipeline import pricechecktn_pipeline

    control_port = free_port()
    sites = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.fixtures.shops",
            "--control-port",
            str(control_port),
            "--products",
            str(PRODUCTS_PER_SITE),
            "--reviews-per-product",
            str(REVIEWS / (SITES * PRODUCTS_PER_SITE)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sites.stdout is not None
    urls = json.loads(sites.stdout.readline())
    control = urls.pop("control")
    flow = pricechecktn_pipeline.with_options(retries=0)
    try:
        with temporary_settings({PREFECT_API_URL: args.api_url, PREFECT_LOGGING_LEVEL: "ERROR"}):
            warm = _measure(flow, urls, None)  # trains and caches model + baseline
            print(
                f"warm-up run (trains the model, builds the baseline): {warm['wall_seconds']:.2f} s"
            )
            for label, faults, data_faults in (
                ("healthy", None, {}),
                (
                    "faulty (drift, skewed predictions, missing prices)",
                    None,
                    {"missing_values": True, "price_drift": True, "prediction_skew": True},
                ),
            ):
                httpx.post(f"{control}/sites/all", json={"mode": "ok", "faults": data_faults})
                runs = [_measure(flow, urls, faults) for _ in range(args.runs)]
                wall = statistics.median(r["wall_seconds"] for r in runs)
                inside = statistics.median(r["total_seconds"] for r in runs)
                checks = statistics.median(r["checks_wall_seconds"] for r in runs)
                compute = statistics.median(r["checks_seconds"] for r in runs)
                last = runs[-1]
                print(f"\n{label}: median of {args.runs} runs")
                print(
                    f"  products {last['products']}, reviews {last['reviews']}, "
                    f"matches {last['matches']}, signals {len(last['signals'])}"
                )
                print(f"  flow run wall time   {wall:8.2f} s")
                print(f"  inside the flow      {inside:8.2f} s  stages {last['stage_seconds']}")
                print(
                    f"  throughput           {last['products'] / wall:8.0f} products/s, "
                    f"{last['reviews'] / wall:8.0f} reviews/s"
                )
                print(
                    f"  checks + events      {checks:8.3f} s = "
                    f"{checks / wall:.2%} of the run (target <= 5 %); "
                    f"of which check code + emit calls {compute:.3f} s, "
                    f"the rest Prefect task overhead of the 4 check tasks"
                )
    finally:
        sites.terminate()
        sites.wait(timeout=10)
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        # Deliver queued logs and events before the server goes away.
        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
