"""Every path that talks to a staging or prod Prefect server carries the same credential:
the CI/CD steps (Pulumi, `prefect deploy`, `pricecheck-alerts smoke`) from the repository's
secrets, and the stack files point operators at the auth string. Pure: files read as YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.test_ci_files import WORKFLOWS, WORKFLOWS_DIR, all_jobs, steps

from pricecheck_alerts.config.stacks import raw_stack_config, stack_settings

SECRET_ENV = {
    "PREFECT_API_AUTH_STRING": "${{ secrets.PREFECT_API_AUTH_STRING }}",
    "PREFECT_API_KEY": "${{ secrets.PREFECT_API_KEY }}",
}
TALKS_TO_PREFECT = (
    "prefect --no-prompt deploy",
    "pricecheck-alerts smoke",
    "pricecheck-alerts apply",
)


def talks_to_prefect(step: dict[str, Any]) -> bool:
    if str(step.get("uses", "")).startswith("pulumi/actions@"):
        return True
    return any(command in str(step.get("run", "")) for command in TALKS_TO_PREFECT)


def test_every_step_that_talks_to_prefect_gets_the_credentials_from_secrets() -> None:
    found = []
    for workflow, job_id, job in all_jobs():
        for step in steps(job):
            if not talks_to_prefect(step):
                continue
            env = {**(job.get("env") or {}), **(step.get("env") or {})}
            found.append((workflow, job_id))
            for key, value in SECRET_ENV.items():
                assert env.get(key) == value, f"{workflow}:{job_id}: {key}"
    assert {w for w, _ in found} == set(WORKFLOWS)  # previews, deploys and drift alike
    # Only from secrets: no credential written into a workflow in clear.
    for workflow in WORKFLOWS:
        text = (WORKFLOWS_DIR / workflow).read_text(encoding="utf-8")
        for line in text.splitlines():
            if "PREFECT_API_AUTH_STRING:" in line:
                assert line.split(":", 1)[1].strip() == SECRET_ENV["PREFECT_API_AUTH_STRING"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_stack_files_ask_for_the_auth_string_as_a_secret(stack: str, project_root: Path) -> None:
    text = (project_root / "infra" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert "pulumi config set --secret pricechecktn:prefectAuthString" in text
    config = yaml.safe_load(text)["config"]
    assert "pricechecktn:prefectAuthString" not in config  # never committed in clear


def test_a_stack_file_with_the_encrypted_auth_string_still_checks(project_root: Path) -> None:
    """What `pulumi config set --secret pricechecktn:prefectAuthString` writes into the
    stack file must not break `check`, `render` or `smoke`, which validate the same file
    through `stack_settings` (secrets are dropped there, not validated as settings)."""
    raw = raw_stack_config(project_root, "staging")
    raw["prefectAuthString"] = {"secure": "v1:bm90LWEtcmVhbC12YWx1ZQ=="}
    stack = stack_settings(raw, "staging", "infra/Pulumi.staging.yaml")
    assert stack.environment == "staging"
