"""Match the same product across sites with rapidfuzz, each match with a confidence.

Names are normalised (accents, units `Go`/`GB`, filler words, emoji and markup dropped),
candidates are blocked by brand, scored with token-set similarity, and the score is cut
when the capacities disagree or the prices are implausibly far apart: two names can read
alike and still be 8 GB vs 16 GB versions of a laptop.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from flows.scraping import ScrapedProduct

KNOWN_BRANDS = ("hp", "lenovo", "asus", "dell", "acer", "msi", "apple", "samsung")
_FILLER = {
    "pc",
    "portable",
    "laptop",
    "ordinateur",
    "notebook",
    "ram",
    "ssd",
    "core",
    "noir",
    "silver",
    "gris",
    "promo",
    "edition",
    "speciale",
}
# Matching parameters (how matching works), not alert thresholds (those are in slas.yaml).
MIN_ACCEPT_CONFIDENCE = 0.6
CAPACITY_MISMATCH_FACTOR = 0.5
PRICE_RATIO_LIMITS = (0.67, 1.5)
PRICE_MISMATCH_FACTOR = 0.6

_UNIT = re.compile(r"(\d+)\s*(go|gb|to|tb)\b")


def normalise(name: str) -> str:
    """Lower-case ASCII-ish words with units unified: `8 Go` and `8GB` both become `8gb`."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"<[^>]*>", " ", text)
    text = _UNIT.sub(lambda m: m.group(1) + ("gb" if m.group(2) in ("go", "gb") else "tb"), text)
    words = re.findall(r"[a-z0-9]+", text)
    return " ".join(w for w in words if w not in _FILLER)


def brand_of(name: str) -> str | None:
    words = set(normalise(name).split())
    return next((b for b in KNOWN_BRANDS if b in words), None)


def capacities(name: str) -> frozenset[str]:
    return frozenset(re.findall(r"\b\d+(?:gb|tb)\b", normalise(name)))


@dataclass(frozen=True)
class Match:
    left_site: str
    left_sku: str
    right_site: str
    right_sku: str
    similarity: float
    price_ratio: float | None
    confidence: float


def _price_ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def match_products(left: Sequence[ScrapedProduct], right: Sequence[ScrapedProduct]) -> list[Match]:
    """Best right-hand product per left-hand product, kept when confidence ≥ MIN_ACCEPT."""
    blocks: dict[str | None, list[ScrapedProduct]] = defaultdict(list)
    for product in right:
        if product.name:
            blocks[brand_of(product.name)].append(product)
    normalised = {id(p): normalise(p.name or "") for ps in blocks.values() for p in ps}
    matches = []
    for product in left:
        if not product.name:
            continue
        brand = brand_of(product.name)
        candidates = blocks.get(brand, []) if brand else []
        if not candidates:
            continue
        best = process.extractOne(
            normalise(product.name),
            [normalised[id(c)] for c in candidates],
            scorer=fuzz.token_set_ratio,
        )
        if best is None:
            continue
        _, score, index = best
        other = candidates[index]
        confidence = score / 100
        if capacities(product.name) != capacities(other.name or ""):
            confidence *= CAPACITY_MISMATCH_FACTOR
        ratio = _price_ratio(product.price_tnd, other.price_tnd)
        if ratio is not None and not PRICE_RATIO_LIMITS[0] <= ratio <= PRICE_RATIO_LIMITS[1]:
            confidence *= PRICE_MISMATCH_FACTOR
        if confidence >= MIN_ACCEPT_CONFIDENCE:
            matches.append(
                Match(
                    product.site,
                    product.sku or product.url or "",
                    other.site,
                    other.sku or other.url or "",
                    score / 100,
                    ratio,
                    round(confidence, 4),
                )
            )
    return matches


def match_across_sites(by_site: dict[str, list[ScrapedProduct]]) -> list[Match]:
    """Match the first site's products against every other site's."""
    names = list(by_site)
    if len(names) < 2:
        return []
    anchor = names[0]
    return [m for other in names[1:] for m in match_products(by_site[anchor], by_site[other])]
