"""The drift baseline: reference samples per feature, stored as JSON in the state folder.

If there is no baseline yet, one is built from the seeded healthy generator data scored by
the current model (never from the run being checked, which would hide the drift it is
meant to find). `retrain_model` replaces it after a retrain, accepting the new normal.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flows.fixtures.generator import SITE_STYLES, site_listings
from flows.review_model import FakeReviewModel
from flows.scraping import ScrapedProduct

BASELINE_FILE = "drift_baseline.json"
REFERENCE_SEED = 0
MAX_SAMPLE = 2000


def features(
    products: Sequence[ScrapedProduct], fake_scores: Sequence[float]
) -> dict[str, list[float]]:
    """The numeric features drift is measured on: inputs and the model's output.

    Only features whose distribution does not depend on which sites answered (name length
    does: each site has its own naming style), so a site outage is not reported as drift.
    """
    reviews = [len(r) for p in products for r in p.reviews]
    return {
        "price_tnd": [p.price_tnd for p in products if p.price_tnd is not None],
        "review_length": [float(n) for n in reviews],
        "fake_score": [float(s) for s in fake_scores],
    }


def _subsample(values: Sequence[float], seed: int) -> list[float]:
    if len(values) <= MAX_SAMPLE:
        return [round(float(v), 6) for v in values]
    return [round(float(v), 6) for v in random.Random(seed).sample(list(values), MAX_SAMPLE)]


@dataclass
class Baseline:
    features: dict[str, list[float]]
    created_at: float
    source: str

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / BASELINE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"features": self.features, "created_at": self.created_at, "source": self.source}
            )
        )
        tmp.replace(path)  # a concurrent run reads the old or the new baseline, never half
        return path

    @classmethod
    def from_features(cls, data: Mapping[str, Sequence[float]], source: str) -> Baseline:
        return cls(
            {k: _subsample(v, i) for i, (k, v) in enumerate(data.items())}, time.time(), source
        )


def reference_products() -> list[ScrapedProduct]:
    """Healthy products as the scraper would see them, from the reference seed."""
    return [
        ScrapedProduct(
            site,
            item.sku,
            item.name,
            None,
            item.price_tnd,
            item.url,
            tuple(r.text for r in item.reviews),
        )
        for site in SITE_STYLES
        for item in site_listings(site, REFERENCE_SEED)
    ]


def build_reference(model: FakeReviewModel) -> Baseline:
    products = reference_products()
    scores = model.score([r for p in products for r in p.reviews])
    return Baseline.from_features(
        features(products, np.asarray(scores).tolist()),
        f"generator seed {REFERENCE_SEED}, model v{model.version}",
    )


def load_or_build(state_dir: Path, model: FakeReviewModel) -> Baseline:
    path = state_dir / BASELINE_FILE
    if path.exists():
        data = json.loads(path.read_text())
        return Baseline(data["features"], data["created_at"], data["source"])
    baseline = build_reference(model)
    baseline.save(state_dir)
    return baseline
