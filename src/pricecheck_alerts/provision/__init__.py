"""Provisioning: typed CRUD per Prefect resource kind, and `apply` for servers without Pulumi.

`KINDS` is the one registry of what can be provisioned; the Pulumi dynamic providers
(infra/) look kinds up here too, so both paths run the same code.
"""

from pricecheck_alerts.provision.automations import Automations
from pricecheck_alerts.provision.base import PrefectResource
from pricecheck_alerts.provision.blocks import BlockDocuments
from pricecheck_alerts.provision.concurrency_limits import ConcurrencyLimits
from pricecheck_alerts.provision.variables import Variables
from pricecheck_alerts.provision.work_pools import WorkPools

KINDS: dict[str, type[PrefectResource]] = {
    kind.kind: kind
    for kind in (WorkPools, BlockDocuments, Automations, Variables, ConcurrencyLimits)
}

__all__ = [
    "KINDS",
    "Automations",
    "BlockDocuments",
    "ConcurrencyLimits",
    "PrefectResource",
    "Variables",
    "WorkPools",
]
