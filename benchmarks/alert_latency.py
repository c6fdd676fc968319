"""Alert latency on a real local Prefect server: failure → payload at the receiver, and the
lag between the end of an SLA window and its alert.

Prints p50/p95 over N failed runs (default 20) and over a few SLA overruns. Targets:
p95 ≤ 3 s for failures, ≤ 10 s lag for SLAs. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import runs  # noqa: E402
from devtools.local_server import LocalPrefectServer  # noqa: E402
from devtools.receivers import Receivers  # noqa: E402
from devtools.scenarios import deploy_drills, identify  # noqa: E402
from pricecheck_alerts.compile.compiler import compile_stack  # noqa: E402
from pricecheck_alerts.config.loader import load_catalog  # noqa: E402
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets  # noqa: E402
from pricecheck_alerts.provision.apply import apply_stack  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def state_time(flow_run_id) -> float:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state.timestamp.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failures", type=int, default=20)
    parser.add_argument("--overruns", type=int, default=3)
    args = parser.parse_args()

    receivers = Receivers().start()
    server = LocalPrefectServer(home=Path(tempfile.mkdtemp(prefix="bench-prefect-"))).start()
    try:
        with server.as_current():
            environ = {**receivers.urls(), "PRICECHECK_PREFECT_UI_URL": server.url}
            resources = compile_stack(load_catalog(ROOT), load_stack(ROOT, "local", environ))
            apply_stack(resources, resolve_secrets(ROOT, "local", environ))
            deploy_drills(ROOT, resources.work_pools[0].name)

            failure_lags = []
            for i in range(args.failures):
                receivers.store.clear()
                flow_run = runs.create_run("drill-flaky/drill-flaky", {"message": f"bench {i}"})
                runs.execute(flow_run.id, ROOT)
                failed_at = state_time(flow_run.id)
                [delivery] = receivers.wait_for(
                    lambda d: (
                        d.channel == "slack-critical" and identify(d).rule == "flow-run-failed"
                    ),
                    timeout=30,
                )
                failure_lags.append(delivery.received_at - failed_at)
                runs.execute(runs.create_run("drill-flaky/drill-flaky", {"fail": False}).id, ROOT)

            receivers.store.clear()
            sla_s = 10
            started = []
            for _ in range(args.overruns):
                flow_run = runs.create_run("drill-slow/drill-slow", {"seconds": sla_s + 12})
                started.append((flow_run.id, runs.start(flow_run.id, ROOT)))
            sla = receivers.wait_for(
                lambda d: identify(d) is not None and identify(d).rule == "run-duration-sla",
                count=args.overruns,
                timeout=90,
            )
            for _, process in started:
                process.wait(timeout=60)
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                running_at = {
                    str(fid): client.read_flow_run(fid).start_time.timestamp() for fid, _ in started
                }
            sla_lags = []
            for delivery in sla:
                run_url = next(b for b in delivery.body["blocks"] if b["type"] == "actions")
                href = run_url["elements"][0]["url"]
                run_id = href.rsplit("/", 1)[-1]
                sla_lags.append(delivery.received_at - (running_at[run_id] + sla_s))
    finally:
        server.stop()
        receivers.stop()

    print(
        f"failure -> Slack payload over {len(failure_lags)} runs: "
        f"p50 {statistics.median(failure_lags):.2f} s, p95 {percentile(failure_lags, 0.95):.2f} s, "
        f"max {max(failure_lags):.2f} s (target p95 <= 3 s)"
    )
    if sla_lags:
        print(
            f"SLA window end -> alert over {len(sla_lags)} overruns: "
            f"p50 {statistics.median(sla_lags):.2f} s, max {max(sla_lags):.2f} s "
            f"(target <= 10 s)"
        )
    else:
        print("SLA: no alert arrived")


if __name__ == "__main__":
    main()
