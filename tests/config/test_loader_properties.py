"""Property tests over the loaders: whatever a config file holds, loading ends in a valid
catalog (and stack) or the project's own ConfigError, never another exception."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import ConfigError, copy_config, load_catalog, parse_yaml
from pricecheck_alerts.config.stacks import load_stack

# Values that have broken loaders before: template markers, booleans in disguise, dates,
# hostile text, huge numbers, nesting.
NASTY_STRINGS = st.sampled_from(
    [
        "{{ x }}",
        "{% if %}",
        "{#",
        "false",
        "yes",
        "2024-01-01",
        "فشل 🚨",
        "a\nb\"'",
        "x" * 20_000,
        "",
        "pricechecktn.a.b",
        "docs/runbooks/nope.md",
        "https://x",
        "critical",
        "slack-critical",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    NASTY_STRINGS,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=10), NASTY_STRINGS), inner, max_size=4),
    ),
    max_leaves=12,
)

FILES = [
    "automations/rules/flow-runs.yaml",
    "automations/rules/pipeline-signals.yaml",
    "automations/routes.yaml",
    "automations/slas.yaml",
    "automations/signals.yaml",
    "infra/Pulumi.local.yaml",
    "infra/Pulumi.prod.yaml",
]
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, project_root: Path) -> Path:
    return copy_config(project_root, tmp_path_factory.mktemp("property-tree"))


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into `data` (the root included)."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from paths(value, (*prefix, index))


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    copy[head] = replaced(copy[head], rest, value)
    return copy


def load_everything(root: Path) -> None:
    """What `check` does: the catalog, then every stack compiled against it."""
    catalog = load_catalog(root)
    for stack in ("local", "staging", "prod"):
        compile_stack(catalog, load_stack(root, stack, {}))


def outcome(root: Path) -> str:
    try:
        load_everything(root)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert all(len(p) < 2_000 for p in exc.problems), exc.problems
        return "error"
    return "valid"


@PROFILE
@given(text=st.text(max_size=300))
def test_any_text_parses_or_is_a_config_error(text: str) -> None:
    try:
        parse_yaml(text, "f.yaml")
    except ConfigError as exc:
        assert exc.problems[0].startswith("f.yaml")


@PROFILE
@given(data=st.data())
def test_any_change_to_a_file_loads_or_is_a_config_error(tree: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(FILES), label="file")
    path = tree / name
    original = path.read_text(encoding="utf-8")
    document = yaml.safe_load(original)
    where = data.draw(st.sampled_from(list(paths(document))), label="path")
    value = data.draw(VALUES, label="value")
    try:
        path.write_text(yaml.safe_dump(replaced(document, where, value)), encoding="utf-8")
        outcome(tree)
    finally:
        path.write_text(original, encoding="utf-8")


@PROFILE
@given(raw=st.binary(max_size=400))
def test_any_bytes_in_a_rule_file_are_a_config_error_or_valid(tree: Path, raw: bytes) -> None:
    path = tree / "automations" / "rules" / "zz-bytes.yaml"
    try:
        path.write_bytes(raw)
        outcome(tree)
    finally:
        path.unlink()
