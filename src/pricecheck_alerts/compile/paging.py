"""Who gets alerted, and how that changes: `pricecheck-alerts diff`.

A reviewer of an alerting change cares about paging behaviour, not about the JSON of the
automations: does a critical failure still wake someone up, which Slack channel does a
warning land in, did the pipeline's SLA move. A diff of `render` output buries that under
ids, templates and key order, and flags every reworded message. So a stack is first
reduced to a `PagingPlan` (per rule: severity, the channels and PagerDuty service it
reaches, scope, trigger in words; per severity: its channels; the effective SLAs and
thresholds; the people and urgencies behind the channels), and two plans are compared with
`diff_plans`. Everything that does not change who is alerted (descriptions, messages,
runbook links, YAML layout, comments, list order) is either absent from the plan or kept
apart as wording.

Everything above the "Reading revisions" section is pure; `diff_against` does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import Catalog, ConfigError, load_catalog
from pricecheck_alerts.config.models import (
    Channel,
    DeliveryFailedTrigger,
    Domain,
    FailureBudgetTrigger,
    FlowRunStateTrigger,
    PipelineEventTrigger,
    Rule,
    RunDurationSlaTrigger,
    Scope,
    Severity,
    TaskRunFailedTrigger,
)
from pricecheck_alerts.config.revision import config_at
from pricecheck_alerts.config.stacks import StackConfig, load_stack

NO_CHANGE = "no change in who gets alerted"
"""What `diff` says when only cosmetics changed (the exact phrase CI bots can look for)."""

# ---------------------------------------------------------------------------------------
# The plan: what one stack does for the people on call


@dataclass(frozen=True)
class RulePlan:
    """One rule as the people on call experience it on one stack.

    Lists are de-duplicated and in a canonical order, so reordering YAML is not a change.
    `description`, `message` and `runbook` are wording: kept to report them apart."""

    name: str
    enabled: bool
    severity: Severity
    channels: tuple[Channel, ...]
    pagerduty_service: Domain | None  # None when the rule does not page
    trigger: str  # in words; equal words mean equal behaviour
    scope: str  # in words
    resolve_on_recovery: bool
    description: str
    message: str
    runbook: str

    @property
    def pages(self) -> bool:
        return Channel.pagerduty in self.channels

    @property
    def reach(self) -> str:
        """`critical → slack-critical, pagerduty (pipeline), email; when …`: the rule in
        one line, for rules that appear or disappear."""
        where = _channels(self.channels, self.pagerduty_service)
        text = f"{self.severity.value} → {where}; when {self.trigger}"
        if self.scope != _EVERY_RUN:
            text += f"; only {self.scope}"
        return text

    def behaviour(self) -> tuple[object, ...]:
        """Everything that decides who is alerted, and when (not what it says)."""
        return (
            self.enabled,
            self.severity,
            self.channels,
            self.pagerduty_service,
            self.trigger,
            self.scope,
            self.resolve_on_recovery,
        )


@dataclass(frozen=True)
class PagingPlan:
    """Who gets alerted on one stack, reduced to what matters to them.

    Built by `plan_stack` from the same inputs as the compiler (routes with the stack's
    overrides, the stack's effective SLAs, `Rule.pagerduty_domain`)."""

    stack: str
    routes: tuple[tuple[Severity, tuple[Channel, ...]], ...]
    rules: tuple[RulePlan, ...]
    slas: tuple[tuple[str, int], ...]  # deployment → max_duration_s
    thresholds: tuple[tuple[str, float], ...]  # `scraping.min_success_rate` → value
    email_recipients: tuple[str, ...] = ()
    # Only for stacks whose PagerDuty services are managed here (pagerduty.enabled).
    pagerduty_urgency: tuple[tuple[str, str], ...] = ()
    on_call: tuple[str, ...] = ()
    escalation_lead: str | None = None

    def rule(self, name: str) -> RulePlan | None:
        return next((r for r in self.rules if r.name == name), None)

    def markdown_table(self) -> str:
        """The whole routing of the stack (enabled rules only), for the reviewer who wants
        the state after the change, not only the change."""
        lines = [
            "| severity | channels |",
            "|---|---|",
            *(f"| {s.value} | {_channels(c)} |" for s, c in self.routes),
            "",
            "| rule | severity | channels | PagerDuty service |",
            "|---|---|---|---|",
        ]
        for rule in self.rules:
            if rule.enabled:
                lines.append(
                    f"| `{rule.name}` | {rule.severity.value} | {_channels(rule.channels)} "
                    f"| {rule.pagerduty_service or '-'} |"
                )
        return "\n".join(lines)


_EVERY_RUN = "every run"


def _channel_order(channels: Iterable[Channel]) -> tuple[Channel, ...]:
    """De-duplicated, in the enum's order: `[email, pagerduty]` equals `[pagerduty, email]`."""
    present = set(channels)
    return tuple(c for c in Channel if c in present)


def _channels(channels: tuple[Channel, ...], service: str | None = None) -> str:
    if not channels:
        return "nothing"
    return ", ".join(
        f"{c.value} ({service})" if c is Channel.pagerduty and service else c.value
        for c in channels
    )


def _or(words: Iterable[str]) -> str:
    items = list(words)
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else "".join(items)


def describe_trigger(rule: Rule) -> str:
    """The trigger in words, canonical: two triggers that behave alike read alike."""
    trigger = rule.trigger
    if isinstance(trigger, FlowRunStateTrigger):
        return f"a flow run enters {_or(sorted(set(trigger.states)))}"
    if isinstance(trigger, TaskRunFailedTrigger):
        text = "a task run fails after its last retry"
        if trigger.classify_tags:
            tags = ", ".join(sorted(set(trigger.classify_tags)))
            text += f" (cause classified for tags {tags})"
        return text
    if isinstance(trigger, RunDurationSlaTrigger):
        return "a flow run is still running after its deployment's SLA"
    if isinstance(trigger, PipelineEventTrigger):
        return f"the pipeline emits {trigger.event}"
    if isinstance(trigger, FailureBudgetTrigger):
        return "a deployment fails more than its daily failure budget"
    assert isinstance(trigger, DeliveryFailedTrigger)
    return "an alert cannot be delivered"


def describe_scope(scope: Scope) -> str:
    """`deployment pricechecktn-pipeline and tag scraping`, or `every run`."""
    parts = []
    for label, values in (
        ("deployment", scope.deployments),
        ("flow", scope.flows),
        ("tag", scope.tags),
    ):
        if values:
            plural = "s" if len(set(values)) > 1 else ""
            parts.append(f"{label}{plural} {_or(sorted(set(values)))}")
    return " and ".join(parts) or _EVERY_RUN


def _flatten(prefix: str, data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        out += _flatten(name, value) if isinstance(value, Mapping) else [(name, value)]
    return out


def plan_stack(catalog: Catalog, stack: StackConfig) -> PagingPlan:
    """The paging plan of `stack`, resolved exactly as `compile_stack` resolves it: a rule's
    own `channels`, else its severity's route with the stack's override; the SLAs after the
    stack's `slaOverrides` (raises ConfigError if the overrides do not validate)."""
    routes = catalog.routes.for_stack(stack.name)
    slas = stack.effective_slas(catalog.slas)
    rules = []
    for rule in catalog.rules:
        channels = _channel_order(
            rule.channels if rule.channels is not None else routes[rule.severity]
        )
        rules.append(
            RulePlan(
                name=rule.name,
                enabled=rule.enabled,
                severity=rule.severity,
                channels=channels,
                pagerduty_service=rule.pagerduty_domain if Channel.pagerduty in channels else None,
                trigger=describe_trigger(rule),
                scope=describe_scope(rule.scope),
                resolve_on_recovery=rule.resolve_on_recovery,
                description=rule.description,
                message=rule.message,
                runbook=rule.runbook,
            )
        )
    pagerduty = stack.pagerduty
    return PagingPlan(
        stack=stack.name,
        routes=tuple((s, _channel_order(routes[s])) for s in Severity),
        rules=tuple(sorted(rules, key=lambda r: r.name)),
        slas=tuple(sorted((d, s.max_duration_s) for d, s in slas.deployments.items())),
        thresholds=tuple(_flatten("", slas.thresholds.model_dump())),
        email_recipients=tuple(sorted(set(stack.email.recipients))) if stack.email else (),
        pagerduty_urgency=(
            tuple(sorted((d, s.urgency) for d, s in pagerduty.services.items()))
            if pagerduty.enabled
            else ()
        ),
        on_call=(
            tuple(sorted({u for layer in pagerduty.schedule_layers for u in layer.users}))
            if pagerduty.enabled
            else ()
        ),
        escalation_lead=(
            pagerduty.escalation.lead if pagerduty.enabled and pagerduty.escalation else None
        ),
    )


# ---------------------------------------------------------------------------------------
# The diff: two plans of one stack, compared in terms of people


Section = Literal[
    "critical", "rules", "routes", "changes", "slas", "thresholds", "on-call", "wording", "dormant"
]
_SECTION_TITLES: dict[Section, str] = {
    "critical": "",
    "rules": "Rules added, removed, enabled or disabled",
    "routes": "Routes (severity → channels)",
    "changes": "Rule changes",
    "slas": "Run-duration SLAs",
    "thresholds": "Check thresholds",
    "on-call": "On call",
    "wording": "Wording only (does not change who is alerted)",
    "dormant": "Disabled rules (they alert nobody)",
}
_BEHAVIOUR: frozenset[Section] = frozenset(
    {"critical", "rules", "routes", "changes", "slas", "thresholds", "on-call"}
)

# kind → (section, sentence). `{who}`: the subjects; `{rules}`: "rule a" / "rules a, b".
_KINDS: dict[str, tuple[Section, str]] = {
    "critical-pagerduty-lost": ("critical", "⚠ critical alerts no longer page PagerDuty ({rules})"),
    "critical-removed": (
        "critical",
        "⚠ critical alerts that paged PagerDuty were removed ({rules})",
    ),
    "critical-disabled": (
        "critical",
        "⚠ critical alerts that paged PagerDuty were disabled ({rules})",
    ),
    "critical-downgraded": (
        "critical",
        "⚠ critical alerts downgraded to {after} no longer page PagerDuty ({rules})",
    ),
    "critical-unrouted": ("critical", "⚠ critical alerts no longer reach any channel ({rules})"),
    "critical-unpaged": ("critical", "⚠ new critical alerts do not page PagerDuty ({rules})"),
    "added": ("rules", "added {who}: {after}"),
    "enabled": ("rules", "enabled {who}: {after}"),
    "removed": ("rules", "removed {who} (was {before})"),
    "disabled": ("rules", "disabled {who} (was {before})"),
    "route": ("routes", "{who} alerts: {before} → {after}"),
    "severity": ("changes", "{who}: severity {before} → {after}"),
    "channels": ("changes", "{who}: channels {before} → {after}{note}"),
    "pagerduty-service": ("changes", "{who}: PagerDuty service {before} → {after}"),
    "trigger": ("changes", "{who}: fires when {before} → when {after}"),
    "scope": ("changes", "{who}: watches {before} → {after}"),
    "resolve": ("changes", "{who}: resolves on recovery {before} → {after}"),
    "sla": ("slas", "SLA of {who}: {before} → {after}"),
    "threshold": ("thresholds", "threshold {who}: {before} → {after}"),
    "email-recipients": ("on-call", "e-mail recipients: {before} → {after}"),
    "pagerduty-urgency": ("on-call", "PagerDuty urgency of service {who}: {before} → {after}"),
    "on-call": ("on-call", "on-call rotation: {before} → {after}"),
    "escalation-lead": ("on-call", "escalation lead: {before} → {after}"),
    "description": ("wording", "{who}: description reworded"),
    "message": ("wording", "{who}: message {before} → {after}"),
    "runbook": ("wording", "{who}: runbook {before} → {after}"),
    "dormant": ("dormant", "{who}: {after}"),
}
# Kinds whose before/after are free text from the rules: quoted, never read as markdown.
_LITERAL_KINDS = frozenset({"message", "runbook"})
_KIND_ORDER = {kind: i for i, kind in enumerate(_KINDS)}
# Names from the config (events, deployments, tags) may hold these: `price_spike` must not
# turn into italics in a pull-request comment.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


@dataclass(frozen=True)
class Change:
    """One difference, as data: `kind` (a key of the sentence table), the rules (or
    severity, deployment, threshold…) it concerns, and the values before and after.
    Changes of the same kind and values are merged, their subjects listed together."""

    kind: str
    subjects: tuple[str, ...] = ()
    before: str = ""
    after: str = ""
    note: str = ""

    @property
    def section(self) -> Section:
        return _KINDS[self.kind][0]

    def render(self, markdown: bool = False) -> str:
        def code(value: str) -> str:
            return _code(value) if markdown else value

        def literal(value: str) -> str:
            if self.kind in _LITERAL_KINDS:
                return _code(value) if markdown else f"“{_one_line(value)}”"
            return _MARKDOWN_SPECIAL.sub(r"\\\1", value) if markdown else value

        names = list(self.subjects)
        rules = ("rules " if len(names) > 1 else "rule ") + ", ".join(names)
        return _KINDS[self.kind][1].format(
            who=", ".join(code(s) for s in names),
            rules=rules,  # critical lines stay plain text, the same in both formats
            before=literal(self.before),
            after=literal(self.after),
            note=literal(self.note),
        )


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _code(value: str) -> str:
    """A markdown code span that survives any text (backticks, pipes, `@mentions`)."""
    value = _one_line(value)
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


@dataclass(frozen=True)
class PagingDiff:
    """What changes for the people on call of one stack between two plans."""

    stack: str
    base: str
    head: str
    changes: tuple[Change, ...] = ()
    # The head's plan, for the routing table of the markdown report.
    plan: PagingPlan | None = field(default=None, compare=False, repr=False)
    # Why the base could not be read with today's checks (then there is nothing to compare).
    base_problems: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether who gets alerted (or when, or by which channel) changes at all."""
        return any(c.section in _BEHAVIOUR for c in self.changes)

    def section(self, name: Section) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.section == name)

    def lines(self, name: Section) -> list[str]:
        """The plain-text sentences of one section (what tests and bots look for)."""
        return [c.render() for c in self.section(name)]

    def text(self) -> str:
        """For a terminal or a CI log; exactly `NO_CHANGE` when nothing behavioural moved."""
        if self.base_problems:
            return "\n".join([self._incomparable(), *(f"  {p}" for p in self.base_problems)])
        if not self.changed:
            return NO_CHANGE
        blocks = [f"Alerting on {self.stack}: {self.base} → {self.head}"]
        if self.section("critical"):
            blocks.append("\n".join(self.lines("critical")))
        for name, title in _SECTION_TITLES.items():
            if name != "critical" and self.section(name):
                blocks.append("\n".join([f"{title}:", *(f"  {line}" for line in self.lines(name))]))
        return "\n\n".join(blocks)

    def _incomparable(self) -> str:
        return (
            f"cannot compare: {self.base} does not pass this version's checks "
            f"({len(self.base_problems)} problems); review the routing of {self.head} below"
        )

    def markdown(self) -> str:
        """For a pull-request comment: critical lines first, as a quote, then one list per
        section, then the head's full routing, folded. Without a behaviour change, one
        paragraph (and the wording note, if any)."""
        compared = f"compared with {_code(self.base)} → {self.head}"
        if self.base_problems:
            blocks = [f"**{_code(self.stack)}**: {self._incomparable()}"]
            if self.plan is not None:
                blocks.append(
                    f"<details><summary>Routing on {self.stack} after this change</summary>"
                    f"\n\n{self.plan.markdown_table()}\n\n</details>"
                )
            return "\n\n".join(blocks)
        if not self.changed:
            blocks = [f"**{_code(self.stack)}**: {NO_CHANGE} ({compared})."]
        else:
            blocks = [f"### Who gets alerted on {_code(self.stack)}", f"Changes {compared}."]
            if self.section("critical"):
                blocks.append("\n>\n".join(f"> **{line}**" for line in self.lines("critical")))
        for name, title in _SECTION_TITLES.items():
            items = self.section(name)
            if name != "critical" and items:
                lines = [f"- {c.render(markdown=True)}" for c in items]
                blocks.append("\n".join([f"**{title}**", "", *lines]))
        if self.changed and self.plan is not None:
            blocks.append(
                f"<details><summary>Routing on {self.stack} after this change</summary>\n\n"
                f"{self.plan.markdown_table()}\n\n</details>"
            )
        return "\n\n".join(blocks)


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _list(values: Iterable[str]) -> str:
    return ", ".join(values) or "nobody"


def _pagerduty_note(before: RulePlan, after: RulePlan) -> str:
    if before.pages and not after.pages:
        return " (no longer pages PagerDuty)"
    if after.pages and not before.pages:
        return " (now pages PagerDuty)"
    return ""


def _rule_changes(base: PagingPlan, head: PagingPlan) -> list[Change]:
    """Per rule: appearance, disappearance, behaviour and wording; critical losses first."""
    changes: list[Change] = []
    names = sorted({r.name for r in base.rules} | {r.name for r in head.rules})
    for name in names:
        b, h = base.rule(name), head.rule(name)
        b_on = b is not None and b.enabled
        h_on = h is not None and h.enabled
        if not b_on and not h_on:  # alerts nobody before and after
            if b is None:
                changes.append(Change("dormant", (name,), after="added, disabled"))
            elif h is None:
                changes.append(Change("dormant", (name,), after="removed (it was disabled)"))
            elif b.behaviour() != h.behaviour():
                changes.append(Change("dormant", (name,), after="changed while disabled"))
            continue
        if not b_on:
            assert h is not None
            changes.append(Change("added" if b is None else "enabled", (name,), after=h.reach))
            if h.severity is Severity.critical and not h.pages:
                changes.append(Change("critical-unpaged", (name,)))
            continue
        assert b is not None
        was_critical_pager = b.severity is Severity.critical and b.pages
        if not h_on:
            changes.append(Change("removed" if h is None else "disabled", (name,), before=b.reach))
            if was_critical_pager:
                kind = "critical-removed" if h is None else "critical-disabled"
                changes.append(Change(kind, (name,)))
            continue
        assert h is not None
        changes += _behaviour_changes(b, h)
        if b.severity is Severity.critical and b.channels and not h.channels:
            changes.append(Change("critical-unrouted", (name,)))
        if was_critical_pager and not h.pages:
            if h.severity is Severity.critical:
                changes.append(Change("critical-pagerduty-lost", (name,)))
            else:
                changes.append(Change("critical-downgraded", (name,), after=h.severity.value))
        if h.severity is Severity.critical and not h.pages and b.severity is not Severity.critical:
            changes.append(Change("critical-unpaged", (name,)))
        for kind, before, after in (
            ("description", b.description, h.description),
            ("message", b.message, h.message),
            ("runbook", b.runbook, h.runbook),
        ):
            if before != after:
                changes.append(Change(kind, (name,), before, after))
    return changes


def _behaviour_changes(b: RulePlan, h: RulePlan) -> list[Change]:
    """How one rule, enabled on both sides, behaves differently."""
    name = (b.name,)
    out = []
    if b.severity != h.severity:
        out.append(Change("severity", name, b.severity.value, h.severity.value))
    if b.channels != h.channels:
        note = _pagerduty_note(b, h)
        out.append(Change("channels", name, _channels(b.channels), _channels(h.channels), note))
    if b.pages and h.pages and b.pagerduty_service != h.pagerduty_service:
        out.append(
            Change("pagerduty-service", name, str(b.pagerduty_service), str(h.pagerduty_service))
        )
    if b.trigger != h.trigger:
        out.append(Change("trigger", name, b.trigger, h.trigger))
    if b.scope != h.scope:
        out.append(Change("scope", name, b.scope, h.scope))
    if b.resolve_on_recovery != h.resolve_on_recovery:
        out.append(
            Change("resolve", name, _yes(b.resolve_on_recovery), _yes(h.resolve_on_recovery))
        )
    return out


def _keyed_changes(
    kind: str,
    base: Iterable[tuple[str, Any]],
    head: Iterable[tuple[str, Any]],
    show: Any,
) -> list[Change]:
    """Changes of a keyed setting (SLA per deployment, threshold, urgency per service)."""
    before, after = dict(base), dict(head)
    return [
        Change(
            kind,
            (key,),
            show(before[key]) if key in before else "none",
            show(after[key]) if key in after else "none",
        )
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]


def _merge(changes: list[Change]) -> tuple[Change, ...]:
    """One line per (kind, before, after): "a, b, c: channels X → Y" rather than three."""
    merged: dict[tuple[str, str, str, str], list[str]] = {}
    for change in changes:
        key = (change.kind, change.before, change.after, change.note)
        merged.setdefault(key, []).extend(change.subjects)
    out = [
        Change(kind, tuple(sorted(set(subjects))), before, after, note)
        for (kind, before, after, note), subjects in merged.items()
    ]
    return tuple(sorted(out, key=lambda c: (_KIND_ORDER[c.kind], c.subjects)))


def diff_plans(
    base: PagingPlan, head: PagingPlan, base_label: str = "base", head_label: str = "head"
) -> PagingDiff:
    """What changes for the people on call when `base` becomes `head` (one stack)."""
    if base.stack != head.stack:
        raise ValueError(f"plans of different stacks: {base.stack} and {head.stack}")
    changes = _rule_changes(base, head)
    changes += [
        Change("route", (s.value,), _channels(before), _channels(after))
        for (s, before), (_, after) in zip(base.routes, head.routes, strict=True)
        if before != after
    ]
    changes += _keyed_changes("sla", base.slas, head.slas, lambda v: f"{v} s")
    changes += _keyed_changes("threshold", base.thresholds, head.thresholds, _number)
    changes += _keyed_changes(
        "pagerduty-urgency", base.pagerduty_urgency, head.pagerduty_urgency, str
    )
    for kind, before, after in (
        ("email-recipients", base.email_recipients, head.email_recipients),
        ("on-call", base.on_call, head.on_call),
    ):
        if before != after:
            changes.append(Change(kind, (), _list(before), _list(after)))
    if base.escalation_lead != head.escalation_lead:
        changes.append(
            Change(
                "escalation-lead",
                (),
                base.escalation_lead or "nobody",
                head.escalation_lead or "nobody",
            )
        )
    return PagingDiff(head.stack, base_label, head_label, _merge(changes), head)


# ---------------------------------------------------------------------------------------
# Reading revisions (I/O)

WORKING_TREE = "working tree"


def load_plan(root: Path, stack: str, references: bool = True) -> PagingPlan:
    """Load, validate and compile one side, then plan it. Compiling is the same check
    `apply` and `pulumi up` make (e.g. an e-mail channel on a stack without e-mail);
    the environment is ignored so that the diff depends on the revisions alone.
    `references=False` (the base side) leaves out the checks of what rules name
    (signals, deployments, runbooks): only the base's routing is compared."""
    catalog = load_catalog(root, references)
    config = load_stack(root, stack, {})
    compile_stack(catalog, config)
    return plan_stack(catalog, config)


def _side(
    root: Path, stack: str, label: str, references: bool = True
) -> tuple[PagingPlan | None, list[str]]:
    try:
        return load_plan(root, stack, references), []
    except ConfigError as exc:
        return None, [f"at {label}: {problem}" for problem in exc.problems]


def diff_against(root: Path, stack: str, base_ref: str) -> PagingDiff:
    """The diff of `stack` from git revision `base_ref` to the working tree at `root`.
    Raises `RevisionError` (git), or `ConfigError` when the working tree does not validate;
    a base that does not pass today's checks gives a report without a comparison."""
    with config_at(root, base_ref) as (revision, tree):
        base, base_problems = _side(tree, stack, f"base revision {revision.label}", False)
    head, head_problems = _side(root, stack, f"the {WORKING_TREE}")
    if head_problems:
        raise ConfigError(base_problems + head_problems)
    assert head is not None
    if base is None:
        # Older revisions are read with today's checks, which may be stricter (a new
        # rule, a renamed key): report the new side instead of failing the review.
        return PagingDiff(
            stack, revision.label, WORKING_TREE, plan=head, base_problems=tuple(base_problems)
        )
    return diff_plans(base, head, revision.label, WORKING_TREE)
