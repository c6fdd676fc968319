"""Every name this project gives to something on a Prefect server, in one place.

Automations, blocks, tags, variables, limits, dedup keys and event names are matched by
other code (apply's reconcile and prune, the delivery-failed rule, the flows reading their
settings, PagerDuty resolving by dedup key). Writing any of them twice invites a rename
that silently breaks the match, so each is built here and nowhere else.
"""

from __future__ import annotations

import hashlib
import re

PROJECT = "pricechecktn"
"""Prefix of everything the product names; also the Pulumi project and config namespace."""

MANAGED_TAG = "managed-by:pricecheck-alerts"
"""Tag on every automation and variable this tool provisions: `apply` never touches others."""

SLAS_VARIABLE = f"{PROJECT}_slas"
"""Prefect variable holding a stack's check thresholds (read by the flows). Each
deployment's run-duration SLA has a variable of its own (`sla_variable`): Prefect refuses a
variable value over 5 000 bytes of JSON, which one document of every SLA outgrows at about a
hundred deployments."""

SLA_VARIABLE_PREFIX = f"{PROJECT}_sla__"
"""What every per-deployment SLA variable's name starts with (the flows list them by it)."""

VARIABLE_NAME_MAX = 255
"""Prefect's limit on a variable name (`prefect.types.names.MAX_VARIABLE_NAME_LENGTH`)."""

VARIABLE_NAME = r"^[a-z0-9_-]+$"
"""Prefect's variable name charset: lowercase letters, digits, dashes and underscores."""

SCRAPING_LIMIT = f"{PROJECT}-scraping"
"""Global concurrency limit the scraping tasks take a slot from (one slot per site)."""

EVENT_PREFIX = f"{PROJECT}."
EVENT_NAME = rf"^{PROJECT}\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
"""Pipeline signals: `pricechecktn.<area>.<signal>`."""

DEDUP_KEY_MAX = 255
"""PagerDuty Events API v2 limit on `dedup_key`."""


def stack_tag(stack: str) -> str:
    return f"stack:{stack}"


def environment_tag(environment: str) -> str:
    """Tag on every flow run of an environment (`prefect.yaml` sets it)."""
    return f"env:{environment}"


def work_pool_name(environment: str) -> str:
    return f"{PROJECT}-{environment}"


def automation_name(environment: str, rule: str, *suffix: str) -> str:
    """`pricechecktn/<env>/<rule>[/<suffix>...]`: one alert automation."""
    return "/".join((PROJECT, environment, rule, *suffix))


def automation_prefix(environment: str) -> str:
    """What every alert automation name of an environment starts with."""
    return automation_name(environment, "")


def meta_automation_name(environment: str, rule: str) -> str:
    """Automations about the alerts themselves live outside `pricechecktn/<env>/*`, so a
    failed delivery of a delivery-failure alert cannot trigger itself in a loop."""
    return "/".join((f"{PROJECT}-meta", environment, rule))


def block_prefix(environment: str) -> str:
    """What every notification block name of an environment starts with."""
    return f"{PROJECT}-{environment}-"


def block_name(environment: str, channel: str, domain: str | None = None) -> str:
    """`pricechecktn-<env>-<channel>[-<domain>]`: one notification block."""
    name = f"{block_prefix(environment)}{channel}"
    return f"{name}-{domain}" if domain else name


def block_type_slug(kind: str) -> str:
    """Slug of this package's notification block type for `kind` (slack, pagerduty, email)."""
    return f"{PROJECT}-{kind}-alert"


def check_resource_id(check: str) -> str:
    """Resource id of a pipeline check's events (`pricechecktn.check.<check>`)."""
    return f"{PROJECT}.check.{check}"


def dedup_key(environment: str, subject: str, rule: str) -> str:
    """Environment + what is broken + rule, never the run: the deployment's next success
    resolves the incident the failure opened."""
    return f"{PROJECT}/{environment}/{subject}/{rule}"[:DEDUP_KEY_MAX]


def sla_variable(deployment: str) -> str:
    """`pricechecktn_sla__<deployment>`: the variable holding one deployment's SLA.

    Deployment names may hold what a variable name may not (capitals, spaces, dots) and may
    be long: such a name is slugged and cut, and a short hash of the real name keeps two
    names that slug alike ("Nightly Run", "nightly-run") apart. The variable's value carries
    the real name, so nothing needs to reverse this."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", deployment.lower())
    if slug == deployment and len(SLA_VARIABLE_PREFIX) + len(slug) <= VARIABLE_NAME_MAX:
        return SLA_VARIABLE_PREFIX + slug
    digest = hashlib.sha256(deployment.encode()).hexdigest()[:10]
    room = VARIABLE_NAME_MAX - len(SLA_VARIABLE_PREFIX) - len(digest) - 1
    return f"{SLA_VARIABLE_PREFIX}{slug[:room]}-{digest}"


def flow_run_event(state: str) -> str:
    return f"prefect.flow-run.{state}"


SEND_TEST_EVENT = f"{PROJECT}.alerting.send_test"
"""What `pricecheck-alerts send-test` emits; the stack's send-test automations take it."""
SEND_TEST_CHANNEL_LABEL = f"{PROJECT}.channel"
"""The resource label of a send-test event that names the channel to test."""
