"""`model_monitoring`: holdout accuracy, prediction shape and drift for the current model.

Runs on the latest saved run's reviews and scores against the stored baseline, so it can
be scheduled apart from the nightly pipeline (e.g. after a retrain, to confirm recovery).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.baseline import load_or_build
from flows.check_tasks import monitor_model
from flows.config import RunSettings
from flows.review_model import load_or_train
from flows.snapshot import load


@flow(name="model-monitoring")
def model_monitoring(holdout_label_noise: float = 0.0) -> dict[str, Any]:
    """`holdout_label_noise` simulates a degraded model (the demo's and tests' switch)."""
    settings = RunSettings.from_env()
    snapshot = load(settings.state_dir)
    model = load_or_train(settings.state_dir)
    baseline = load_or_build(settings.state_dir, model)
    scores = model.score([r for p in snapshot.products for r in p.reviews]).tolist()
    report = monitor_model(
        model,
        snapshot.products,
        scores,
        baseline,
        settings.slas().thresholds,
        None,
        holdout_label_noise,
    )
    return {
        "model_version": model.version,
        "holdout_accuracy": round(model.holdout_accuracy(holdout_label_noise), 4),
        "signals": report.signals,
    }
