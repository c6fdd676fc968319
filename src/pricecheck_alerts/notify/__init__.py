"""Delivery of alerts: the facts an automation renders, one module per destination, and the
transport they share. This package is what the Prefect server loads (the
`prefect.collections` entry point) to run the alert automations' notification blocks."""

from pricecheck_alerts.notify import template_cache
from pricecheck_alerts.notify.email import EmailAlert
from pricecheck_alerts.notify.pagerduty import PagerDutyAlert
from pricecheck_alerts.notify.slack import SlackAlert

ALERT_BLOCKS = (SlackAlert, PagerDutyAlert, EmailAlert)
"""Every notification block type this package provides."""

template_cache.install()  # in the server: each alert template is compiled once

__all__ = ["ALERT_BLOCKS", "EmailAlert", "PagerDutyAlert", "SlackAlert"]
