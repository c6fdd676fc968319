"""Provisioning at scale on a real local Prefect server: `check`, `render`, a first `apply`
and a no-op re-apply for 20, 200 and 1 000 automations, with their write counts.

The rules are the real catalog plus generated info rules on events nothing emits, under a
stack per size (its own environment, so sizes never see each other's automations). Alert
latency at scale is `benchmarks/alert_latency.py`'s job. Run: `.venv/bin/python
benchmarks/scale.py [--sizes 20 200 1000]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.local_server import LocalPrefectServer  # noqa: E402
from devtools.stack_tree import add_stack, write_generated_rules  # noqa: E402
from pricecheck_alerts.compile.compiler import compile_stack  # noqa: E402
from pricecheck_alerts.config.loader import load_catalog  # noqa: E402
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets  # noqa: E402
from pricecheck_alerts.provision.apply import apply_stack, managed_automations  # noqa: E402

ENV = {
    "PRICECHECK_SLACK_CRITICAL_URL": "http://127.0.0.1:9/slack/critical",
    "PRICECHECK_SLACK_WARNINGS_URL": "http://127.0.0.1:9/slack/warnings",
    "PRICECHECK_SLACK_INFO_URL": "http://127.0.0.1:9/slack/info",
    "PRICECHECK_PAGERDUTY_ROUTING_KEY": "b" * 32,
}


def make_tree(folder: Path, stack: str, automations: int) -> Path:
    """The real rules plus generated ones, `automations` in all, under stack `stack`."""
    shutil.copytree(ROOT / "automations", folder / "automations")
    add_stack(ROOT, folder, stack)  # its secrets come from ENV
    real = len(compile_stack(load_catalog(folder), load_stack(folder, stack, ENV)).automations)
    write_generated_rules(folder, max(automations - real, 0), "bench")
    return folder


def timed(action):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def measure(size: int, server: LocalPrefectServer, scratch: Path) -> dict[str, object]:
    stack = f"bench{size}"
    tree = make_tree(scratch / stack, stack, size)

    def compiled():  # type: ignore[no-untyped-def]
        return compile_stack(load_catalog(tree), load_stack(tree, stack, ENV))

    resources, check_s = timed(compiled)
    _, render_s = timed(lambda: json.dumps(compiled().to_document(), sort_keys=True))
    secrets = resolve_secrets(tree, stack, ENV)
    first, first_s = timed(lambda: apply_stack(resources, secrets, server.api_url))
    again, again_s = timed(lambda: apply_stack(resources, secrets, server.api_url))
    managed = managed_automations(stack, server.api_url)
    return {
        "automations": len(resources.automations),
        "check_s": check_s,
        "render_s": render_s,
        "first_apply_s": first_s,
        "first_writes": first.writes,
        "noop_apply_s": again_s,
        "noop_writes": again.writes,
        "on_server": sum(len(ids) for ids in managed.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        server = LocalPrefectServer(home=scratch / "server").start()
        try:
            with server.as_current():
                rows = [measure(size, server, scratch) for size in args.sizes]
        finally:
            server.stop()
    header = (
        "automations  check s  render s  first apply s (writes)  no-op apply s (writes)  on server"
    )
    print(header)
    for row in rows:
        print(
            f"{row['automations']:>11}  {row['check_s']:>7.2f}  {row['render_s']:>8.2f}  "
            f"{row['first_apply_s']:>13.1f} ({row['first_writes']:>5})  "
            f"{row['noop_apply_s']:>13.1f} ({row['noop_writes']:>5})  {row['on_server']:>9}"
        )


if __name__ == "__main__":
    main()
