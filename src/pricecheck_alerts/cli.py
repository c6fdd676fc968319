"""`pricecheck-alerts`: check, render and apply the alerting config of a stack."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import httpx
import yaml

from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources
from pricecheck_alerts.config.loader import (
    Catalog,
    ConfigError,
    available_stacks,
    find_project_root,
    load_catalog,
)
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets


def compile_for(root: Path, stack: str) -> tuple[Catalog, StackResources]:
    """Load and compile; every validation problem surfaces as one ConfigError."""
    catalog = load_catalog(root)
    return catalog, compile_stack(catalog, load_stack(root, stack, os.environ))


def cmd_check(args: argparse.Namespace) -> int:
    root = find_project_root(args.root)
    stacks = [args.stack] if args.stack else available_stacks(root)
    problems: list[str] = []
    for stack in stacks:
        try:
            catalog, resources = compile_for(root, stack)
        except ConfigError as exc:
            problems += [p for p in exc.problems if p not in problems]
            continue
        print(
            f"{stack}: {len(catalog.rules)} rules -> {len(resources.automations)} "
            f"automations, {len(resources.blocks)} blocks, "
            f"{len(resources.work_pools)} work pool"
        )
    if problems:
        print("\n".join(f"error: {p}" for p in problems), file=sys.stderr)
        return 1
    return 0


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


def server_problem(api_url: str) -> str | None:
    """One line saying why `api_url` is not a Prefect API this process can use, or None."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=5)
    except httpx.ConnectError:
        return f"cannot reach the Prefect API at {api_url} (connection refused): is it running?"
    except httpx.HTTPError as exc:
        return f"cannot reach the Prefect API at {api_url}: {type(exc).__name__}"
    if response.status_code in (401, 403):
        return (
            f"{api_url} refused the request (HTTP {response.status_code}): set "
            "PREFECT_API_AUTH_STRING (self-hosted server) or PREFECT_API_KEY (Prefect Cloud)"
        )
    if response.status_code == 404:
        hint = "" if api_url.rstrip("/").endswith("/api") else f" (try {api_url.rstrip('/')}/api)"
        return f"{api_url} has no Prefect API here: the URL must end with /api{hint}"
    if response.status_code >= 300:
        return f"{api_url} answered HTTP {response.status_code} to /health"
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
    print(f"apply: stack {args.stack} -> {target}")
    report = apply_stack(resources, secrets, target)
    print("\n".join(report.lines()))
    print(f"{report.writes} writes")
    if report.restarted_windows:
        print(
            "note: updating these restarted their open windows (a failure waiting for its "
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


def cmd_smoke(args: argparse.Namespace) -> int:
    from pricecheck_alerts.smoke import SmokeError, run_smoke

    root = find_project_root(args.root)
    stack = load_stack(root, args.stack, {})
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        print(
            "error: PREFECT_API_URL is not set; point it at the stack's server "
            f"({stack.prefect_api_url}), never at a throwaway one",
            file=sys.stderr,
        )
        return 2
    print(f"smoke: stack {args.stack} on {api_url}")
    try:
        result = run_smoke(stack.environment, timeout=args.timeout)
    except SmokeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pricecheck-alerts", description=__doc__)
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="project folder holding automations/ (default: search upwards)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate rules, routes, SLAs and stack config")
    check.add_argument("--stack", help="one stack (default: every infra/Pulumi.*.yaml)")
    check.set_defaults(func=cmd_check)

    render = sub.add_parser("render", help="print a stack's compiled Prefect resources")
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
            "  pricecheck-alerts apply --stack local --server http://127.0.0.1:4300/api"
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print("\n".join(f"error: {p}" for p in exc.problems), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
