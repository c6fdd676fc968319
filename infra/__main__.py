"""Pulumi entry point: everything lives in `pricecheck_infra.program` so it can be tested."""

from pricecheck_infra.program import main

main()
