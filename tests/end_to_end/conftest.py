"""The `local` stack pointed at this session's receivers, as a user would with PRICECHECK_*
variables: shared by the end-to-end modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.local_server import LocalPrefectServer
from devtools.receivers import Receivers
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources
from pricecheck_alerts.config.loader import Catalog, load_catalog
from pricecheck_alerts.config.stacks import load_stack

ROUTING_KEY = "e2e0routing0key00000000000000000"


@pytest.fixture(scope="module")
def environ(receivers: Receivers, prefect_server: LocalPrefectServer) -> dict[str, str]:
    return {
        **receivers.urls(),
        "PRICECHECK_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PRICECHECK_PREFECT_UI_URL": prefect_server.url,
    }


@pytest.fixture(scope="module")
def stack(project_root: Path, environ: dict[str, str]) -> tuple[Catalog, StackResources]:
    catalog = load_catalog(project_root)
    return catalog, compile_stack(catalog, load_stack(project_root, "local", environ))
