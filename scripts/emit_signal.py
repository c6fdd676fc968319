"""Emit a pipeline signal by hand, to check a stack's routing end to end (e.g. in staging).

    PREFECT_API_URL=... .venv/bin/python scripts/emit_signal.py \
        pricechecktn.model.drift_detected --check drift:price --fact psi=0.31 --fact feature=price

The event goes through the server's automations exactly like one a pipeline check emits,
so the alert that arrives is the one the on-call would get.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from pricecheck_alerts.naming import EVENT_NAME
from pricecheck_alerts.signals import send_signal


def parse_fact(text: str) -> tuple[str, Any]:
    """`key=value`; the value is read as JSON when it parses (numbers, booleans)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("event", help="pricechecktn.<area>.<signal>")
    parser.add_argument("--check", default="manual", help="name of the emitting check")
    parser.add_argument("--fact", type=parse_fact, action="append", default=[])
    args = parser.parse_args(argv)
    if not re.match(EVENT_NAME, args.event):
        print(f"error: {args.event!r} is not pricechecktn.<area>.<signal>", file=sys.stderr)
        return 2
    send_signal(args.event, args.check, dict(args.fact))
    print(f"emitted {args.event} ({len(args.fact)} facts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
