"""Run settings (retries, timeouts, where state lives) and per-site scraping config.

Defaults are the production values (flow retries 2 x 60 s, scraping tasks
3 x 30 s, flow timeout 3600 s). Each can be overridden by an environment variable so that a
deployment's job variables, the demo and the tests can shrink them without code changes.
Alert thresholds are *not* here: they come from the stack's provisioned `pricechecktn_slas`
variable and its per-deployment `pricechecktn_sla__<deployment>` variables
(`automations/slas.yaml` with the stack's `slaOverrides`), see `RunSettings.slas`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prefect.client.orchestration import get_client
from pydantic import BaseModel, ConfigDict, Field

from pricecheck_alerts import naming
from pricecheck_alerts.compile.slas import slas_from_variables
from pricecheck_alerts.config.loader import load_slas, validate
from pricecheck_alerts.config.models import Slas

REPO_ROOT = Path(__file__).resolve().parents[1]
SITES_FILE = Path(__file__).parent / "sites.yaml"
VARIABLES_PAGE = 200  # the server's default page limit (PREFECT_API_DEFAULT_LIMIT)


def _env_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class RunSettings:
    """Retry/timeout policy and the state folder (model cache, baseline, latest snapshot)."""

    flow_retries: int = 2
    flow_retry_delay_s: float = 60.0
    flow_timeout_s: float = 3600.0
    scrape_retries: int = 3
    scrape_retry_delay_s: float = 30.0
    state_dir: Path = REPO_ROOT / ".local" / "pipeline-state"
    config_root: Path = REPO_ROOT
    # Set when PRICECHECK_CONFIG_ROOT names a config folder: its slas.yaml then wins over
    # the server's variable (a local experiment, a test with tight thresholds).
    config_root_given: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunSettings:
        env = os.environ if env is None else env
        base = cls()
        return cls(
            flow_retries=int(_env_number(env, "PRICECHECK_FLOW_RETRIES", base.flow_retries)),
            flow_retry_delay_s=_env_number(
                env, "PRICECHECK_FLOW_RETRY_DELAY_S", base.flow_retry_delay_s
            ),
            flow_timeout_s=_env_number(env, "PRICECHECK_FLOW_TIMEOUT_S", base.flow_timeout_s),
            scrape_retries=int(_env_number(env, "PRICECHECK_SCRAPE_RETRIES", base.scrape_retries)),
            scrape_retry_delay_s=_env_number(
                env, "PRICECHECK_SCRAPE_RETRY_DELAY_S", base.scrape_retry_delay_s
            ),
            state_dir=Path(env.get("PRICECHECK_STATE_DIR") or base.state_dir),
            config_root=Path(env.get("PRICECHECK_CONFIG_ROOT") or base.config_root),
            config_root_given=bool(env.get("PRICECHECK_CONFIG_ROOT")),
        )

    def slas(self) -> Slas:
        """The SLAs and thresholds of this run's stack as it provisioned them (the catalog's
        slas.yaml with the stack's `slaOverrides`, so an override moves the alert and the
        checks together), else automations/slas.yaml."""
        if not self.config_root_given:
            provisioned = provisioned_slas()
            if provisioned is not None:
                return provisioned
        return load_slas(self.config_root)


def provisioned_slas() -> Slas | None:
    """What the stack provisioned on the server PREFECT_API_URL names, or None if it holds no
    `pricechecktn_slas`: the thresholds from that variable, each deployment's SLA from its
    `pricechecktn_sla__*` variable (one per deployment, so any number fit; see
    `pricecheck_alerts.compile.slas`), listed a page at a time."""
    with get_client(sync_client=True) as client:
        document = client.read_variable_by_name(naming.SLAS_VARIABLE)
        if document is None:
            return None
        values: list[dict[str, Any]] = []
        while True:
            response = client.request(
                "POST",
                "/variables/filter",
                json={
                    "offset": len(values),
                    "limit": VARIABLES_PAGE,
                    "sort": "NAME_ASC",
                    # `like_` is a substring match: the prefix is checked below
                    "variables": {"name": {"like_": naming.SLA_VARIABLE_PREFIX}},
                },
            )
            response.raise_for_status()
            page = response.json()
            values += page
            if len(page) < VARIABLES_PAGE:
                break
    ours = [v["value"] for v in values if v["name"].startswith(naming.SLA_VARIABLE_PREFIX)]
    where = f"Prefect variables {naming.SLAS_VARIABLE} and {naming.SLA_VARIABLE_PREFIX}*"
    if not isinstance(document.value, dict):
        return validate(Slas, document.value, where)
    return validate(Slas, slas_from_variables(document.value, ours), where)


class Selectors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str
    name: str
    price: str
    review: str


class SiteConfig(BaseModel):
    """How to scrape one site: where its listing is, how to read it, how politely."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base_url: str
    listing_path: str
    page_param: str = "page"
    max_pages: int = Field(default=20, ge=1)
    timeout_s: float = Field(default=20, gt=0)
    rate_limit_s: float = Field(default=1.0, ge=0)
    price_format: str = "{int_fr},{millimes} DT"
    selectors: Selectors

    def page_url(self, page: int) -> str:
        return f"{self.base_url.rstrip('/')}{self.listing_path}?{self.page_param}={page}"


def load_sites(
    names: list[str] | None = None,
    url_overrides: Mapping[str, str] | None = None,
    rate_limit_s: float | None = None,
    path: Path = SITES_FILE,
    env: Mapping[str, str] | None = None,
) -> list[SiteConfig]:
    """The configured sites (all, or `names` in that order) with base URL overrides applied.

    URL overrides come from PRICECHECK_SITE_URLS (JSON) first, then `url_overrides`;
    PRICECHECK_SITE_TIMEOUT_S replaces every site's request timeout (tests, demo drills).
    """
    env = os.environ if env is None else env
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["sites"]
    overrides: dict[str, str] = {}
    if env.get("PRICECHECK_SITE_URLS"):
        overrides.update(json.loads(env["PRICECHECK_SITE_URLS"]))
    overrides.update(url_overrides or {})
    unknown = sorted(set(names or []) - set(raw))
    if unknown:
        raise ValueError(f"unknown site(s) {unknown}; configured: {sorted(raw)}")
    sites = []
    for name in names or list(raw):
        data = {**raw[name], "name": name}
        if name in overrides:
            data["base_url"] = overrides[name]
        if rate_limit_s is not None:
            data["rate_limit_s"] = rate_limit_s
        if env.get("PRICECHECK_SITE_TIMEOUT_S"):
            data["timeout_s"] = float(env["PRICECHECK_SITE_TIMEOUT_S"])
        sites.append(SiteConfig.model_validate(data))
    return sites
