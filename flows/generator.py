"""Seeded, deterministic shop data with fault injection switches, for tests and the demo.

One catalogue of laptops/phones is sold by every site under that site's own naming style
(and some hostile text: quotes, newlines, emoji, Arabic, markup characters), at slightly
different prices, with reviews. The fixture sites serve exactly this data, so a test can
switch on one fault and know which check must fire and which must stay quiet.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from flows.review_corpus import Review, make_reviews

# How strong each injected fault is: sized to cross the check thresholds clearly, not tuned
# to land just on them.
VOLUME_DROP_SHARE = 0.3
MISSING_PRICE_SHARE = 0.25
DUPLICATE_SHARE = 0.25
PRICE_DRIFT_FACTOR = 1.6
HEALTHY_FAKE_SHARE = 0.2
SKEWED_FAKE_SHARE = 0.97


class DataFaults(BaseModel):
    """Faults in what the sites serve (the fixture sites apply them); all off is healthy."""

    model_config = ConfigDict(extra="forbid")

    volume_drop: bool = False
    missing_values: bool = False
    duplicates: bool = False
    price_drift: bool = False
    prediction_skew: bool = False


class RunFaults(BaseModel):
    """Faults in the pipeline's own work, passed as its `faults` parameter (JSON-able)."""

    model_config = ConfigDict(extra="forbid")

    slow_prediction_s: float = Field(default=0.0, ge=0)
    holdout_label_noise: float = Field(default=0.0, ge=0, le=1)


@dataclass(frozen=True)
class CatalogItem:
    key: str
    brand: str
    model: str
    cpu: str
    ram_gb: int
    storage_gb: int
    base_price: float


@dataclass(frozen=True)
class Listing:
    """A product card as one site shows it (price None: the site shows no price)."""

    site: str
    sku: str
    name: str
    price_tnd: float | None
    url: str
    reviews: tuple[Review, ...]


_BRANDS = {
    "HP": ["15s-fq5", "Victus 15-fb", "ProBook 450 G", "Pavilion 14-dv"],
    "Lenovo": ["IdeaPad 3 15IAU", "ThinkPad E14 Gen", "Legion 5 15ACH", "V15 G"],
    "Asus": ["VivoBook 15 X1504", "TUF Gaming F15 FX5", "ZenBook 14 UX34"],
    "Dell": ["Inspiron 3520", "Vostro 3530", "Latitude 5440"],
    "Acer": ["Aspire 3 A315-", "Nitro 5 AN515-", "Swift 3 SF314-"],
    "MSI": ["Modern 15 B12M", "Katana 15 B13V", "Thin GF63 12U"],
    "Apple": ["MacBook Air M2 ", "MacBook Pro M3 "],
    "Samsung": ["Galaxy Book3 ", "Galaxy Book4 "],
}
_CPUS = ["i3", "i5", "i7", "Ryzen 5", "Ryzen 7", "Celeron"]
_RAM = [4, 8, 16, 32]
_STORAGE = [256, 512, 1024]
_HOSTILE = [
    ' "Édition spéciale" ',
    " l'offre\nlimitée ",
    " 🔥 Promo 🔥 ",
    " حاسوب محمول ",
    " <b>&amp; garantie</b> ",
    " \u200bnoir\u00a0",
]
SITE_STYLES = ("mytek", "tunisianet", "jumia")


def catalog(seed: int, size: int) -> list[CatalogItem]:
    """`size` distinct products; the same seed always gives the same catalogue."""
    rng = random.Random(seed)
    items: list[CatalogItem] = []
    seen: set[tuple[str, str, int, int]] = set()
    while len(items) < size:
        brand = rng.choice(list(_BRANDS))
        model = f"{rng.choice(_BRANDS[brand])}{rng.randint(10, 999)}"
        ram, storage = rng.choice(_RAM), rng.choice(_STORAGE)
        if (brand, model, ram, storage) in seen:
            continue
        seen.add((brand, model, ram, storage))
        price = round(rng.uniform(900, 2500) + ram * 40 + storage * 0.8, 3)
        items.append(
            CatalogItem(f"P{len(items):05d}", brand, model, rng.choice(_CPUS), ram, storage, price)
        )
    return items


def _capacity(gb: int, unit_gb: str, unit_tb: str) -> str:
    return f"1 {unit_tb}" if gb == 1024 else f"{gb} {unit_gb}"


def site_name(style: str, item: CatalogItem, rng: random.Random) -> str:
    """How a given site writes the product's name."""
    if style == "mytek":
        name = (
            f"PC Portable {item.brand} {item.model} {item.cpu} {item.ram_gb}Go "
            f"{_capacity(item.storage_gb, 'Go', 'To')} SSD"
        )
    elif style == "tunisianet":
        name = (
            f"Pc portable {item.brand.upper()} {item.model} / {item.cpu} / {item.ram_gb} Go / "
            f"{_capacity(item.storage_gb, 'Go', 'To')} SSD"
        )
    else:
        name = (
            f"{item.brand} {item.model} Laptop - Core {item.cpu} - {item.ram_gb}GB RAM - "
            f"{_capacity(item.storage_gb, 'GB', 'TB')} SSD - {rng.choice(['Silver', 'Noir'])}"
        )
    if rng.random() < 0.08:
        name += rng.choice(_HOSTILE)
    return name


def site_listings(
    style: str,
    seed: int,
    faults: DataFaults | None = None,
    products: int = 400,
    reviews_per_product: float = 3.0,
) -> list[Listing]:
    """What site `style` lists today: about `products` cards, with reviews, faults applied."""
    faults = faults or DataFaults()
    items = catalog(seed, int(products * 1.25))
    rng = random.Random(f"{seed}:{style}")
    carried = rng.sample(items, products)
    if faults.volume_drop:
        carried = carried[: int(len(carried) * VOLUME_DROP_SHARE)]
    fake_share = SKEWED_FAKE_SHARE if faults.prediction_skew else HEALTHY_FAKE_SHARE
    listings = []
    for item in carried:
        price: float | None = round(item.base_price * rng.uniform(0.95, 1.05), 3)
        if faults.price_drift:
            price = round(price * PRICE_DRIFT_FACTOR, 3)
        if faults.missing_values and rng.random() < MISSING_PRICE_SHARE:
            price = None
        n_reviews = max(0, round(rng.gauss(reviews_per_product, 1.0)))
        listings.append(
            Listing(
                site=style,
                sku=f"{style[:2].upper()}-{item.key}",
                name=site_name(style, item, rng),
                price_tnd=price,
                url=f"/produit/{item.key.lower()}-{style}.html",
                reviews=tuple(make_reviews(rng, n_reviews, fake_share)),
            )
        )
    if faults.duplicates:
        listings += rng.sample(listings, int(len(listings) * DUPLICATE_SHARE))
    return listings
