"""The PriceCheckTN pipeline: scrape Tunisian e-commerce sites, match products, score reviews.

Every flow checks itself and reports what it found as `pricechecktn.<area>.<signal>` events
(`pricecheck_alerts.signals`); the Prefect server's automations turn those into alerts.
"""
