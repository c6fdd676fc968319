"""The wheel is the server plugin: built, installed alone into a fresh virtualenv, it lets a
Prefect server started from that virtualenv deliver through each of the package's blocks.

This is what a user's server image does (`pip install pricecheck-alerts`), so the test
installs exactly the locked runtime dependencies (`uv export --no-dev`, no extras) and no
test or pipeline code: a block that imported Pulumi, scikit-learn or devtools would fail
to load on the server and its automation would never deliver.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from devtools.local_server import LocalPrefectServer
from devtools.receivers import Receivers
from devtools.scenarios import Expected, identify, wait_for_alerts
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision.apply import apply_stack
from pricecheck_alerts.signals import Signal, send_signal

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Must not be importable on the server: each belongs to an extra, a group or devtools.
SLUGS = tuple(f"pricechecktn-{kind}-alert" for kind in ("slack", "pagerduty", "email"))
NOT_SHIPPED = ("pulumi", "sklearn", "scipy", "matplotlib", "aiosmtpd", "devtools", "flows")


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is installed by `make setup` into .tools/"
    return found


def run(*command: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(uv(), "build", "--wheel", "--package", "pricecheck-alerts", "--out-dir", str(out))
    [built] = out.glob("pricecheck_alerts-*.whl")
    return built


@pytest.fixture(scope="module")
def plugin_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and its locked runtime dependencies only."""
    folder = tmp_path_factory.mktemp("plugin-venv")
    requirements = folder / "requirements.txt"
    run(
        uv(), "export", "--frozen", "--no-dev", "--package", "pricecheck-alerts",
        "--no-emit-project", "--no-emit-workspace", "--no-hashes", "-o", str(requirements),
    )  # fmt: skip
    venv = folder / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    run(uv(), "pip", "install", "--quiet", "--python", str(python), "-r", str(requirements))
    run(uv(), "pip", "install", "--quiet", "--no-deps", "--python", str(python), str(wheel))
    return python


def test_wheel_holds_the_package_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"pricecheck_alerts", wheel.name.split("-")[0] + "-0.1.0.dist-info"}
    for room in ("config", "compile", "notify", "provision"):
        assert f"pricecheck_alerts/{room}/__init__.py" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    runtime = [
        line.split(":", 1)[1].strip()
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert sorted(Requirement(r).name for r in runtime) == [
        "httpx",
        "prefect",
        "prefect-email",
        "prefect-slack",
        "pydantic",
        "pyyaml",
    ]


def test_fresh_venv_imports_the_blocks_without_dev_or_pipeline_packages(
    plugin_python: Path,
) -> None:
    probe = (
        "import importlib.util, json\n"
        "from prefect.plugins import load_prefect_collections\n"
        "loaded = load_prefect_collections()\n"
        "from prefect.blocks.core import Block\n"
        f"slugs = [Block.get_block_class_from_key(k).__name__ for k in {SLUGS!r}]\n"
        f"absent = [m for m in {NOT_SHIPPED!r} if importlib.util.find_spec(m)]\n"
        "print(json.dumps({'collections': sorted(loaded), 'blocks': slugs, 'present': absent}))\n"
    )
    out = run(str(plugin_python), "-c", probe, cwd=plugin_python.parent)
    assert '"blocks": ["SlackAlert", "PagerDutyAlert", "EmailAlert"]' in out
    assert '"present": []' in out
    assert "pricecheck_alerts" in out


@pytest.fixture(scope="module")
def plugin_server(
    plugin_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPrefectServer]:
    server = LocalPrefectServer(home=tmp_path_factory.mktemp("plugin-home"))
    server.python = str(plugin_python)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_server_from_the_fresh_venv_delivers_through_every_block(
    plugin_server: LocalPrefectServer, receivers: Receivers
) -> None:
    stack = load_stack(ROOT, "local", receivers.urls())
    resources = compile_stack(load_catalog(ROOT), stack)
    secrets = resolve_secrets(ROOT, "local", receivers.urls())
    with plugin_server.as_current():
        apply_stack(resources, secrets, plugin_server.api_url)
        receivers.store.clear()
        send_signal(Signal.model_degraded, "accuracy", {"accuracy": 0.61, "baseline": 0.9})
    expected = Counter(
        Expected(channel, "model-degradation")
        for channel in ("slack-critical", "pagerduty", "email")
    )
    arrived = wait_for_alerts(receivers.store.all, expected, timeout=60)
    assert Counter(identify(d) for d in arrived) == expected
    assert all(d.status < 300 for d in arrived), [d.problem for d in arrived]
