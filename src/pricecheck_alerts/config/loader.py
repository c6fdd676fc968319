"""Load and validate everything in `automations/`, with errors that name file, rule and field.

Layout: `automations/rules/*.yaml` (each `rules: [...]`), `automations/routes.yaml`,
`automations/slas.yaml`. Loading is all-or-nothing: any error means no catalog, so
nothing can be provisioned from a config that fails validation.
"""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError

from pricecheck_alerts.config.models import (
    PipelineEventTrigger,
    Routes,
    Rule,
    RuleFile,
    SignalCatalog,
    SignalSpec,
    Slas,
)

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """One or more precise problems in the alerting config; `problems` lists each one."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Catalog:
    """Everything `automations/` declares, validated."""

    rules: tuple[Rule, ...]
    routes: Routes
    slas: Slas
    signals: Mapping[str, SignalSpec] = field(default_factory=dict)
    # The deployments prefect.yaml defines; None when the catalog was built by hand.
    deployments: frozenset[str] | None = None


CONFIG_ROOTS = ("automations", "infra", "prefect.yaml", "flows", "docs")
"""Top-level entries of the project the loaders read from."""


def is_config_file(path: PurePosixPath) -> bool:
    """Whether the loaders read `path` (relative to the project root): the alerting config,
    the stack files, the deployments and flows rules may name, and the runbooks under
    docs/ they link to. A git revision's config, or a test's copy, holds exactly these."""
    parts = path.parts
    if not parts:
        return False
    if parts[0] in ("automations", "docs") or path.as_posix() == "prefect.yaml":
        return True
    if len(parts) != 2:
        return False
    if parts[0] == "flows":
        return path.suffix == ".py"
    return parts[0] == "infra" and fnmatch(path.name, "Pulumi.*.yaml")


def copy_config(source: Path, dest: Path) -> Path:
    """Copy the files the loaders read from project `source` into `dest`; return `dest`."""
    for entry in CONFIG_ROOTS:
        base = source / entry
        for path in [base] if base.is_file() else sorted(base.rglob("*")):
            relative = PurePosixPath(path.relative_to(source).as_posix())
            if path.is_file() and is_config_file(relative):
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    return dest


def available_stacks(root: Path) -> list[str]:
    """The stacks `infra/Pulumi.<stack>.yaml` defines."""
    return sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in (root / "infra").glob("Pulumi.*.yaml")
    )


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) that holds `automations/`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "automations").is_dir():
            return folder
    raise ConfigError([f"{here}: no automations/ folder here or in any parent"])


def shorten(value: object, limit: int = 80) -> str:
    """`value` as text of at most `limit` characters: an error names a key, it does not
    repeat a 20 000-character one."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            path += f"[{part}]"
        else:
            path += f".{shorten(part)}" if path else shorten(part)
    return path or "(top level)"


def _strip_union_tag(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    """Drop the discriminator tag pydantic inserts (`trigger.flow-run-state.states`): it
    follows the union field, equal to that node's `kind`."""
    cleaned: list[int | str] = []
    node, tag_checked = data, False
    for part in loc:
        if not tag_checked and isinstance(node, dict) and node.get("kind") == part:
            tag_checked = True
            continue
        cleaned.append(part)
        tag_checked = False
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(cleaned)


def describe_validation_error(
    source: str, error: ValidationError, data: Any, document: YamlDocument | None = None
) -> list[str]:
    """One line per problem: `<file>:<line>: rule '<name>': field '<path>': <message>`."""
    lines = []
    for item in error.errors():
        loc = _strip_union_tag(tuple(item["loc"]), data)
        where = _where(source, document or YamlDocument(data, {}), loc)
        message = shorten(item["msg"], 300)  # pydantic may quote the whole input
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}field '{_field_path(_in_rule(loc))}': {message}")
    return lines


MAX_FILE_BYTES = 2_000_000
"""A config file larger than this is refused before parsing: 1 000 rules take ~250 kB, and
parsing stays bounded in time and memory whatever a file holds."""
MAX_DEPTH = 40
"""Deepest nesting accepted (the deepest real file, a Kubernetes job template in a stack
file, nests 15 deep). Checked on the token stream, before anything recursive runs."""
MAX_NODES = 200_000
"""Most values a file may expand to, aliases counted at every use (a "billion laughs"
file is a few lines that expand to billions)."""
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")
"""Jinja markers. Config text ends up in server-side templates and URLs; a marker there
would be rendered (or break the template) instead of shown."""


@dataclass(frozen=True)
class YamlDocument:
    """A parsed file and the line of every key and item in it, by path."""

    data: Any
    lines: Mapping[tuple[Any, ...], int]

    def line_of(self, loc: Sequence[Any]) -> int | None:
        """The line of the deepest part of `loc` the file has (pydantic's error paths go
        into values that may not exist, such as a missing key)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's parser when PyYAML has it: the same documents, parsed ~10x faster
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping: PyYAML keeps the last one
    silently, so `critical:` written twice would route critical alerts by the second."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    # `<<` would let a merged key and an explicit one silently differ
                    raise ConstructorError(
                        None,
                        None,
                        "merge keys (<<) are not allowed: write the keys out",
                        key_node.start_mark,
                    )
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.get(key)
                except TypeError:
                    continue  # unhashable: SafeConstructor reports it below
                if seen is not None:
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key {shorten(repr(key))} (first given on line {seen})",
                        key_node.start_mark,
                    )
                first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _check_nesting(text: str, display: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH from the token stream: composing a document is
    recursive, and a 5 000-deep file would end in RecursionError."""
    depth = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise ConfigError([f"{display}:{line}: nested deeper than {MAX_DEPTH} levels"])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: yaml.Node, display: str) -> None:
    """Refuse a document whose aliases make it expand past MAX_NODES values or MAX_DEPTH
    levels, or refer to themselves; each node is measured once."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)
    open_nodes: set[int] = set()

    def problem(node: yaml.Node, text: str) -> ConfigError:
        return ConfigError([f"{display}:{node.start_mark.line + 1}: {text}"])

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_nodes:
            raise problem(node, "an alias refers to the value that contains it")
        size, height = measured.get(key, (1, 0))
        if key not in measured:
            open_nodes.add(key)
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            for child in children:
                child_size, child_height = measure(child, depth + 1)
                size, height = size + child_size, max(height, child_height + 1)
                if size > MAX_NODES:
                    raise problem(node, f"expands to more than {MAX_NODES} values")
            open_nodes.discard(key)
            measured[key] = (size, height)
        if depth + height > MAX_DEPTH:
            raise problem(node, f"nested deeper than {MAX_DEPTH} levels once aliases expand")
        return size, height

    measure(root, 0)


def _key_lines(root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Path -> 1-based line for every mapping key and sequence item (scalar keys only)."""
    lines: dict[tuple[Any, ...], int] = {(): root.start_mark.line + 1}
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    visited: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    child = (*path, key_node.value)
                    lines.setdefault(child, key_node.start_mark.line + 1)
                    stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, index)
                lines.setdefault(child, item.start_mark.line + 1)
                stack.append((item, child))
    return lines


def _yaml_problem(display: str, exc: yaml.YAMLError, text: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    if isinstance(exc, yaml.reader.ReaderError):  # a control character: no mark, a position
        where = f":{text[: exc.position].count(chr(10)) + 1}"
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = " ".join(str(p) for p in (context, problem) if p) or str(exc).splitlines()[0]
    return ConfigError([f"{display}{where}: invalid YAML: {text}"])


def parse_yaml(text: str, display: str) -> YamlDocument:
    """Parse one YAML document strictly and with bounded work; errors name the line."""
    try:
        _check_nesting(text, display)
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return YamlDocument(None, {})
            _check_expansion(node, display)
            return YamlDocument(loader.construct_document(node), _key_lines(node))
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_problem(display, exc, text) from exc


def read_yaml(path: Path, display: str) -> YamlDocument:
    """Read and parse one config file: UTF-8, at most MAX_FILE_BYTES."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                [f"{display}: {size} bytes, more than the {MAX_FILE_BYTES} a config file may hold"]
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{display}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"{display}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"]
        ) from exc
    return parse_yaml(text, display)


def _template_problems(
    data: Any, display: str, lines: YamlDocument | None, allowed: frozenset[str]
) -> list[str]:
    """Every string (key or value) holding template syntax, by field; subtrees under a
    top-level key in `allowed` may hold templates (a work pool's job template does)."""
    found: list[str] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if path[:1] and path[0] in allowed:
            continue
        if isinstance(value, str):
            if TEMPLATE_SYNTAX.search(value):
                found.append(
                    _where(display, lines, path)
                    + f"field '{_field_path(_in_rule(path))}': must not contain template "
                    "syntax ('{{', '{%' or '{#')"
                )
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and TEMPLATE_SYNTAX.search(key):
                    found.append(
                        _where(display, lines, (*path, key))
                        + f"field '{_field_path(_in_rule((*path, key)))}': the key must not "
                        "contain template syntax ('{{', '{%' or '{#')"
                    )
                stack.append((item, (*path, key)))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
    return sorted(found)


def _in_rule(loc: Sequence[Any]) -> tuple[Any, ...]:
    """A path with its `rules[i]` prefix dropped (the rule is named before the field)."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        return tuple(loc[2:])
    return tuple(loc)


def _where(display: str, document: YamlDocument | None, loc: Sequence[Any]) -> str:
    """`file:line: rule 'name': ` for a path into a file (the rule part when the path is
    under `rules`; `_in_rule` then gives the field's path inside the rule)."""
    line = document.line_of(loc) if document else None
    where = f"{display}:{line}" if line else display
    data = document.data if document else None
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        listed = data.get("rules") if isinstance(data, dict) else None
        raw = listed[loc[1]] if isinstance(listed, list) and loc[1] < len(listed) else None
        name = raw.get("name") if isinstance(raw, dict) else None
        where += f": rule '{shorten(name)}'" if isinstance(name, str) else f": rule #{loc[1] + 1}"
    return where + ": "


def validate(
    model: type[M],
    data: Any,
    display: str,
    document: YamlDocument | None = None,
    templates_allowed_under: frozenset[str] = frozenset(),
) -> M:
    """Validate `data` (from `document` when it came from a file, for line numbers) as
    `model`, turning pydantic errors into a precise ConfigError."""
    problems = _template_problems(data, display, document, templates_allowed_under)
    if problems:
        raise ConfigError(problems)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(display, exc, data, document)) from exc
    except RecursionError as exc:  # a self-referencing value built in code, not from YAML
        raise ConfigError([f"{display}: a value refers to itself"]) from exc


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_slas(root: Path | None = None) -> Slas:
    """Only the SLA/threshold config: what pipeline checks read at run time."""
    root = root or find_project_root()
    path = root / "automations" / "slas.yaml"
    display = _relative(path, root)
    document = read_yaml(path, display)
    return validate(Slas, document.data or {}, display, document)


def _collect(
    problems: list[str], model: type[M], path: Path, root: Path
) -> tuple[M, YamlDocument] | None:
    """Validate one file; on failure add its problems and return None (keep going)."""
    display = _relative(path, root)
    try:
        document = read_yaml(path, display)
        return validate(model, document.data, display, document), document
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


@dataclass(frozen=True)
class Project:
    """What the rest of the project defines that rules may name: the deployments of
    `prefect.yaml` and the flows of `flows/`. A rule scoped to anything else never fires."""

    deployments: frozenset[str]
    flows: frozenset[str]
    root: Path

    def unknown_deployment(self, name: str) -> str | None:
        if name in self.deployments:
            return None
        known = ", ".join(sorted(self.deployments)) or "none"
        return f"no deployment '{shorten(name)}' in prefect.yaml (it defines: {known})"

    def unknown_flow(self, name: str) -> str | None:
        if name in self.flows:
            return None
        known = ", ".join(sorted(self.flows)) or "none"
        return f"no flow named '{shorten(name)}' in flows/ (it defines: {known})"

    def missing_runbook(self, runbook: str) -> str | None:
        """A repository runbook that is not a file under docs/ (links are not checked)."""
        if runbook.startswith(("http://", "https://")):
            return None
        try:
            docs = (self.root / "docs").resolve()
            target = (self.root / runbook).resolve()
            found = docs in target.parents and target.is_file()
        except (OSError, ValueError):  # a NUL byte, a name too long for the file system
            found = False
        return None if found else f"no such file: {shorten(runbook)}"


def _flow_name(decorator: ast.expr, function: str) -> str | None:
    """The flow name a `@flow` / `@flow(name=...)` decorator gives (Prefect's default is
    the function name with `_` turned into `-`); None for other decorators."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if name != "flow":
        return None
    for keyword in call.keywords if call else []:
        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    return function.replace("_", "-")


def load_project(root: Path) -> tuple[Project, list[str]]:
    """The deployments and flows this project defines, and any problem reading them."""
    problems: list[str] = []
    deployments: set[str] = set()
    path = root / "prefect.yaml"
    if path.is_file():
        try:
            data = read_yaml(path, "prefect.yaml").data
        except ConfigError as exc:
            problems += exc.problems
            data = None
        entries = data.get("deployments") if isinstance(data, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                deployments.add(entry["name"])
    flows: set[str] = set()
    for source in sorted((root / "flows").glob("*.py")):
        try:
            if source.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"over {MAX_FILE_BYTES} bytes")
            tree = ast.parse(source.read_bytes(), filename=str(source))
        except (SyntaxError, ValueError, OSError, RecursionError, MemoryError) as exc:
            reason = shorten(f"{type(exc).__name__}: {exc}", 200)
            problems.append(f"{_relative(source, root)}: cannot read its flows: {reason}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    name = _flow_name(decorator, node.name)
                    if name:
                        flows.add(name)
    return Project(frozenset(deployments), frozenset(flows), root), problems


def _rule_problems(
    rule: Rule,
    index: int,
    document: YamlDocument,
    display: str,
    project: Project,
    signals: Mapping[str, Any] | None,
) -> list[str]:
    """What a valid rule names that does not exist: deployments, flows, runbook files and
    events nothing emits."""
    found: list[tuple[tuple[Any, ...], str]] = []
    for i, name in enumerate(rule.scope.deployments):
        found.append((("scope", "deployments", i), project.unknown_deployment(name) or ""))
    for i, name in enumerate(rule.scope.flows):
        found.append((("scope", "flows", i), project.unknown_flow(name) or ""))
    found.append((("runbook",), project.missing_runbook(rule.runbook) or ""))
    trigger = rule.trigger
    if (
        isinstance(trigger, PipelineEventTrigger)
        and not trigger.external
        and signals is not None
        and trigger.event not in signals
    ):
        found.append(
            (
                ("trigger", "event"),
                f"no pipeline emits '{trigger.event}': add it to automations/signals.yaml, "
                "or set 'external: true' if something outside the pipeline emits it",
            )
        )
    return [
        _where(display, document, ("rules", index, *loc)) + f"field '{_field_path(loc)}': {text}"
        for loc, text in found
        if text
    ]


def load_catalog(root: Path | None = None, references: bool = True) -> Catalog:
    """Load rules, routes, SLAs and the signal catalog and check what they name against the
    project (deployments, flows, runbooks, signals); collect every problem before raising.

    `references=False` skips the signal catalog and those cross-checks: for an older git
    revision, whose routing `diff` compares, and which predates some of them."""
    root = root or find_project_root()
    folder = root / "automations"
    problems: list[str] = []
    project: Project | None = None
    signals_file = None
    if references:
        project, problems = load_project(root)
        signals_file = _collect(problems, SignalCatalog, folder / "signals.yaml", root)
    signals = signals_file[0].signals if signals_file else None
    if signals_file and project:
        catalog, document = signals_file
        for event, spec in catalog.signals.items():
            for i, flow in enumerate(spec.emitted_by):
                unknown = project.unknown_flow(flow)
                if unknown:
                    problems.append(
                        _where(
                            "automations/signals.yaml",
                            document,
                            ("signals", event, "emitted_by", i),
                        )
                        + f"field 'signals.{event}.emitted_by[{i}]': {unknown}"
                    )
    rules: list[Rule] = []
    origin: dict[str, str] = {}

    rule_files = sorted((folder / "rules").glob("*.y*ml"))
    if not rule_files:
        problems.append(f"{_relative(folder / 'rules', root)}: no rule files")
    for path in rule_files:
        display = _relative(path, root)
        parsed = _collect(problems, RuleFile, path, root)
        if parsed is None:
            continue
        rule_file, document = parsed
        for index, rule in enumerate(rule_file.rules):
            if rule.name in origin:
                problems.append(
                    _where(display, document, ("rules", index, "name"))
                    + f"field 'name': duplicate, already defined in {origin[rule.name]}"
                )
                continue
            origin[rule.name] = display
            if project is not None:
                problems += _rule_problems(rule, index, document, display, project, signals)
            rules.append(rule)

    routes = _collect(problems, Routes, folder / "routes.yaml", root)
    slas = _collect(problems, Slas, folder / "slas.yaml", root)
    if routes is not None and (root / "infra").is_dir():
        known = available_stacks(root)
        problems += [
            _where("automations/routes.yaml", routes[1], ("stacks", name))
            + f"field 'stacks.{shorten(name)}': no such stack (known: {', '.join(known)})"
            for name in routes[0].stacks
            if name not in known
        ]
    if slas is not None and project is not None:
        for name in slas[0].deployments:
            unknown = project.unknown_deployment(name)
            if unknown:
                problems.append(
                    _where("automations/slas.yaml", slas[1], ("deployments", name))
                    + f"field 'deployments.{shorten(name)}': {unknown}"
                )
    if problems:
        raise ConfigError(problems)
    assert routes is not None and slas is not None
    return Catalog(
        rules=tuple(rules),
        routes=routes[0],
        slas=slas[0],
        signals=dict(signals or {}),
        deployments=project.deployments if project else None,
    )
