"""`retrain_model`: retrain the fake-review model and accept the current data as baseline.

Started by a deployment trigger on `pricechecktn.model.drift_detected` (prefect.yaml). It
refuses to replace the model with one that scores worse on its own holdout than the
accuracy floor, since a retrain that makes things worse should page, not ship.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.baseline import Baseline, build_reference, features
from flows.config import RunSettings
from flows.review_corpus import read_sample
from flows.review_model import load_or_train, save, train
from flows.snapshot import load


@flow(name="retrain-model")
def retrain_model(reason: str = "manual") -> dict[str, Any]:
    logger = get_run_logger()
    settings = RunSettings.from_env()
    t = settings.slas().thresholds.model
    current = load_or_train(settings.state_dir)
    candidate = train(read_sample(), seed=current.version, version=current.version + 1)
    floor = t.min_accuracy - t.max_accuracy_drop
    if candidate.baseline_accuracy < floor:
        raise RuntimeError(
            f"retrained model v{candidate.version} holdout accuracy "
            f"{candidate.baseline_accuracy:.3f} is below {floor:.3f}; keeping v{current.version}"
        )
    save(candidate, settings.state_dir)
    try:
        snapshot = load(settings.state_dir)
        texts = [r for p in snapshot.products for r in p.reviews]
        baseline = Baseline.from_features(
            features(snapshot.products, candidate.score(texts).tolist()),
            f"latest snapshot, model v{candidate.version}",
        )
    except FileNotFoundError:
        baseline = build_reference(candidate)
    baseline.save(settings.state_dir)
    logger.info(
        "retrained (%s): v%d accuracy %.3f; baseline from %s",
        reason,
        candidate.version,
        candidate.baseline_accuracy,
        baseline.source,
    )
    create_markdown_artifact(
        key="pricechecktn-retrain",
        markdown=(
            f"# Fake-review model retrained\n\nReason: {reason}\n\n"
            f"| | version | holdout accuracy |\n|---|---|---|\n"
            f"| before | {current.version} | {current.baseline_accuracy:.3f} |\n"
            f"| after | {candidate.version} | {candidate.baseline_accuracy:.3f} |\n\n"
            f"Drift baseline now: {baseline.source}\n"
        ),
    )
    return {
        "reason": reason,
        "version": candidate.version,
        "holdout_accuracy": round(candidate.baseline_accuracy, 4),
        "baseline": baseline.source,
    }
