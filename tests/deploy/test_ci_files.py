"""The CI workflows (.github/workflows/) and container images (docker/): what the linters
do not check, plus the linters themselves, so that `make test` fails on a broken file even
when nobody ran `make lint`.

Pure and fast: the files are read as YAML / text, and actionlint, zizmor (offline) and
hadolint run as local binaries from the dev group.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_REL = ".github/workflows"
WORKFLOWS_DIR = ROOT / WORKFLOWS_REL
WORKFLOWS = ("pull-request.yml", "deploy.yml", "drift.yml")
DOCKERFILES = ("pipeline.Dockerfile", "server.Dockerfile")

SHA_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
VERSION_COMMENT = re.compile(r"^\s+#\s*v\d+(\.\d+)*\b")
RUN_PREFIXES = ("make ", ".venv/bin/")
CHECKOUT = "actions/checkout@"
SETUP_PYTHON = "actions/setup-python@"
PULUMI = "pulumi/actions@"


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS_DIR / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """`on:` (YAML 1.1 reads the bare key `on` as the boolean True)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), "workflow has no `on:`"
    return on


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def all_jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in WORKFLOWS:
        for job_id, job in load(name)["jobs"].items():
            yield name, job_id, job


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def environment_name(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def pulumi_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in steps(job) if str(s.get("uses", "")).startswith(PULUMI)]


def run_lines(job: dict[str, Any]) -> list[str]:
    return [
        line.strip()
        for step in steps(job)
        if "run" in step
        for line in str(step["run"]).splitlines()
        if line.strip()
    ]


# --- workflows -------------------------------------------------------------------------------


def test_the_three_workflows_exist() -> None:
    for name in WORKFLOWS:
        assert (WORKFLOWS_DIR / name).is_file(), name


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_action_is_pinned_to_a_commit_sha_with_its_version(name: str) -> None:
    text = (WORKFLOWS_DIR / name).read_text(encoding="utf-8")
    found = 0
    for number, line in enumerate(text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if not match:
            continue
        found += 1
        ref = match["ref"]
        assert SHA_PINNED.match(ref), f"{name}:{number}: {ref} is not pinned to a 40-hex SHA"
        assert VERSION_COMMENT.match(match["comment"]), (
            f"{name}:{number}: {ref} needs its version in a trailing comment (# vX.Y.Z)"
        )
    assert found, f"{name} uses no action at all?"

    # The same through the parsed YAML (catches `uses:` written in flow style).
    for job_id, job in load(name)["jobs"].items():
        refs = [job["uses"]] if "uses" in job else [s["uses"] for s in steps(job) if "uses" in s]
        for ref in refs:
            assert SHA_PINNED.match(ref), f"{name} job {job_id}: {ref} is not SHA-pinned"


@pytest.mark.parametrize("name", WORKFLOWS)
def test_least_privilege_permissions(name: str) -> None:
    workflow = load(name)
    assert "permissions" in workflow, f"{name} has no top-level permissions"
    assert workflow["permissions"] in ({}, {"contents": "read"}), (
        f"{name}: top-level permissions must be {{}} or contents: read"
    )
    for job_id, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name} job {job_id} sets no permissions"
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= {"pull-requests"}, f"{name} job {job_id} writes {writes}"
        if "pull-requests" in writes:
            comments = any(
                "sticky-pull-request-comment" in str(s.get("uses", ""))
                or truthy(s.get("with", {}).get("comment-on-pr"))
                for s in steps(job)
            )
            assert comments, f"{name} job {job_id}: pull-requests: write but never comments"


def test_checkouts_do_not_persist_credentials() -> None:
    for name, job_id, job in all_jobs():
        for step in steps(job):
            if str(step.get("uses", "")).startswith(CHECKOUT):
                assert step.get("with", {}).get("persist-credentials") is False, (
                    f"{name} job {job_id}: checkout without persist-credentials: false"
                )


def test_every_run_line_calls_make_or_a_venv_cli() -> None:
    for name, job_id, job in all_jobs():
        for line in run_lines(job):
            assert line.startswith(RUN_PREFIXES), f"{name} job {job_id}: run line {line!r}"
            # Secrets and event data reach scripts through `env:`, never as template text.
            assert "${{" not in line, f"{name} job {job_id}: template expansion in {line!r}"


def test_jobs_that_run_the_project_use_python_311() -> None:
    for name, job_id, job in all_jobs():
        if not run_lines(job):
            continue
        setups = [s for s in steps(job) if str(s.get("uses", "")).startswith(SETUP_PYTHON)]
        assert setups, f"{name} job {job_id} runs make/.venv without actions/setup-python"
        assert str(setups[0]["with"]["python-version"]) == "3.11", f"{name} job {job_id}"


def test_pulumi_steps_use_the_infra_project_and_an_org_stack() -> None:
    for name, job_id, job in all_jobs():
        for step in pulumi_steps(job):
            inputs = step["with"]
            assert inputs["work-dir"] == "infra", f"{name} job {job_id}"
            assert re.fullmatch(
                r"\$\{\{ vars\.PULUMI_ORG \}\}/pricechecktn/"
                r"(staging|prod|\$\{\{ matrix\.stack \}\})",
                inputs["stack-name"],
            ), f"{name} job {job_id}: stack-name {inputs['stack-name']}"
            assert "PULUMI_ACCESS_TOKEN" in step.get("env", {}), f"{name} job {job_id}"


def makefile_uv_version() -> str:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    version = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, re.M)
    assert version, "Makefile sets no UV_VERSION"
    return version[1]


def test_pulumi_gets_uv_on_path_for_its_uv_toolchain() -> None:
    """The program and the policy pack use `toolchain: uv` (a uv-made virtualenv has no
    pip), so the engine runs `uv` from PATH; make setup's uv lives in .tools/bin, so every
    Pulumi job installs the same version before Pulumi runs."""
    for path in ("infra/Pulumi.yaml", "infra/policy/PulumiPolicy.yaml"):
        runtime = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))["runtime"]
        assert runtime["options"]["toolchain"] == "uv", path
    for name, job_id, job in all_jobs():
        uses = [str(s.get("uses", "")) for s in steps(job)]
        pulumi = [i for i, ref in enumerate(uses) if ref.startswith(PULUMI)]
        if not pulumi:
            continue
        setup_uv = [i for i, ref in enumerate(uses) if ref.startswith("astral-sh/setup-uv@")]
        assert setup_uv and setup_uv[0] < pulumi[0], f"{name} job {job_id}: no uv before Pulumi"
        inputs = steps(job)[setup_uv[0]]["with"]
        assert str(inputs["version"]) == makefile_uv_version(), f"{name} job {job_id}"


def test_pull_request_workflow_tests_with_postgres_and_redis() -> None:
    workflow = load("pull-request.yml")
    assert "pull_request" in triggers(workflow)
    jobs = workflow["jobs"]

    test = jobs["test"]
    lines = run_lines(test)
    assert "make test" in lines and "make test-scale" in lines
    assert lines.index("make test") < lines.index("make test-scale")
    services = test["services"]
    images = {name: str(service["image"]) for name, service in services.items()}
    assert any(image.startswith("postgres:16") for image in images.values()), images
    assert any(image.startswith("redis:7") for image in images.values()), images
    ports = {str(port) for service in services.values() for port in service.get("ports", [])}
    assert {"5432:5432", "6379:6379"} <= ports, ports

    check = run_lines(jobs["check"])
    assert ".venv/bin/pricecheck-alerts check --stack local" in check
    for stack in ("staging", "prod"):  # pull requests get no secrets
        assert f".venv/bin/pricecheck-alerts check --stack {stack} --skip-secrets" in check

    for job_id in ("preview", "who-gets-paged"):
        assert jobs[job_id]["strategy"]["matrix"]["stack"] == ["staging", "prod"], job_id

    (preview,) = pulumi_steps(jobs["preview"])
    inputs = preview["with"]
    assert inputs["command"] == "preview"
    assert inputs["policyPacks"] == "policy"
    assert truthy(inputs["comment-on-pr"]) and truthy(inputs["refresh"])
    assert truthy(inputs["diff"])

    paged = jobs["who-gets-paged"]
    checkout = next(s for s in steps(paged) if str(s.get("uses", "")).startswith(CHECKOUT))
    assert checkout["with"]["fetch-depth"] == 0
    assert any(line.startswith(".venv/bin/pricecheck-alerts diff ") for line in run_lines(paged))
    sticky = next(s for s in steps(paged) if "sticky-pull-request-comment" in s.get("uses", ""))
    assert "matrix.stack" in sticky["with"]["header"] and "matrix.stack" in sticky["with"]["path"]


def test_deploy_workflow_goes_staging_then_prod_behind_environments() -> None:
    workflow = load("deploy.yml")
    on = triggers(workflow)
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert workflow["concurrency"]["cancel-in-progress"] is False

    jobs = workflow["jobs"]
    staging, prod = jobs["staging"], jobs["prod"]
    assert environment_name(staging) == "staging"
    assert environment_name(prod) == "prod"
    needs = prod["needs"]
    assert (needs if isinstance(needs, list) else [needs]) == ["staging"]

    for stack, job in (("staging", staging), ("prod", prod)):
        (up,) = pulumi_steps(job)
        assert up["with"]["command"] == "up"
        assert up["with"]["policyPacks"] == "policy"
        assert up["with"]["stack-name"].endswith(f"/pricechecktn/{stack}")
        assert job["env"]["PRICECHECK_ENV"] == stack
        lines = run_lines(job)
        assert lines.index(".venv/bin/prefect --no-prompt deploy --all") < lines.index(
            f".venv/bin/pricecheck-alerts smoke --stack {stack}"
        )
        deploy = next(s for s in steps(job) if "prefect --no-prompt deploy" in s.get("run", ""))
        api_url = f"${{{{ steps.{up['id']}.outputs.prefectApiUrl }}}}"
        assert deploy["env"]["PREFECT_API_URL"] == api_url


def test_drift_workflow_fails_on_any_change() -> None:
    workflow = load("drift.yml")
    on = triggers(workflow)
    assert "schedule" in on and "workflow_dispatch" in on
    (job,) = workflow["jobs"].values()
    assert job["strategy"]["matrix"]["stack"] == ["staging", "prod"]
    (preview,) = pulumi_steps(job)
    inputs = preview["with"]
    assert inputs["command"] == "preview"
    assert truthy(inputs["expect-no-changes"]) and truthy(inputs["refresh"])


# --- Dockerfiles -----------------------------------------------------------------------------


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "docker" / name).read_text(encoding="utf-8")
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        logical.append(current.strip())
        current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def final_stage(name: str) -> list[tuple[str, str]]:
    items = instructions(name)
    last_from = max(i for i, (op, _) in enumerate(items) if op == "FROM")
    return items[last_from:]


def arg_default(name: str, arg: str) -> str:
    for op, rest in instructions(name):
        if op == "ARG" and rest.startswith(f"{arg}="):
            return rest.split("=", 1)[1]
    raise AssertionError(f"{name} has no ARG {arg}")


def test_images_are_pinned_and_uv_matches_the_makefile() -> None:
    uv_version = makefile_uv_version()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    prefect = next(d for d in pyproject["project"]["dependencies"] if d.startswith("prefect=="))
    for name in DOCKERFILES:
        assert arg_default(name, "UV_VERSION") == uv_version, name
    python_image = arg_default("pipeline.Dockerfile", "PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", python_image), python_image
    server_base = arg_default("server.Dockerfile", "PREFECT_IMAGE")
    assert server_base == f"prefecthq/prefect:{prefect.removeprefix('prefect==')}-python3.11"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_images_run_as_a_numeric_non_root_user(name: str) -> None:
    users = [rest for op, rest in final_stage(name) if op == "USER"]
    assert users, f"{name}: the final stage sets no USER"
    uid = users[-1].split(":")[0]
    if uid == "${APP_UID}":
        uid = arg_default(name, "APP_UID")
    assert uid.isdigit() and int(uid) != 0, f"{name}: USER {users[-1]}"


def test_pipeline_image_layout() -> None:
    stage = final_stage("pipeline.Dockerfile")
    assert ("WORKDIR", "/opt/pricechecktn") in stage
    copies = [rest for op, rest in stage if op == "COPY" and not rest.startswith("--from")]
    for source in ("flows/", "automations/", "prefect.yaml"):
        assert any(rest.split()[0] == source for rest in copies), source
    runs = " ".join(rest for op, rest in instructions("pipeline.Dockerfile") if op == "RUN")
    assert "uv sync --frozen --no-dev --extra pipeline --no-editable" in runs


def test_server_image_ships_only_the_wheel() -> None:
    items = instructions("server.Dockerfile")
    runs = " ".join(rest for op, rest in items if op == "RUN")
    assert "uv build --wheel --package pricecheck-alerts" in runs
    stage = final_stage("server.Dockerfile")
    # The final stage takes only the builder's output (the wheel and its locked requirements).
    copies = [rest for op, rest in stage if op in ("COPY", "ADD")]
    assert all(rest.startswith("--from=builder") for rest in copies), copies
    assert "pip install" in " ".join(rest for op, rest in stage if op == "RUN")
    # From the build context: only what building the wheel and exporting the lock need
    # (infra/pyproject.toml because infra/ is a workspace member); no flows, tests, Pulumi.
    sources = {
        source
        for op, rest in items
        if op == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    }
    assert sources <= {"pyproject.toml", "uv.lock", "README.md", "infra/pyproject.toml", "src/"}
    (cmd,) = [rest for op, rest in stage if op == "CMD"]
    assert cmd == '["prefect", "server", "start", "--host", "0.0.0.0"]'


# --- the linters -----------------------------------------------------------------------------


def tool(name: str) -> str:
    """The dev group's binary next to this interpreter (.venv/bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: `make setup` installs it (dev group)"
    return found


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["hadolint", *(f"docker/{name}" for name in DOCKERFILES)], id="hadolint"),
        pytest.param(["actionlint", *(f"{WORKFLOWS_REL}/{w}" for w in WORKFLOWS)], id="actionlint"),
        pytest.param(["zizmor", "--offline", "--no-progress", WORKFLOWS_REL], id="zizmor"),
    ],
)
def test_linter_is_clean(command: list[str]) -> None:
    result = subprocess.run(
        [tool(command[0]), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"


def test_code_under_review_never_gets_deploy_credentials() -> None:
    """Previews and the drift check run in the read-only `preview-<stack>` environments;
    only the deploy jobs use `staging` / `prod` (where prod's reviewers approve)."""
    for name, job_id, job in all_jobs():
        uses_secrets = "secrets." in yaml.safe_dump(job)
        env = environment_name(job)
        if name in ("pull-request.yml", "drift.yml") and uses_secrets:
            assert env == "preview-${{ matrix.stack }}", (name, job_id)
        if name == "deploy.yml":
            assert env in ("staging", "prod"), job_id


def test_deploy_points_the_pull_step_at_the_image_path() -> None:
    """`prefect deploy` resolves PRICECHECK_FLOWS_DIR into the pull step: in the deploy
    jobs it must be the folder where docker/pipeline.Dockerfile puts the flows."""
    deploy = load("deploy.yml")
    for job in deploy["jobs"].values():
        [step] = [s for s in steps(job) if "prefect --no-prompt deploy" in s.get("run", "")]
        assert step["env"]["PRICECHECK_FLOWS_DIR"] == "/opt/pricechecktn"
    assert "WORKDIR /opt/pricechecktn" in (ROOT / "docker" / "pipeline.Dockerfile").read_text()
