"""Compile each notification template once in the Prefect server, not once per use.

Every alert automation sends the same facts template (`compile.template`), and the
server's Jinja environments (`prefect.server.utilities.user_templates`) parse it every
time it validates a `send-notification` action (about nine times per alert, as automations
are loaded and actions are read back) and compile it again for every render. Profiled at
25 alerts/s, that was about 40 % of the server's time.

Both are pure functions of the template text: a parsed tree is only read by Prefect's
checks (loop limits, names in use), and a compiled `jinja2.Template` is immutable and safe
to render from any thread or task. So each environment's `parse` and `from_string` get a
bounded cache keyed by the text, installed when the server loads this package (the
`prefect.collections` entry point). Templates that are not ours are cached the same way;
with `maxsize` bounded, an unusual number of distinct templates only evicts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

MAXSIZE = 512
"""Distinct templates kept per environment: a stack has a few dozen."""


def _cached(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method(source)` memoized by `source`; any other call goes straight through."""
    by_source = functools.lru_cache(maxsize=MAXSIZE)(method)

    @functools.wraps(method)
    def call(source: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or not isinstance(source, str):
            return method(source, *args, **kwargs)
        return by_source(source)

    call.cache_info = by_source.cache_info  # type: ignore[attr-defined]
    return call


def install() -> bool:
    """Cache `parse` and `from_string` of Prefect's user-template environments (once per
    process); False when this Prefect has no such environments."""
    try:
        from prefect.server.utilities import user_templates
    except ImportError:  # a client-only install of Prefect
        return False
    for name in ("_template_environment", "_sync_template_environment"):
        environment = getattr(user_templates, name, None)
        if environment is None or getattr(environment, "_pricecheck_cached", False):
            continue
        # Instance attributes shadow the class's methods for this environment only.
        environment.parse = _cached(environment.parse)
        environment.from_string = _cached(environment.from_string)
        environment._pricecheck_cached = True
    return True
