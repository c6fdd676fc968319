"""Config trees for tests and benchmarks that need a stack of their own, and many rules.

A stack is the `local` stack's settings under another environment, so its automations and
blocks never meet those of other tests on a shared server. Outside `local` secrets may not
sit in the stack file: they are returned as the PRICECHECK_* variables `apply` reads.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pricecheck_alerts.config.stacks import SECRET_ENV


def add_stack(source: Path, tree: Path, stack: str, api_url: str | None = None) -> dict[str, str]:
    """Write `tree/infra/Pulumi.<stack>.yaml` from `source`'s local stack, environment and
    pool named after `stack` (and `prefectApiUrl` set to `api_url` if given); return its
    secrets as environment variables."""
    data = yaml.safe_load((source / "infra" / "Pulumi.local.yaml").read_text())
    config = data["config"]
    config["pricechecktn:environment"] = stack
    config["pricechecktn:workPool"]["name"] = f"pricechecktn-{stack}"
    if api_url is not None:
        config["pricechecktn:prefectApiUrl"] = api_url
    secrets = {
        var: str(config.pop(f"pricechecktn:{key}"))
        for key, var in SECRET_ENV.items()
        if f"pricechecktn:{key}" in config
    }
    (tree / "infra").mkdir(parents=True, exist_ok=True)
    (tree / "infra" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data))
    return secrets


def write_generated_rules(tree: Path, count: int, area: str) -> None:
    """`count` info rules on `pricechecktn.<area>.signal_<n>` events (marked external: no
    flow emits them) in `automations/rules/generated.yaml` (removed when `count` is 0)."""
    path = tree / "automations" / "rules" / "generated.yaml"
    if not count:
        path.unlink(missing_ok=True)
        return
    rules = [
        {
            "name": f"generated-{n:05d}",
            "description": "A generated rule (scale tests and benchmarks).",
            "severity": "info",
            "trigger": {
                "kind": "event",
                "event": f"pricechecktn.{area}.signal_{n:05d}",
                "external": True,
            },
            "message": f"Generated signal {n}",
            "runbook": "https://runbooks.example/generated.md",
        }
        for n in range(count)
    ]
    path.write_text(yaml.safe_dump({"rules": rules}))
