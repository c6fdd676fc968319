"""Fetch and parse listing pages with httpx + selectolax.

Errors are left as what they are (httpx timeouts, connection errors) or raised with a
message that says what happened ("HTTP 403 Forbidden ..."), because the task-failure alert
classifies a failed scraping task by its final exception message and gives advice from it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import httpx
from selectolax.lexbor import LexborHTMLParser

from flows.config import SiteConfig

USER_AGENT = "PriceCheckTN-bot/1.0 (+https://pricecheck.tn/bot; price comparison)"


class ScrapeHTTPError(httpx.HTTPStatusError):
    """A non-2xx answer, with a message that starts `HTTP <code> <reason>`."""


class LayoutChangedError(RuntimeError):
    """The page loaded but no product matched the configured selectors."""


@dataclass(frozen=True)
class ScrapedProduct:
    site: str
    sku: str | None
    name: str | None
    price_text: str | None
    price_tnd: float | None
    url: str | None
    reviews: tuple[str, ...] = ()


@dataclass
class SiteScrape:
    """Everything scraped from one site in one run, with how long it took."""

    site: str
    products: list[ScrapedProduct] = field(default_factory=list)
    pages: int = 0
    duration_s: float = 0.0
    # Wall-clock (epoch seconds) of the first request and the end: when the site was busy.
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def seconds_per_item(self) -> float:
        return self.duration_s / len(self.products) if self.products else float("nan")


_NUMBER = re.compile(r"\d[\d\s.,\u00a0\u202f']*")


def parse_price(text: str | None) -> float | None:
    """A TND amount from site text, or None if there is none.

    Handles `1 299,000 DT`, `1.299,000 TND`, `1,299.000 TND`, `2 499 DT`. With a single
    separator, a comma is decimal (Tunisian style); a dot followed by exactly three digits
    after a thousands group is ambiguous and read as decimal too, since TND has 3 decimals.
    """
    if not text:
        return None
    match = _NUMBER.search(text)
    if not match:
        return None
    raw = re.sub(r"[\s\u00a0\u202f']", "", match.group()).rstrip(".,")
    if not raw:
        return None
    if "," in raw and "." in raw:
        decimal = "," if raw.rfind(",") > raw.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        raw = raw.replace(thousands, "").replace(decimal, ".")
    elif raw.count(",") == 1:
        raw = raw.replace(",", ".")
    elif raw.count(",") > 1:
        raw = raw.replace(",", "")
    elif raw.count(".") > 1:
        raw = raw.replace(".", "")
    try:
        return float(raw)
    except ValueError:
        return None


def _text(node: object) -> str | None:
    if node is None:
        return None
    value = node.text(separator=" ", strip=True)  # type: ignore[attr-defined]
    return " ".join(value.split()) or None


def parse_listing(site: SiteConfig, html: str) -> list[ScrapedProduct]:
    """The product cards on one listing page (empty when none match the selectors)."""
    tree = LexborHTMLParser(html)
    products = []
    for card in tree.css(site.selectors.item):
        price_text = _text(card.css_first(site.selectors.price))
        link = card.css_first("a[href]")
        products.append(
            ScrapedProduct(
                site=site.name,
                sku=card.attributes.get("data-sku"),
                name=_text(card.css_first(site.selectors.name)),
                price_text=price_text,
                price_tnd=parse_price(price_text),
                url=link.attributes.get("href") if link is not None else None,
                reviews=tuple(t for t in (_text(r) for r in card.css(site.selectors.review)) if t),
            )
        )
    return products


def fetch_page(client: httpx.Client, url: str) -> str:
    """GET one page; non-2xx raises ScrapeHTTPError('HTTP 403 Forbidden from <url>')."""
    response = client.get(url)
    if response.status_code >= 400:
        reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code)
        raise ScrapeHTTPError(
            f"HTTP {response.status_code} {reason} from {url}",
            request=response.request,
            response=response,
        )
    return response.text


def scrape(site: SiteConfig, client: httpx.Client | None = None) -> SiteScrape:
    """All listing pages of `site`, one request at a time with `rate_limit_s` between them.

    Stops at the first page with no products. No product at all on page 1 means the layout
    changed (or the selectors are wrong): that is an error, not an empty day.
    """
    own_client = client is None
    client = client or httpx.Client(
        timeout=site.timeout_s,
        headers={"User-Agent": USER_AGENT, "Accept-Language": "fr-TN,fr;q=0.9,ar;q=0.8"},
        follow_redirects=True,
    )
    result = SiteScrape(site.name, started_at=time.time())
    started = time.perf_counter()
    try:
        for page in range(1, site.max_pages + 1):
            if page > 1 and site.rate_limit_s:
                time.sleep(site.rate_limit_s)
            url = site.page_url(page)
            products = parse_listing(site, fetch_page(client, url))
            result.pages = page
            if not products:
                if page == 1:
                    raise LayoutChangedError(
                        f"{site.name}: 0 products parsed from {url} with selector "
                        f"{site.selectors.item!r}; the page layout may have changed"
                    )
                break
            result.products.extend(products)
    finally:
        if own_client:
            client.close()
        result.duration_s = time.perf_counter() - started
        result.finished_at = time.time()
    return result
