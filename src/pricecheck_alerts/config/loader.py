"""Load and validate everything in `automations/`, with errors that name file, rule and field.

Layout: `automations/rules/*.yaml` (each `rules: [...]`), `automations/routes.yaml`,
`automations/slas.yaml`. Loading is all-or-nothing: any error means no catalog, so
nothing can be provisioned from a config that fails validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pricecheck_alerts.config.models import Routes, Rule, RuleFile, Slas

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


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
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


def describe_validation_error(source: str, error: ValidationError, data: Any) -> list[str]:
    """One line per problem: `<file>: rule '<name>': field '<path>': <message>`."""
    lines = []
    for item in error.errors():
        loc = _strip_union_tag(tuple(item["loc"]), data)
        where = source
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            raw = data["rules"][loc[1]] if isinstance(data, dict) else None
            name = raw.get("name") if isinstance(raw, dict) else None
            where += f": rule '{name}'" if name else f": rule #{loc[1] + 1}"
            loc = loc[2:]
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}: field '{_field_path(loc)}': {message}")
    return lines


def read_yaml(path: Path, display: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError([f"{display}{where}: invalid YAML: {exc}"]) from exc
    except OSError as exc:
        raise ConfigError([f"{display}: cannot read: {exc.strerror}"]) from exc


def validate(model: type[M], data: Any, display: str) -> M:
    """Validate `data` as `model`, turning pydantic errors into a precise ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(display, exc, data)) from exc


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
    return validate(Slas, read_yaml(path, display) or {}, display)


def _collect(problems: list[str], model: type[M], path: Path, root: Path) -> M | None:
    """Validate one file; on failure add its problems and return None (keep going)."""
    display = _relative(path, root)
    try:
        return validate(model, read_yaml(path, display), display)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def load_catalog(root: Path | None = None) -> Catalog:
    """Load rules, routes and SLAs; collect every problem before raising."""
    root = root or find_project_root()
    folder = root / "automations"
    problems: list[str] = []
    rules: list[Rule] = []
    origin: dict[str, str] = {}

    rule_files = sorted((folder / "rules").glob("*.y*ml"))
    if not rule_files:
        problems.append(f"{_relative(folder / 'rules', root)}: no rule files")
    for path in rule_files:
        display = _relative(path, root)
        try:
            parsed = validate(RuleFile, read_yaml(path, display), display)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for rule in parsed.rules:
            if rule.name in origin:
                problems.append(
                    f"{display}: rule '{rule.name}': field 'name': "
                    f"duplicate, already defined in {origin[rule.name]}"
                )
                continue
            origin[rule.name] = display
            rules.append(rule)

    routes = _collect(problems, Routes, folder / "routes.yaml", root)
    slas = _collect(problems, Slas, folder / "slas.yaml", root)
    if routes is not None and (root / "infra").is_dir():
        known = available_stacks(root)
        problems += [
            f"automations/routes.yaml: field 'stacks.{name}': no such stack "
            f"(known: {', '.join(known)})"
            for name in routes.stacks
            if name not in known
        ]
    if problems:
        raise ConfigError(problems)
    assert routes is not None and slas is not None
    return Catalog(rules=tuple(rules), routes=routes, slas=slas)
