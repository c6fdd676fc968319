"""PriceCheckTN alerting-as-code."""
