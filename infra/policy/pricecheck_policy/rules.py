"""The policy rules as pure functions over plain resource data, so each is unit-tested
without the Pulumi engine; `pack.py` adapts them to pulumi-policy.

A resource is `Res(type, name, urn, props, secret_outputs)`; each rule returns the list of
violations (empty: compliant).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pricecheck_alerts import naming

AUTOMATION = "pulumi-python:dynamic/prefect:Automation"
BLOCK = "pulumi-python:dynamic/prefect:BlockDocument"
VARIABLE = "pulumi-python:dynamic/prefect:Variable"
PAGERDUTY_PROVIDER = "pulumi:providers:pagerduty"
PAGERDUTY_INTEGRATION = "pagerduty:index/serviceIntegration:ServiceIntegration"

PAGERDUTY_BLOCK_TYPE = naming.block_type_slug("pagerduty")
SLA_VARIABLE = naming.SLAS_VARIABLE
# Run-duration SLAs outside these bounds are typos (seconds vs minutes) on a real stack;
# the local stack keeps drill values (10 s) and is exempt.
SLA_MIN_S = 60
SLA_MAX_S = 24 * 3600
EXEMPT_FROM_SLA_BOUNDS = frozenset({"local"})

PREFECT_TYPES = frozenset(
    f"pulumi-python:dynamic/prefect:{kind}"
    for kind in ("WorkPool", "BlockDocument", "Automation", "Variable", "ConcurrencyLimit")
)
# Where a secret may legitimately sit in a resource's inputs (and is marked secret there).
SECRET_PATHS: Mapping[str, tuple[str, ...]] = {
    BLOCK: ("data",),
    PAGERDUTY_PROVIDER: ("token",),
    PAGERDUTY_INTEGRATION: ("integration_key", "integrationKey"),
}
# The Prefect credentials every Prefect resource carries: a Cloud API key, or the basic auth
# (`user:password`) of a self-hosted server.
CREDENTIAL_PATHS = ("api_key", "auth_string")
ALWAYS_SECRET_PATHS = CREDENTIAL_PATHS
# Prefect resources echo their inputs as outputs: these must be declared secret outputs.
SECRET_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    **{t: CREDENTIAL_PATHS for t in PREFECT_TYPES},
    BLOCK: (*CREDENTIAL_PATHS, "data"),
}
# Stacks whose Prefect server may be open: the embedded default, on loopback only.
EXEMPT_FROM_AUTHENTICATION = frozenset({"local"})
SECRET_PATTERNS = {
    "Slack webhook URL": re.compile(r"hooks\.slack\.com/(services|workflows)/"),
    "Prefect API key": re.compile(r"\bpn[ub]_[A-Za-z0-9]{20,}"),
    "password in a URL": re.compile(r"://[^/\s:@]+:[^/\s@]+@"),
    "PagerDuty routing key": re.compile(r"^[A-Za-z0-9]{32}$"),
}
_RUNBOOK = re.compile(r'"runbook":\s*"https?://[^"\s]+"')


@dataclass(frozen=True)
class Res:
    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    secret_outputs: Sequence[str] = field(default_factory=tuple)


def stack_of(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` → stack."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf with its path. pulumi-policy hands inputs over as read-only proxies
    (`Mapping` and `Sequence`, not `dict` and `list`): test the abstract types."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def plaintext_secrets(res: Res) -> list[str]:
    """Secret-looking values outside the places secrets belong, and secret-holding inputs
    whose outputs are not marked secret."""
    allowed = (*SECRET_PATHS.get(res.type, ()), *ALWAYS_SECRET_PATHS)
    problems = []
    for path, value in _walk({k: v for k, v in res.props.items() if not k.startswith("__")}):
        root = re.split(r"[.\[]", path, maxsplit=1)[0]
        if root in allowed or not isinstance(value, str):
            continue
        for what, pattern in SECRET_PATTERNS.items():
            if pattern.search(value):
                problems.append(f"{res.name}: {what} in plain input '{path}'")
    for key in SECRET_OUTPUTS.get(res.type, ()):
        if res.props.get(key) is not None and key not in res.secret_outputs:
            problems.append(f"{res.name}: '{key}' holds a secret but is not a secret output")
    return problems


def authenticated_connection(res: Res, stack: str) -> list[str]:
    """Outside `local`, every Prefect resource reaches its server with credentials: an
    `auth_string` (self-hosted, basic auth) or an `api_key` (Prefect Cloud). A server that
    takes writes without them hands every alert secret to whoever can reach it (a block's
    secret fields are readable through the API), so a stack without either is refused."""
    if res.type not in PREFECT_TYPES or stack in EXEMPT_FROM_AUTHENTICATION:
        return []
    if any(res.props.get(key) for key in CREDENTIAL_PATHS):
        return []
    return [
        f"{res.name}: no Prefect credentials on stack '{stack}': set "
        f"`pulumi config set --secret {naming.PROJECT}:prefectAuthString 'user:password'` "
        f"(self-hosted server) or `{naming.PROJECT}:prefectApiKey` (Prefect Cloud)"
    ]


def runbook_links(res: Res) -> list[str]:
    """Every notification an automation sends carries an http(s) runbook link."""
    if res.type != AUTOMATION:
        return []
    notifications = [a for a in res.props.get("actions") or [] if "body" in a]
    if not notifications:
        return [f"{res.name}: automation sends no notification, so no runbook link"]
    return [
        f"{res.name}: action {index} has no runbook link"
        for index, action in enumerate(notifications)
        if not _RUNBOOK.search(str(action.get("body", "")))
    ]


def sla_bounds(res: Res, stack: str) -> list[str]:
    """Run-duration SLAs (proactive triggers and the SLA variable) and check thresholds
    within sane bounds."""
    if stack in EXEMPT_FROM_SLA_BOUNDS:
        return []
    problems = []
    if res.type == AUTOMATION:
        trigger = res.props.get("trigger") or {}
        within = trigger.get("within")
        proactive = trigger.get("posture") == "Proactive"
        if proactive and isinstance(within, int | float) and not SLA_MIN_S <= within <= SLA_MAX_S:
            problems.append(f"{res.name}: SLA of {within:g} s outside [{SLA_MIN_S}, {SLA_MAX_S}] s")
    if res.type == VARIABLE and res.props.get("name") == SLA_VARIABLE:
        problems += _sla_document_problems(res.name, res.props.get("value") or {})
    return problems


def _sla_document_problems(name: str, slas: Mapping[str, Any]) -> list[str]:
    problems = []
    for deployment, sla in (slas.get("deployments") or {}).items():
        seconds = sla.get("max_duration_s")
        if not isinstance(seconds, int | float) or not SLA_MIN_S <= seconds <= SLA_MAX_S:
            problems.append(
                f"{name}: {deployment} max_duration_s={seconds} outside "
                f"[{SLA_MIN_S}, {SLA_MAX_S}] s"
            )
    for area, values in (slas.get("thresholds") or {}).items():
        for key, value in (values or {}).items():
            if not isinstance(value, int | float):
                continue
            is_share = key.endswith(("_rate", "_confidence", "_accuracy")) or key.startswith(
                ("min_completeness", "min_validity", "min_consistency")
            )
            if is_share and not 0 < value <= 1:
                problems.append(f"{name}: thresholds.{area}.{key}={value} is not in (0, 1]")
            if value < 0:
                problems.append(f"{name}: thresholds.{area}.{key}={value} is negative")
    return problems


def critical_rules_page(resources: Iterable[Res], stack: str) -> list[str]:
    """On prod, every critical automation notifies a PagerDuty block."""
    if stack != "prod":
        return []
    resources = list(resources)
    pagerduty_blocks = {
        r.props.get("name")
        for r in resources
        if r.type == BLOCK and r.props.get("block_type_slug") == PAGERDUTY_BLOCK_TYPE
    }
    problems = []
    for res in resources:
        if res.type != AUTOMATION or "severity:critical" not in (res.props.get("tags") or []):
            continue
        if not set(res.props.get("routes") or []) & pagerduty_blocks:
            problems.append(f"{res.name}: critical rule does not page PagerDuty on prod")
    return problems
