"""Seeded French / Arabic / English review text, genuine and fake, for training and test data.

Fake reviews here look like the real thing on Tunisian marketplaces: generic superlatives,
pressure to buy, contact details, repeated punctuation, no detail about the product. Genuine
reviews talk about specifics (battery, delivery, screen) and are mixed in tone. Templates
overlap on purpose and a share of labels is flipped, so the model cannot reach 100 %.

`python -m flows.review_corpus` rewrites the labelled sample shipped in `flows/data/`.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

SAMPLE_PATH = Path(__file__).parent / "data" / "reviews_labelled.csv"
SAMPLE_SEED = 20261126
SAMPLE_SIZE = 600
SAMPLE_LABEL_NOISE = 0.05

_GENUINE = {
    "fr": [
        "La batterie tient environ {h} heures, correct pour le prix.",
        "Livraison en {d} jours à {city}, le colis était bien emballé.",
        "L'écran est un peu sombre mais le clavier est agréable.",
        "Bon rapport qualité prix, le ventilateur chauffe un peu en jeu.",
        "Reçu avec un petit défaut sur la coque, le SAV a répondu en {d} jours.",
        "Je l'utilise pour le travail depuis {m} mois, aucun souci sauf le chargeur.",
        "Un peu lourd à transporter, sinon performant pour la bureautique.",
        "Le prix a baissé de {p} DT une semaine après mon achat, dommage.",
    ],
    "ar": [
        "البطارية تدوم حوالي {h} ساعات، مقبول بالنسبة للسعر.",
        "وصل الطرد بعد {d} أيام إلى {city}، التغليف جيد.",
        "الشاشة متوسطة لكن لوحة المفاتيح مريحة.",
        "استعملته {m} أشهر في العمل، لا مشاكل باستثناء الشاحن.",
        "السعر معقول، الجهاز يسخن قليلا عند الألعاب.",
    ],
    "en": [
        "Battery lasts about {h} hours, fine for the price.",
        "Delivered to {city} in {d} days, well packed.",
        "Screen is a bit dim but the keyboard feels good.",
        "Used it for work for {m} months, only the charger is flimsy.",
        "Fan gets loud under load, otherwise a solid machine.",
        "Price dropped by {p} TND a week after I bought it, annoying.",
    ],
}

_FAKE = {
    "fr": [
        "Meilleur produit du monde!!! Je recommande à 100% !!!",
        "Parfait parfait parfait, achetez maintenant avant rupture!!!",
        "Top top top 5 étoiles, vendeur génial, contactez le {phone}",
        "Incroyable!!! Prix imbattable, commandez vite sur WhatsApp {phone}",
        "Excellent excellent, le meilleur achat de ma vie!!!",
    ],
    "ar": [
        "أفضل منتج في العالم!!! أنصح به بشدة 100%",
        "ممتاز ممتاز ممتاز، اشتري الآن قبل نفاذ الكمية!!!",
        "خمس نجوم، بائع رائع، اتصل على {phone}",
        "رائع جدا!!! أحسن سعر، اطلب الآن عبر واتساب {phone}",
    ],
    "en": [
        "Best product ever!!! 100% recommend, buy now!!!",
        "Perfect perfect perfect, five stars, amazing seller!!!",
        "AMAZING deal, order now on WhatsApp {phone} !!!",
        "Excellent excellent, best purchase of my life!!!",
    ],
}

_CITIES = ["Tunis", "Sfax", "Sousse", "Bizerte", "Gabès", "Nabeul", "Monastir"]
_LANG_WEIGHTS = {"fr": 0.5, "ar": 0.3, "en": 0.2}


@dataclass(frozen=True)
class Review:
    """One review as a site shows it; `is_fake` is only known for labelled data."""

    text: str
    lang: str
    is_fake: bool


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        h=rng.randint(3, 11),
        d=rng.randint(1, 9),
        m=rng.randint(1, 18),
        p=rng.choice([20, 50, 80, 120]),
        city=rng.choice(_CITIES),
        phone=f"{rng.choice([2, 5, 9])}{rng.randint(1000000, 9999999)}",
    )


def make_review(rng: random.Random, fake: bool) -> Review:
    """A review in a random language; genuine ones sometimes get a short second sentence."""
    lang = rng.choices(list(_LANG_WEIGHTS), weights=list(_LANG_WEIGHTS.values()))[0]
    bank = _FAKE if fake else _GENUINE
    text = _fill(rng.choice(bank[lang]), rng)
    if not fake and rng.random() < 0.4:
        text += " " + _fill(rng.choice(_GENUINE[lang]), rng)
    if fake and rng.random() < 0.3:
        text += " " + rng.choice(["😍😍", "👍", "🔥🔥🔥", ""])
    if rng.random() < 0.1:
        # Overlap: a short enthusiastic genuine review, or a fake one that sounds calm.
        text = _fill(rng.choice(_GENUINE[lang] if fake else _FAKE[lang]), rng)
    return Review(text=text, lang=lang, is_fake=fake)


def make_reviews(rng: random.Random, n: int, fake_share: float) -> list[Review]:
    return [make_review(rng, rng.random() < fake_share) for _ in range(n)]


def labelled_sample(
    seed: int = SAMPLE_SEED, size: int = SAMPLE_SIZE, label_noise: float = SAMPLE_LABEL_NOISE
) -> list[Review]:
    """The labelled training sample: balanced classes, a few labels flipped like real data."""
    rng = random.Random(seed)
    rows = make_reviews(rng, size, fake_share=0.5)
    return [
        Review(r.text, r.lang, (not r.is_fake) if rng.random() < label_noise else r.is_fake)
        for r in rows
    ]


def write_sample(path: Path = SAMPLE_PATH) -> int:
    rows = labelled_sample()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "lang", "is_fake"])
        for row in rows:
            writer.writerow([row.text, row.lang, int(row.is_fake)])
    return len(rows)


def read_sample(path: Path = SAMPLE_PATH) -> list[Review]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Review(row["text"], row["lang"], row["is_fake"] == "1")
            for row in csv.DictReader(handle)
        ]


if __name__ == "__main__":
    print(f"wrote {write_sample()} labelled reviews to {SAMPLE_PATH}")
