"""The latest run's products and review scores, kept so checks can be re-run on their own.

`data_validation` and `model_monitoring` read this when run as separate deployments, and
`retrain_model` uses it as the new drift baseline. One JSON file, replaced atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from flows.scraping import ScrapedProduct

SNAPSHOT_FILE = "latest_snapshot.json"


@dataclass
class Snapshot:
    products: list[ScrapedProduct]
    fake_scores: list[float]
    created_at: float

    def by_site(self) -> dict[str, list[ScrapedProduct]]:
        grouped: dict[str, list[ScrapedProduct]] = {}
        for product in self.products:
            grouped.setdefault(product.site, []).append(product)
        return grouped


def save(state_dir: Path, products: Sequence[ScrapedProduct], scores: Sequence[float]) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SNAPSHOT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "created_at": time.time(),
                "products": [asdict(p) for p in products],
                "fake_scores": [round(float(s), 6) for s in scores],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    tmp.replace(path)
    return path


def load(state_dir: Path) -> Snapshot:
    path = state_dir / SNAPSHOT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no pipeline run has saved a snapshot yet")
    data = json.loads(path.read_text(encoding="utf-8"))
    products = [
        ScrapedProduct(**{**p, "reviews": tuple(p.get("reviews") or ())}) for p in data["products"]
    ]
    return Snapshot(products, data["fake_scores"], data["created_at"])
