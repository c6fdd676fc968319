"""`pricecheck-alerts`: check, render and apply the alerting config of a stack."""

from __future__ import annotations

import argparse
import base64
import difflib
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from pricecheck_alerts import naming
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources
from pricecheck_alerts.config.loader import (
    Catalog,
    ConfigError,
    available_stacks,
    find_project_root,
    load_catalog,
)
from pricecheck_alerts.config.models import Channel, PipelineEventTrigger, Rule, Scope
from pricecheck_alerts.config.stacks import (
    NAMESPACE,
    PREFECT_CREDENTIAL_ENV,
    SECRET_ENV,
    StackConfig,
    load_stack,
    needed_secrets,
    resolve_secrets,
    secret_sources,
)
from pricecheck_alerts.naming import EVENT_NAME


def compile_for(root: Path, stack: str) -> tuple[Catalog, StackResources]:
    """Load and compile; every validation problem surfaces as one ConfigError."""
    catalog = load_catalog(root)
    return catalog, compile_stack(catalog, load_stack(root, stack, os.environ))


MAX_PROBLEMS_SHOWN = 100
"""A broken file can have thousands of problems; the first ones say what to fix."""


def print_problems(problems: list[str]) -> None:
    shown = problems[:MAX_PROBLEMS_SHOWN]
    lines = [f"error: {p}" for p in shown]
    if len(problems) > len(shown):
        lines.append(f"error: ... and {len(problems) - len(shown)} more problems")
    print("\n".join(lines), file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    root = find_project_root(args.root)
    stacks = [args.stack] if args.stack else available_stacks(root)
    problems: dict[str, None] = {}  # ordered, each problem once however many stacks share it
    catalog: Catalog | None = None
    try:
        catalog = load_catalog(root)  # once: the same for every stack
    except ConfigError as exc:
        problems.update(dict.fromkeys(exc.problems))
    for stack in stacks:
        try:
            settings = load_stack(root, stack, os.environ)
            if catalog is None:
                continue
            resources = compile_stack(catalog, settings)
        except ConfigError as exc:
            problems.update(dict.fromkeys(exc.problems))
            continue
        print(
            f"{stack}: {len(catalog.rules)} rules -> {len(resources.automations)} "
            f"automations, {len(resources.blocks)} blocks, "
            f"{len(resources.work_pools)} work pool"
        )
        if args.stack and not args.skip_secrets:
            problems.update(dict.fromkeys(_secret_report(root, stack, resources)))
    if problems:
        print_problems(list(problems))
        return 1
    return 0


def _secret_report(root: Path, stack: str, resources: StackResources) -> list[str]:
    """Print where each secret the stack needs comes from; a problem per missing one."""
    settings = load_stack(root, stack, os.environ)
    block_secrets = {key for block in resources.blocks for key in block.secret_inputs.values()}
    sources = secret_sources(root, stack, needed_secrets(settings, block_secrets), os.environ)
    for key, source in sources.items():
        print(f"  secret {key}: {source or 'MISSING'}")
    return [
        f"infra/Pulumi.{stack}.yaml: secret '{key}' is not set: "
        f"`pulumi config set --secret {NAMESPACE}:{key} ...` for pulumi up"
        + (f", or ${env_var} for apply" if (env_var := _secret_env(key)) else "")
        + (
            " (or prefectApiKey / $PREFECT_API_KEY for Prefect Cloud)"
            if key in PREFECT_CREDENTIAL_ENV
            else ""
        )
        + " (--skip-secrets to check without them)"
        for key, source in sources.items()
        if source is None
    ]


def _secret_env(key: str) -> str | None:
    return SECRET_ENV.get(key) or PREFECT_CREDENTIAL_ENV.get(key)


def cmd_render(args: argparse.Namespace) -> int:
    root = find_project_root(args.root)
    _, resources = compile_for(root, args.stack)
    document = resources.to_document()
    if args.format == "json":
        print(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=100), end="")
    return 0


def _same_api(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


AUTH_STRING_VAR = "PREFECT_API_AUTH_STRING"
API_KEY_VAR = "PREFECT_API_KEY"


def credentials_header() -> tuple[str | None, dict[str, str]]:
    """Which credential Prefect's settings hold (read from the environment or the active
    profile) and the Authorization header its clients would send with it: the auth string
    as basic auth first, else the API key as a bearer token, as Prefect's own client
    chooses. The value itself never leaves this function except in the header."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    if api.auth_string is not None and (auth := api.auth_string.get_secret_value()):
        token = base64.b64encode(auth.encode("utf-8")).decode("ascii")
        return AUTH_STRING_VAR, {"Authorization": f"Basic {token}"}
    if api.key is not None and (key := api.key.get_secret_value()):
        return API_KEY_VAR, {"Authorization": f"Bearer {key}"}
    return None, {}


def server_problem(api_url: str) -> str | None:
    """One line saying why `api_url` is not a Prefect API this process can use, or None.

    Two requests: `/health` (reachability, and that the URL ends at the API), then `/hello`
    with this process's credentials. A server with basic auth answers `/health` to anyone
    (for load-balancer probes), so only an authenticated route tells whether the
    credentials are missing or wrong; a GET, which CSRF protection lets through."""
    base = api_url.rstrip("/")
    try:
        health = httpx.get(f"{base}/health", timeout=5)
        if health.status_code == 404:
            hint = "" if base.endswith("/api") else f" (try {base}/api)"
            return f"{api_url} has no Prefect API here: the URL must end with /api{hint}"
        used, headers = credentials_header()
        # A gateway in front of the server may guard /health too: the credential check
        # below then speaks for both.
        hello = httpx.get(f"{base}/hello", headers=headers, timeout=5)
    except httpx.ConnectError:
        return f"cannot reach the Prefect API at {api_url} (connection refused): is it running?"
    except httpx.HTTPError as exc:
        return f"cannot reach the Prefect API at {api_url}: {type(exc).__name__}"
    if hello.status_code in (401, 403):
        refused = f"{api_url} refused the request (HTTP {hello.status_code})"
        if used == AUTH_STRING_VAR:
            return (
                f"{refused} with the {AUTH_STRING_VAR} this process has: set it to the "
                "server's PREFECT_SERVER_API_AUTH_STRING (user:password)"
            )
        if used == API_KEY_VAR:
            return f"{refused} with the {API_KEY_VAR} this process has: set a valid key"
        return (
            f"{refused}: it needs credentials; set {AUTH_STRING_VAR} (self-hosted server, "
            f"user:password) or {API_KEY_VAR} (Prefect Cloud)"
        )
    if health.status_code >= 300:
        return f"{api_url} answered HTTP {health.status_code} to /health"
    return None


def cmd_apply(args: argparse.Namespace) -> int:
    from pricecheck_alerts.provision.apply import apply_stack

    root = find_project_root(args.root)
    if args.stack != "local" and not args.allow_non_local:
        print(
            f"error: use `pulumi up` for stack '{args.stack}' (see docs/deploy.md); "
            "pass --allow-non-local to apply it directly anyway",
            file=sys.stderr,
        )
        return 2
    # Everything is validated before anything is written.
    _, resources = compile_for(root, args.stack)
    secrets = resolve_secrets(root, args.stack, os.environ)
    expected = str(load_stack(root, args.stack, os.environ).prefect_api_url)
    target = args.server or os.environ.get("PREFECT_API_URL")
    if not target:
        print(
            f"error: PREFECT_API_URL is not set: apply writes only to the server the stack "
            f"names ({expected}); set PREFECT_API_URL or pass --server URL",
            file=sys.stderr,
        )
        return 2
    if not args.server and not _same_api(target, expected):
        print(
            f"error: PREFECT_API_URL ({target}) is not stack '{args.stack}''s prefectApiUrl "
            f"({expected}); pass --server {target} to apply this stack there anyway",
            file=sys.stderr,
        )
        return 2
    problem = server_problem(target)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(f"apply --dry-run: stack {args.stack} on {target} (nothing is written)")
        report = apply_stack(resources, secrets, target, dry_run=True)
        print("\n".join(change.line() for change in report.changes) or "no change")
        print(f"{report.writes} writes planned")
    else:
        print(f"apply: stack {args.stack} -> {target}")
        report = apply_stack(
            resources, secrets, target, on_change=lambda change: print(change.line(), flush=True)
        )
        print("\n".join(report.lines()))
        print(f"{report.writes} writes")
    if report.restarted_windows:
        done = "would restart" if args.dry_run else "restarted"
        print(
            f"note: updating these {done} their open windows (a failure waiting for its "
            "recovery, a run inside its SLA window): " + ", ".join(report.restarted_windows)
        )
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """A report, not a gate: exit 0 whether or not anything changed."""
    from pricecheck_alerts.compile.paging import diff_against
    from pricecheck_alerts.config.revision import RevisionError

    root = find_project_root(args.root)
    try:
        result = diff_against(root, args.stack, args.base)
    except RevisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.markdown() if args.format == "markdown" else result.text())
    return 0


def connected_server(stack: StackConfig) -> str | int:
    """The API URL of the server PREFECT_API_URL names, checked reachable with this
    process's credentials; else print one line and return the exit code. Commands that
    read or send (smoke, emit, history) never fall back to a throwaway server."""
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        print(
            "error: PREFECT_API_URL is not set; point it at the stack's server "
            f"({stack.prefect_api_url}), never at a throwaway one",
            file=sys.stderr,
        )
        return 2
    problem = server_problem(api_url)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return api_url


def cmd_smoke(args: argparse.Namespace) -> int:
    from pricecheck_alerts.smoke import SmokeError, run_smoke

    root = find_project_root(args.root)
    stack = load_stack(root, args.stack, {})
    api_url = connected_server(stack)
    if isinstance(api_url, int):
        return api_url
    print(f"smoke: stack {args.stack} on {api_url}")
    try:
        result = run_smoke(stack.environment, timeout=args.timeout)
    except SmokeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def cmd_send_test(args: argparse.Namespace) -> int:
    from pricecheck_alerts.smoke import SmokeError, send_test

    root = find_project_root(args.root)
    _, resources = compile_for(root, args.stack)
    stack = load_stack(root, args.stack, os.environ)
    base = naming.block_name(stack.environment, args.channel)
    blocks = [b.name for b in resources.blocks if b.name == base or b.name.startswith(base + "-")]
    if not blocks:
        prefix = naming.block_prefix(stack.environment)
        used = sorted({b.name.removeprefix(prefix) for b in resources.blocks})
        print(
            f"error: stack {args.stack} sends nothing to {args.channel} "
            f"(its channels: {', '.join(used)})",
            file=sys.stderr,
        )
        return 2
    api_url = connected_server(stack)
    if isinstance(api_url, int):
        return api_url
    print(f"send-test: stack {args.stack}, channel {args.channel}, on {api_url}")
    try:
        result = send_test(stack.environment, args.channel, blocks, timeout=args.timeout)
    except SmokeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """`90s`, `30m`, `12h`, `7d`: a whole number and a unit, at most a year."""
    unit = _UNITS.get(text[-1:])
    amount = int(text[:-1]) if text[:-1].isdigit() and len(text) < 12 else 0
    if unit is None or not 0 < amount * unit <= 366 * 86400:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 30m, 12h or 7d (at most a year), got {text!r}"
        )
    return timedelta(seconds=amount * unit)


def cmd_history(args: argparse.Namespace) -> int:
    from pricecheck_alerts.history import read_history, table

    root = find_project_root(args.root)
    stack = load_stack(root, args.stack, {})
    if args.rule and args.rule not in {r.name for r in load_catalog(root).rules}:
        print(f"error: no rule named {args.rule!r} in automations/rules", file=sys.stderr)
        return 2
    api_url = connected_server(stack)
    if isinstance(api_url, int):
        return api_url
    firings = read_history(stack.environment, datetime.now(UTC) - args.since, rule=args.rule)
    if args.format == "json":
        print(json.dumps([f.as_json() for f in firings], indent=2, ensure_ascii=False))
    else:
        print(f"history: stack {args.stack} on {api_url}, last {args.since}")
        print("\n".join(table(firings)))
    return 0


def parse_fact(text: str) -> tuple[str, Any]:
    """`key=value`; the value is read as JSON when it parses (numbers, booleans)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def matching_rules(catalog: Catalog, event: str) -> list[Rule]:
    """The enabled rules an `event` signal would fire (scoped ones only for runs in scope)."""
    return [
        rule
        for rule in catalog.rules
        if rule.enabled
        and isinstance(rule.trigger, PipelineEventTrigger)
        and rule.trigger.event == event
    ]


def cmd_emit(args: argparse.Namespace) -> int:
    from pricecheck_alerts.signals import send_signal

    root = find_project_root(args.root)
    catalog = load_catalog(root)
    stack = load_stack(root, args.stack, os.environ)
    if not re.match(EVENT_NAME, args.event):
        print(f"error: {args.event!r} is not pricechecktn.<area>.<signal>", file=sys.stderr)
        return 2
    if args.event not in catalog.signals and not args.force:
        close = difflib.get_close_matches(args.event, catalog.signals, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        print(
            f"error: {args.event} is not in automations/signals.yaml{hint} "
            "(--force sends it anyway)",
            file=sys.stderr,
        )
        return 2
    rules = matching_rules(catalog, args.event)
    routes = catalog.routes.for_stack(args.stack)
    api_url = connected_server(stack)
    if isinstance(api_url, int):
        return api_url
    event = send_signal(args.event, args.check, dict(args.fact))
    print(f"emitted {args.event} ({len(args.fact)} facts, id {event.id}) to {api_url}")
    if not rules:
        print("no enabled rule matches it: nothing will be sent")
    for rule in rules:
        channels = rule.channels if rule.channels is not None else routes[rule.severity]
        scoped = " (scoped: fires only for runs in its scope)" if rule.scope != Scope() else ""
        print(
            f"  rule {rule.name} ({rule.severity}) -> "
            f"{', '.join(c.value for c in channels)}{scoped}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pricecheck-alerts", description=__doc__)
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="project folder holding automations/ (default: search upwards)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser(
        "check",
        help="validate rules, routes, SLAs and stack config",
        description=(
            "Validate automations/ and the stack files and compile every stack: each problem\n"
            "is one line naming the file, its line, the rule and the field; exit 1 on any."
        ),
        epilog=(
            "examples:\n"
            "  pricecheck-alerts check\n"
            "  pricecheck-alerts check --stack prod                 # and its secrets\n"
            "  pricecheck-alerts check --stack prod --skip-secrets  # CI without secrets"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--stack",
        help="one stack (default: every infra/Pulumi.*.yaml); also reports its secrets",
    )
    check.add_argument(
        "--skip-secrets",
        action="store_true",
        help="do not require the stack's secrets (CI without them)",
    )
    check.set_defaults(func=cmd_check)

    render = sub.add_parser(
        "render",
        help="print a stack's compiled Prefect resources",
        description="Print what apply / pulumi up would provision for a stack; secrets are\n"
        "named, never shown. Talks to no server.",
        epilog="example:\n  pricecheck-alerts render --stack staging --format json > staging.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    render.add_argument("--stack", required=True)
    render.add_argument("--format", choices=("json", "yaml"), default="yaml")
    render.set_defaults(func=cmd_render)

    apply = sub.add_parser(
        "apply",
        help="reconcile a stack against its Prefect server (PREFECT_API_URL)",
        description=(
            "Provision a stack's work pool, blocks, variables, limits and automations on the\n"
            "server PREFECT_API_URL names, which must be the stack's prefectApiUrl (or say\n"
            "--server). Nothing is written unless the whole config validates."
        ),
        epilog=(
            "example:\n"
            "  PREFECT_API_URL=http://127.0.0.1:4200/api pricecheck-alerts apply --stack local\n"
            "  pricecheck-alerts apply --stack local --server http://127.0.0.1:4300/api\n"
            "  pricecheck-alerts apply --stack local --dry-run"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument("--stack", required=True)
    apply.add_argument(
        "--server",
        metavar="URL",
        help="the Prefect API to write to, when it is not the stack's prefectApiUrl",
    )
    apply.add_argument("--allow-non-local", action="store_true")
    apply.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be created, updated or deleted (by name, with the changed "
        "fields) and write nothing",
    )
    apply.set_defaults(func=cmd_apply)

    diff = sub.add_parser(
        "diff",
        help="who gets alerted: what a change does for the people on call",
        description=(
            "Compare a stack's alerting at a git revision with the working tree, in terms\n"
            "of people: rules added, removed, enabled or disabled; channels, PagerDuty\n"
            "service and severity per rule; routes per severity; scope and trigger; SLAs\n"
            "and thresholds after the stack's overrides. Critical alerts that stop paging\n"
            "PagerDuty come first. Prints 'no change in who gets alerted' when only\n"
            "wording or formatting changed. Exits 0 either way (a report, not a gate);\n"
            "1 for an unknown ref, no git repository, or a config that does not validate."
        ),
        epilog=(
            "example:\n"
            "  pricecheck-alerts diff --stack prod --base origin/main\n"
            "  pricecheck-alerts diff --stack staging --base HEAD~1 --format markdown"
            " > comment.md"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diff.add_argument("--stack", required=True)
    diff.add_argument(
        "--base",
        required=True,
        metavar="GIT_REF",
        help="revision to compare with (branch, tag, commit)",
    )
    diff.add_argument("--format", choices=("text", "markdown"), default="text")
    diff.set_defaults(func=cmd_diff)

    smoke = sub.add_parser(
        "smoke",
        help="prove the server at PREFECT_API_URL delivers this stack's alerts",
        description=(
            "Send one `pricechecktn.report.published` signal (marked smoke) through the\n"
            "stack's daily-report automation and wait for the server's record of each of\n"
            "its actions (delivered or failed). An info note reaches the info channel;\n"
            "nobody is paged. Exit 1 if any action failed or none reported back."
        ),
        epilog=(
            "example:\n"
            "  export PREFECT_API_URL=https://prefect.staging.example/api\n"
            "  pricecheck-alerts smoke --stack staging"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    smoke.add_argument("--stack", required=True)
    smoke.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")
    smoke.set_defaults(func=cmd_smoke)

    history = sub.add_parser(
        "history",
        help="what fired, when, to which channels, delivered or failed",
        description=(
            "Read the stack's alert history from the server PREFECT_API_URL names: every\n"
            "firing of its automations (alerts and resolves), what it was about, and each\n"
            "channel's outcome (delivered, or failed with the reason)."
        ),
        epilog=(
            "examples:\n"
            "  pricecheck-alerts history --stack prod --since 12h\n"
            "  pricecheck-alerts history --stack prod --since 7d --rule flow-run-failed \\\n"
            "      --format json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    history.add_argument("--stack", required=True)
    history.add_argument(
        "--since", type=duration, default=timedelta(hours=12), help="30m, 12h, 7d (12h)"
    )
    history.add_argument("--rule", help="one rule only")
    history.add_argument("--format", choices=("table", "json"), default="table")
    history.set_defaults(func=cmd_history)

    send = sub.add_parser(
        "send-test",
        help="send a test alert through the server's own block for a channel",
        description=(
            "Send a clearly marked test alert through the stack's block for CHANNEL, by the\n"
            "server's own send-test automation (so it proves the server has this package, the\n"
            "secret is right and the destination takes it), and report what the server\n"
            "recorded for each delivery. PagerDuty gets a trigger and its resolve."
        ),
        epilog=(
            "example:\n"
            "  export PREFECT_API_URL=https://prefect.staging.example/api\n"
            "  pricecheck-alerts send-test --stack staging --channel slack-critical"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("--stack", required=True)
    send.add_argument("--channel", required=True, choices=[c.value for c in Channel])
    send.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")
    send.set_defaults(func=cmd_send_test)

    emit = sub.add_parser(
        "emit",
        help="send a pipeline signal by hand and say which rules it fires",
        description=(
            "Send a `pricechecktn.<area>.<signal>` event to the server PREFECT_API_URL names,\n"
            "exactly as a pipeline check would, to check a stack's routing end to end. The\n"
            "event must be in automations/signals.yaml unless --force."
        ),
        epilog=(
            "example:\n"
            "  pricecheck-alerts emit pricechecktn.model.drift_detected --stack staging \\\n"
            "      --check drift:price --fact observed=0.31 --fact worst_feature=price"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    emit.add_argument("event", help="pricechecktn.<area>.<signal>")
    emit.add_argument("--stack", required=True)
    emit.add_argument("--check", default="manual", help="name of the emitting check (manual)")
    emit.add_argument("--fact", type=parse_fact, action="append", default=[], help="key=value")
    emit.add_argument("--force", action="store_true", help="send an event the catalog lacks")
    emit.set_defaults(func=cmd_emit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print_problems(exc.problems)
        return 1


if __name__ == "__main__":
    sys.exit(main())
