"""Stack configuration: what differs between `local`, `staging` and `prod`.

The one source is the Pulumi stack file `infra/Pulumi.<stack>.yaml` (keys in the
`pricechecktn:` namespace), so `pulumi up` and `pricecheck-alerts render/apply` read the same
settings. Non-secret settings can be overridden by PRICECHECK_* environment variables.
Secret values (webhook URLs, routing key, SMTP password) are never part of `StackConfig`:
the compiler only names the config key a secret comes from, and whoever provisions
(Pulumi's secret config, or the environment for `apply`) supplies the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, HttpUrl, StrictBool, field_validator, model_validator

from pricecheck_alerts import naming
from pricecheck_alerts.config.loader import (
    ConfigError,
    YamlDocument,
    available_stacks,
    read_yaml,
    validate,
)
from pricecheck_alerts.config.models import Channel, Domain, Slas, Strict

NAMESPACE = naming.PROJECT
# The embedded default: its "secrets" are loopback receivers, so plain text is fine there.
LOCAL_STACK = "local"

# Secret config key -> environment variable that can supply or override it.
SECRET_ENV = {
    "slackCriticalUrl": "PRICECHECK_SLACK_CRITICAL_URL",
    "slackWarningsUrl": "PRICECHECK_SLACK_WARNINGS_URL",
    "slackInfoUrl": "PRICECHECK_SLACK_INFO_URL",
    "pagerdutyRoutingKey": "PRICECHECK_PAGERDUTY_ROUTING_KEY",
    "smtpPassword": "PRICECHECK_SMTP_PASSWORD",
}
# Every secret setting: never part of `StackConfig`, never plain text outside `local`.
SECRET_KEYS = (*SECRET_ENV, "pagerdutyToken", "prefectApiKey", "prefectAuthString")
# How `apply` (and every Prefect client) logs in to a stack's server: the basic auth
# `user:password` of a self-hosted server, or a Prefect Cloud API key.
PREFECT_CREDENTIAL_ENV = {
    "prefectAuthString": "PREFECT_API_AUTH_STRING",
    "prefectApiKey": "PREFECT_API_KEY",
}
SLACK_SECRET = {
    Channel.slack_critical: "slackCriticalUrl",
    Channel.slack_warnings: "slackWarningsUrl",
    Channel.slack_info: "slackInfoUrl",
}


class WorkPoolConfig(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    type: Literal["process", "docker", "kubernetes"] = "process"
    concurrency_limit: int | None = Field(default=None, alias="concurrencyLimit", ge=1)
    # Values for the pool type's base job template (image, env, resources...).
    job_variables: dict[str, Any] = Field(default_factory=dict, alias="jobVariables")
    # docker/kubernetes pools: the worker's template (`variables` + `job_configuration`);
    # process pools default to the process worker's own, so the workers' packages need not
    # be installed where we provision.
    base_job_template: dict[str, Any] | None = Field(default=None, alias="baseJobTemplate")

    @model_validator(mode="after")
    def _template_for_container_pools(self) -> WorkPoolConfig:
        if self.type != "process" and self.base_job_template is None:
            raise ValueError(f"a {self.type} work pool needs 'baseJobTemplate'")
        if self.base_job_template is not None:
            missing = {"job_configuration", "variables"} - set(self.base_job_template)
            if missing:
                raise ValueError(f"baseJobTemplate lacks {', '.join(sorted(missing))}")
        return self


class OnCallLayer(Strict):
    """One layer of the on-call schedule: users take turns of `rotationTurnLengthSeconds`."""

    name: str = Field(min_length=1)
    users: list[str] = Field(min_length=1)  # e-mails of existing PagerDuty users
    start: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$")
    rotation_turn_length_seconds: int = Field(
        default=7 * 24 * 3600, alias="rotationTurnLengthSeconds", ge=3600
    )

    @field_validator("start")
    @classmethod
    def _not_in_the_future(cls, value: str) -> str:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when > datetime.now(UTC):
            raise ValueError(
                "is in the future: nobody would be on call until then; "
                "use a past date (turns are counted from it)"
            )
        return value


class EscalationConfig(Strict):
    """On-call schedule first; after `delayMinutes` unacknowledged, the MLOps lead."""

    lead: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")  # e-mail of an existing PagerDuty user
    delay_minutes: int = Field(default=15, alias="delayMinutes", ge=1, le=120)
    loops: int = Field(default=2, ge=0, le=9)


class PagerDutyServiceConfig(Strict):
    """One alert domain's service. `support-hours`: high urgency in support hours, low
    outside (and raised to high when support hours start)."""

    urgency: Literal["high", "low", "support-hours"] = "high"
    ack_timeout_s: int | None = Field(default=1800, alias="ackTimeoutSeconds", ge=60)
    auto_resolve_timeout_s: int | None = Field(
        default=14400, alias="autoResolveTimeoutSeconds", ge=300
    )


class SupportHours(Strict):
    start: str = Field(default="08:00:00", pattern=r"^\d{2}:\d{2}:\d{2}$")
    end: str = Field(default="18:00:00", pattern=r"^\d{2}:\d{2}:\d{2}$")
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)


class PagerDutyConfig(Strict):
    """`enabled`: Pulumi manages PagerDuty services for this stack."""

    enabled: StrictBool = False
    events_url: str = Field(default="https://events.pagerduty.com/v2/enqueue", alias="eventsUrl")
    team: str | None = None
    time_zone: str = Field(default="Africa/Tunis", alias="timeZone")
    schedule_layers: list[OnCallLayer] = Field(default_factory=list, alias="scheduleLayers")
    escalation: EscalationConfig | None = None
    support_hours: SupportHours = Field(default_factory=SupportHours, alias="supportHours")
    services: dict[Domain, PagerDutyServiceConfig] = Field(
        default_factory=lambda: {d: PagerDutyServiceConfig() for d in get_args(Domain)}
    )

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> PagerDutyConfig:
        if self.enabled:
            missing = [
                key
                for key, value in (
                    ("team", self.team),
                    ("scheduleLayers", self.schedule_layers),
                    ("escalation", self.escalation),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"pagerduty.enabled needs {', '.join(missing)}")
            absent = [d for d in get_args(Domain) if d not in self.services]
            if absent:
                raise ValueError(f"pagerduty.services lacks {', '.join(absent)}")
        return self


class EmailConfig(Strict):
    smtp_host: str = Field(alias="smtpHost")
    smtp_port: int = Field(default=587, alias="smtpPort", ge=1, le=65535)
    # prefect-email's SMTPType: SSL (implicit TLS), STARTTLS or INSECURE (plain, loopback).
    smtp_type: Literal["SSL", "STARTTLS", "INSECURE"] = Field(default="STARTTLS", alias="smtpType")

    @field_validator("smtp_type", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        """`ssl` as well as `SSL`, as prefect-email (and PRICECHECK_SMTP_TYPE) take it."""
        return value.upper() if isinstance(value, str) else value

    username: str | None = None
    sender: str = Field(alias="from")
    recipients: list[str] = Field(alias="to", min_length=1)


class StackConfig(Strict):
    """The validated, non-secret settings of one stack."""

    name: str
    environment: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    prefect_api_url: HttpUrl = Field(alias="prefectApiUrl")
    prefect_ui_url: HttpUrl = Field(alias="prefectUiUrl")
    runbook_base_url: str = Field(alias="runbookBaseUrl")
    work_pool: WorkPoolConfig = Field(alias="workPool")
    pagerduty: PagerDutyConfig = Field(default_factory=PagerDutyConfig)
    email: EmailConfig | None = None
    sla_overrides: dict[str, Any] = Field(default_factory=dict, alias="slaOverrides")
    # Deployments this stack runs that prefect.yaml does not define (the local stack's
    # drills, which devtools deploys), so its SLA overrides may name them.
    extra_deployments: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, alias="extraDeployments"
    )
    # Global concurrency limits by name, e.g. how many sites may be scraped at once.
    concurrency_limits: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, alias="concurrencyLimits"
    )
    # Pulumi refuses to delete protected resources (PagerDuty objects, the work pool) until
    # the flag is lifted: an accidental rename or `destroy` on prod pages nobody's absence.
    protect: StrictBool = False

    def runbook_url(self, runbook: str) -> str:
        if runbook.startswith(("http://", "https://")):
            return runbook
        return self.runbook_base_url.rstrip("/") + "/" + runbook

    def effective_slas(self, slas: Slas) -> Slas:
        """The catalog's SLAs with this stack's overrides merged in, validated again."""
        merged = _deep_merge(slas.model_dump(mode="json"), self.sla_overrides)
        return validate(Slas, merged, f"infra/Pulumi.{self.name}.yaml: slaOverrides")


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def stack_file(root: Path, stack: str) -> Path:
    return root / "infra" / f"Pulumi.{stack}.yaml"


def raw_stack_config(root: Path, stack: str) -> dict[str, Any]:
    """The `pricechecktn:` keys of a Pulumi stack file, namespace stripped."""
    raw: dict[str, Any] = _read_stack_file(root, stack).data
    return raw


def _read_stack_file(root: Path, stack: str) -> YamlDocument:
    """The `pricechecktn:` keys of a stack file (namespace stripped), with their lines."""
    path = stack_file(root, stack)
    display = f"infra/Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(available_stacks(root)) or "none"
        raise ConfigError([f"{display}: no such stack (known stacks: {known})"])
    document = read_yaml(path, display)
    data = document.data or {}
    if not isinstance(data, dict) or not isinstance(data.get("config") or {}, dict):
        raise ConfigError([f"{display}: must be a mapping with a 'config' mapping of settings"])
    prefix = f"{NAMESPACE}:"
    config = data.get("config") or {}
    raw = {
        k[len(prefix) :]: v
        for k, v in config.items()
        if isinstance(k, str) and k.startswith(prefix)
    }
    lines = {
        (key_path[1][len(prefix) :], *key_path[2:]): line
        for key_path, line in document.lines.items()
        if key_path[:1] == ("config",) and len(key_path) > 1 and str(key_path[1]).startswith(prefix)
    }
    stripped = YamlDocument(raw, lines)
    if stack != LOCAL_STACK:
        plain = [key for key in SECRET_KEYS if isinstance(raw.get(key), str)]
        if plain:
            raise ConfigError(
                [
                    f"{display}:{stripped.line_of((key,))}: field '{key}': a secret in plain "
                    f"text; set it with `pulumi config set --secret {NAMESPACE}:{key} ...`"
                    for key in plain
                ]
            )
    return stripped


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Non-secret settings from PRICECHECK_* variables, in stack-config shape."""
    out: dict[str, Any] = {}
    email: dict[str, Any] = {}
    for var, key in (
        ("PRICECHECK_SMTP_HOST", "smtpHost"),
        ("PRICECHECK_SMTP_PORT", "smtpPort"),
        ("PRICECHECK_SMTP_TYPE", "smtpType"),
        ("PRICECHECK_SMTP_USERNAME", "username"),
        ("PRICECHECK_EMAIL_FROM", "from"),
    ):
        if environ.get(var):
            email[key] = environ[var]
    if environ.get("PRICECHECK_EMAIL_TO"):
        email["to"] = [a.strip() for a in environ["PRICECHECK_EMAIL_TO"].split(",") if a.strip()]
    if email:
        out["email"] = email
    if environ.get("PRICECHECK_PAGERDUTY_EVENTS_URL"):
        out["pagerduty"] = {"eventsUrl": environ["PRICECHECK_PAGERDUTY_EVENTS_URL"]}
    if environ.get("PRICECHECK_PREFECT_UI_URL"):
        out["prefectUiUrl"] = environ["PRICECHECK_PREFECT_UI_URL"]
    if environ.get("PRICECHECK_RUNBOOK_BASE_URL"):
        out["runbookBaseUrl"] = environ["PRICECHECK_RUNBOOK_BASE_URL"]
    return out


SETTING_KEYS = tuple(
    field.alias or name for name, field in StackConfig.model_fields.items() if name != "name"
)
"""The non-secret settings of a stack, as named in its config (`pricechecktn:<key>`)."""


def stack_settings(
    raw: Mapping[str, Any],
    stack: str,
    display: str,
    environ: Mapping[str, str] | None = None,
    document: YamlDocument | None = None,
) -> StackConfig:
    """Validate one stack's settings from any source: the stack file (`load_stack`, whose
    `document` gives line numbers) or Pulumi's own config (the Pulumi program). Secrets
    are dropped: they never belong here."""
    settings = {k: v for k, v in raw.items() if k not in SECRET_KEYS}
    settings = _deep_merge(settings, _env_overrides(environ or {}))
    settings["name"] = stack
    # A work pool's job template is a Prefect template: `{{ image }}` belongs there.
    return validate(
        StackConfig, settings, display, document, templates_allowed_under=frozenset({"workPool"})
    )


def load_stack(root: Path, stack: str, environ: Mapping[str, str]) -> StackConfig:
    """Validate one stack's settings (file + environment overrides)."""
    display = f"infra/Pulumi.{stack}.yaml"
    document = _read_stack_file(root, stack)
    return stack_settings(document.data, stack, display, environ, document)


def resolve_secrets(root: Path, stack: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Secret values for provisioning without Pulumi (`apply`): environment first, then
    plain values in the stack file. Pulumi-encrypted (`secure:`) values cannot be read here;
    they must come from the environment."""
    raw = raw_stack_config(root, stack)
    values: dict[str, str] = {}
    for key, var in SECRET_ENV.items():
        if environ.get(var):
            values[key] = environ[var]
        elif isinstance(raw.get(key), str):
            values[key] = raw[key]
    # Without managed PagerDuty services every domain shares the one routing key.
    if "pagerdutyRoutingKey" in values:
        for domain in get_args(Domain):
            values[pagerduty_key(domain)] = values["pagerdutyRoutingKey"]
    return values


def secret_sources(
    root: Path, stack: str, needed: set[str], environ: Mapping[str, str]
) -> dict[str, str | None]:
    """Where each `needed` secret key comes from, as far as this machine can tell: the
    stack file (a Pulumi `secure:` value, or plain text on `local`), else its environment
    variable (what `apply` reads); None when neither holds it. Pulumi may still get it from
    elsewhere (ESC, `--config-file`), which cannot be seen from here."""
    raw = raw_stack_config(root, stack)
    sources: dict[str, str | None] = {}
    for key in sorted(needed):
        # The server login: either credential will do, in the file or the environment.
        alternatives = list(PREFECT_CREDENTIAL_ENV) if key in PREFECT_CREDENTIAL_ENV else [key]
        found = [f"infra/Pulumi.{stack}.yaml ({k})" for k in alternatives if raw.get(k) is not None]
        for k in alternatives:
            var = SECRET_ENV.get(k) or PREFECT_CREDENTIAL_ENV.get(k)
            if var and environ.get(var):
                found.append(f"${var}")
        sources[key] = ", ".join(found) or None
    return sources


def needed_secrets(stack: StackConfig, block_secrets: set[str]) -> set[str]:
    """The secret settings a stack's resources need: what its blocks name, with the
    per-domain PagerDuty keys folded into the one `pagerdutyRoutingKey` (or, when Pulumi
    manages the PagerDuty services and makes their keys, the REST API token instead),
    and outside `local` a login to the Prefect server (auth string or API key)."""
    needed = {key.split(":", 1)[0] for key in block_secrets}
    if stack.pagerduty.enabled:
        needed.discard("pagerdutyRoutingKey")
        needed.add("pagerdutyToken")
    if stack.name != LOCAL_STACK:
        needed.add("prefectAuthString")
    return needed


def secret_env_var(key: str) -> str:
    """The environment variable that supplies a secret key (domain keys share one)."""
    return SECRET_ENV[key.split(":", 1)[0]]


def pagerduty_key(domain: str) -> str:
    """The secret key naming the routing key of one PagerDuty domain's service."""
    return f"pagerdutyRoutingKey:{domain}"
