"""Local stand-ins for the scraped shops: one loopback HTTP server per site.

Each serves the generator's listings as paginated HTML in that site's configured layout, and
can be switched to misbehave the way real shops do: answer 403 or 401, hang past the client
timeout, refuse connections (its listener is closed), answer slowly, or change its layout so
that nothing matches the selectors. Faults in the data itself (volume drop, duplicates...)
come from `flows.generator.DataFaults`.

Used in-process by the tests (`FixtureSites`), and as a process by the demo:
`python -m flows.fixtures_site --control-port 8700` then
`curl -X POST localhost:8700/sites/mytek -d '{"mode": "forbidden"}'`; `GET /` lists the
sites' URLs and `GET /health` answers like a healthy API (for `api_health_probe`).
"""

from __future__ import annotations

import argparse
import html
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from flows.config import SiteConfig, load_sites
from flows.generator import DataFaults, Listing, site_listings

Mode = Literal["ok", "forbidden", "unauthorized", "timeout", "refused", "slow", "layout"]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]
PER_PAGE = 50


def _format_price(price: float, pattern: str) -> str:
    whole, millimes = f"{price:.3f}".split(".")
    return pattern.format(
        int_fr=f"{int(whole):,}".replace(",", " "),
        int_en=f"{int(whole):,}",
        millimes=millimes,
    )


def _tag(selector: str, layout_changed: bool) -> tuple[str, str]:
    """`li.product-item` -> ("li", "product-item"); a changed layout renames the class."""
    tag, _, cls = selector.partition(".")
    return tag, (f"x-{cls}-v2" if layout_changed else cls)


def render_page(site: SiteConfig, listings: list[Listing], layout_changed: bool = False) -> str:
    """One listing page in the layout `site.selectors` expects, all text HTML-escaped."""
    item_tag, item_cls = _tag(site.selectors.item, layout_changed)
    name_tag, name_cls = _tag(site.selectors.name, layout_changed)
    price_tag, price_cls = _tag(site.selectors.price, layout_changed)
    review_tag, review_cls = _tag(site.selectors.review, layout_changed)
    cards = []
    for item in listings:
        name = html.escape(item.name)
        href = html.escape(item.url, quote=True)
        if name_tag == "a":
            name_html = f'<a class="{name_cls}" href="{href}">{name}</a>'
        else:
            name_html = f'<{name_tag} class="{name_cls}"><a href="{href}">{name}</a></{name_tag}>'
        price_html = (
            f'<{price_tag} class="{price_cls}">'
            f"{html.escape(_format_price(item.price_tnd, site.price_format))}</{price_tag}>"
            if item.price_tnd is not None
            else ""
        )
        reviews = "".join(
            f'<{review_tag} class="{review_cls}">{html.escape(r.text)}</{review_tag}>'
            for r in item.reviews
        )
        cards.append(
            f'<{item_tag} class="{item_cls}" data-sku="{html.escape(item.sku, quote=True)}">'
            f"{name_html}{price_html}<div>{reviews}</div></{item_tag}>"
        )
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(site.name)}</title></head><body>"
        f'<div class="products">{"".join(cards)}</div></body></html>'
    )


@dataclass
class SiteBehaviour:
    """What one fixture site serves and how it misbehaves."""

    mode: str = "ok"
    faults: DataFaults = field(default_factory=DataFaults)
    seed: int = 1
    products: int = 400
    reviews_per_product: float = 3.0
    delay_s: float = 0.5  # per request, in "slow" mode
    hang_s: float = 30.0  # in "timeout" mode: longer than any client timeout in use


class _SiteHandler(BaseHTTPRequestHandler):
    server: _SiteServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server.fixture
        behaviour = site.behaviour
        site.requests += 1
        if behaviour.mode == "forbidden":
            return self._send(403, "<h1>403 Forbidden</h1><p>Access denied (bot protection)</p>")
        if behaviour.mode == "unauthorized":
            return self._send(401, "<h1>401 Unauthorized</h1>")
        if behaviour.mode == "timeout":
            time.sleep(behaviour.hang_s)
        if behaviour.mode == "slow":
            time.sleep(behaviour.delay_s)
        parts = urlsplit(self.path)
        if parts.path != site.config.listing_path:
            return self._send(404, "<h1>404 Not Found</h1>")
        try:
            page = int(parse_qs(parts.query).get(site.config.page_param, ["1"])[0])
        except ValueError:
            page = 1
        listings = site.listings()
        chunk = listings[(page - 1) * PER_PAGE : page * PER_PAGE] if page >= 1 else []
        self._send(200, render_page(site.config, chunk, behaviour.mode == "layout"))

    def _send(self, status: int, body: str) -> None:
        data = body.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to answer


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fixture: FixtureSite


@dataclass
class FixtureSite:
    """One site's server; closing its listener is how "refused" is simulated."""

    config: SiteConfig
    behaviour: SiteBehaviour
    port: int = 0
    requests: int = 0
    _server: _SiteServer | None = None
    _cache: tuple[Any, list[Listing]] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def listings(self) -> list[Listing]:
        b = self.behaviour
        key = (b.faults.model_dump_json(), b.seed, b.products, b.reviews_per_product)
        if self._cache is None or self._cache[0] != key:
            self._cache = (
                key,
                site_listings(
                    self.config.name, b.seed, b.faults, b.products, b.reviews_per_product
                ),
            )
        return self._cache[1]

    def listen(self) -> None:
        if self._server is not None:
            return
        server = _SiteServer(("127.0.0.1", self.port), _SiteHandler)
        server.fixture = self
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def apply(self, mode: str | None = None, **changes: Any) -> None:
        if mode is not None:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
            self.behaviour.mode = mode
        for key, value in changes.items():
            if key == "faults" and not isinstance(value, DataFaults):
                value = DataFaults.model_validate(value or {})
            setattr(self.behaviour, key, value)
        if self.behaviour.mode == "refused":
            self.close()
        else:
            self.listen()


class FixtureSites:
    """The three configured sites, each on its own loopback port, all healthy to start."""

    def __init__(
        self,
        seed: int = 1,
        products: int = 400,
        reviews_per_product: float = 3.0,
        first_port: int = 0,
    ) -> None:
        """`first_port` gives the sites fixed consecutive ports (mytek, tunisianet, jumia),
        so a worker's PRICECHECK_SITE_URLS can be set before they start; 0: any free port."""
        self.sites = {
            cfg.name: FixtureSite(
                cfg,
                SiteBehaviour(
                    seed=seed, products=products, reviews_per_product=reviews_per_product
                ),
                port=first_port + i if first_port else 0,
            )
            for i, cfg in enumerate(load_sites(env={}))
        }

    def start(self) -> FixtureSites:
        for site in self.sites.values():
            site.listen()
        return self

    def stop(self) -> None:
        for site in self.sites.values():
            site.close()

    @property
    def urls(self) -> dict[str, str]:
        """Base URL per site, as the pipeline's `site_urls` parameter takes them."""
        return {name: site.url for name, site in self.sites.items()}

    def set(self, site: str, mode: str | None = None, **changes: Any) -> None:
        self.sites[site].apply(mode, **changes)

    def set_all(self, mode: str | None = None, **changes: Any) -> None:
        for name in self.sites:
            self.set(name, mode, **changes)

    def reset(self) -> None:
        self.set_all("ok", faults=DataFaults())

    def describe(self) -> dict[str, Any]:
        return {
            name: {
                "url": site.url,
                "mode": site.behaviour.mode,
                "faults": site.behaviour.faults.model_dump(),
                "requests": site.requests,
            }
            for name, site in self.sites.items()
        }


def _control_handler(sites: FixtureSites) -> type[BaseHTTPRequestHandler]:
    class Control(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            """`/health` stands in for the PriceCheckTN API (the probe's target in the demo);
            anything else describes the sites."""
            if self.path.rstrip("/") == "/health":
                return self._json(200, {"status": "ok"})
            self._json(200, sites.describe())

        def do_POST(self) -> None:
            """`POST /sites/<name>` or `/sites/all` with {"mode", "faults", "delay_s", ...}."""
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                target = self.path.rstrip("/").rsplit("/", 1)[-1]
                mode = body.pop("mode", None)
                allowed = {"faults", "delay_s", "hang_s", "seed", "products"}
                if set(body) - allowed:
                    raise ValueError(f"unknown keys {sorted(set(body) - allowed)}")
                if target == "all":
                    sites.set_all(mode, **body)
                elif target in sites.sites:
                    sites.set(target, mode, **body)
                else:
                    return self._json(404, {"error": f"no site {target!r}"})
            except (ValueError, TypeError) as exc:
                return self._json(400, {"error": str(exc)})
            self._json(200, sites.describe())

    return Control


def serve_control(sites: FixtureSites, port: int = 0) -> ThreadingHTTPServer:
    """The control API on a loopback port, served from a daemon thread."""
    control = ThreadingHTTPServer(("127.0.0.1", port), _control_handler(sites))
    threading.Thread(target=control.serve_forever, daemon=True).start()
    return control


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-port", type=int, default=8700)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--products", type=int, default=400)
    parser.add_argument("--reviews-per-product", type=float, default=3.0)
    parser.add_argument(
        "--first-site-port",
        type=int,
        default=0,
        help="mytek on this port, tunisianet on +1, jumia on +2 (default: any)",
    )
    args = parser.parse_args(argv)
    sites = FixtureSites(
        seed=args.seed,
        products=args.products,
        reviews_per_product=args.reviews_per_product,
        first_port=args.first_site_port,
    ).start()
    control = serve_control(sites, args.control_port)
    print(
        json.dumps({"control": f"http://127.0.0.1:{args.control_port}", **sites.urls}), flush=True
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        control.shutdown()
        sites.stop()


if __name__ == "__main__":
    main()
