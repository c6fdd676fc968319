"""`data_validation`: re-run the volume and quality checks on the latest saved run.

The pipeline runs the same checks inline; this flow exists so the checks can be run (or
re-run after a fix to the validators) on their own, on a schedule or by hand.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.check_tasks import validate_data
from flows.config import RunSettings
from flows.snapshot import load


@flow(name="data-validation")
def data_validation() -> dict[str, Any]:
    settings = RunSettings.from_env()
    snapshot = load(settings.state_dir)
    report = validate_data(snapshot.by_site(), settings.slas().thresholds)
    return {"products": len(snapshot.products), "signals": report.signals}
