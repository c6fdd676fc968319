"""Send a pipeline signal by hand: the same as `pricecheck-alerts emit` (kept for muscle
memory and old runbooks).

    PREFECT_API_URL=... .venv/bin/python scripts/emit_signal.py \
        pricechecktn.model.drift_detected --stack staging --check drift:price --fact observed=0.31
"""

from __future__ import annotations

import sys

from pricecheck_alerts.cli import main as cli


def main(argv: list[str] | None = None) -> int:
    return cli(["emit", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
