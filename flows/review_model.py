"""The fake-review model: TF-IDF character n-grams + logistic regression.

Character n-grams work across French, Arabic and English without a tokenizer per language,
and the model trains in well under a second on the shipped sample, so a run can retrain it
instead of downloading anything. The trained model is cached (pickle) in the state folder,
which is git-ignored.
"""

from __future__ import annotations

import pickle
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from flows.review_corpus import Review, read_sample

MODEL_FILE = "fake_review_model.pkl"
HOLDOUT_SHARE = 0.25


@dataclass
class FakeReviewModel:
    """A trained classifier plus the labelled holdout it is judged on."""

    pipeline: Pipeline
    holdout_texts: list[str]
    holdout_labels: list[int]
    baseline_accuracy: float
    trained_at: float = field(default_factory=time.time)
    version: int = 1

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """`fake_score` per text: the probability that it is a fake review."""
        if not texts:
            return np.zeros(0)
        return self.pipeline.predict_proba(list(texts))[:, 1]

    def accuracy(self, texts: Sequence[str], labels: Sequence[int]) -> float:
        predicted = (self.score(texts) >= 0.5).astype(int)
        return float(np.mean(predicted == np.asarray(labels)))

    def holdout_accuracy(self, label_noise: float = 0.0, seed: int = 0) -> float:
        """Accuracy on the holdout; `label_noise` corrupts labels to simulate a degraded model."""
        labels = list(self.holdout_labels)
        if label_noise > 0:
            rng = random.Random(seed)
            labels = [1 - y if rng.random() < label_noise else y for y in labels]
        return self.accuracy(self.holdout_texts, labels)


def train(reviews: Sequence[Review], seed: int = 0, version: int = 1) -> FakeReviewModel:
    """Train on a stratified split of `reviews`; the rest is the labelled holdout."""
    texts = [r.text for r in reviews]
    labels = [int(r.is_fake) for r in reviews]
    x_train, x_hold, y_train, y_hold = train_test_split(
        texts, labels, test_size=HOLDOUT_SHARE, random_state=seed, stratify=labels
    )
    pipeline = Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True
                ),
            ),
            ("clf", LogisticRegression(C=8.0, max_iter=2000)),
        ]
    )
    pipeline.fit(x_train, y_train)
    model = FakeReviewModel(pipeline, list(x_hold), list(y_hold), 0.0, version=version)
    model.baseline_accuracy = model.accuracy(x_hold, y_hold)
    return model


def save(model: FakeReviewModel, state_dir: Path) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / MODEL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(model))
    tmp.replace(path)
    return path


def load_or_train(state_dir: Path) -> FakeReviewModel:
    """The cached model, or a freshly trained one (then cached) when there is none yet."""
    path = state_dir / MODEL_FILE
    if path.exists():
        try:
            loaded = pickle.loads(path.read_bytes())
            if isinstance(loaded, FakeReviewModel):
                return loaded
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            pass  # a cache written by other code: retrain rather than fail the run
    model = train(read_sample())
    save(model, state_dir)
    return model
