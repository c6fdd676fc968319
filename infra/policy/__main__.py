"""Policy pack entry point; the rules are in `pricecheck_policy.rules` (unit-tested)."""

from pricecheck_policy.pack import policies
from pulumi_policy import PolicyPack

PolicyPack(name="pricechecktn-alerting", policies=policies())
