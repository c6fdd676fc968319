"""The alerting config as it was at a git revision, written out for the loaders to read.

`pricecheck-alerts diff` compares a stack at a base revision with the working tree. Rather
than teach the loaders to read from git, the files they read (`loader.is_config_file`:
`automations/**`, `infra/Pulumi.<stack>.yaml`, `prefect.yaml`, the flows and the runbooks)
are copied out of the revision into a temporary folder laid out like the project, so the
base side goes through exactly the validation the working tree does (`load_catalog`,
`load_stack`), with no second reader to drift from the first.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pricecheck_alerts.config.loader import CONFIG_ROOTS, is_config_file

_CONFIG_FOLDER = "automations"


class RevisionError(Exception):
    """git cannot give us the revision (not a repository, unknown ref, git missing).
    One line, fit to print after `error: `."""


@dataclass(frozen=True)
class Revision:
    """A ref as the user typed it and the commit it named when we read it."""

    ref: str
    commit: str

    @property
    def label(self) -> str:
        """`origin/main (1a2b3c4d5e6f)`: the name for people, the commit for the record."""
        short = self.commit[:12]
        return short if self.ref == self.commit else f"{self.ref} ({short})"


def _git(root: Path, args: list[str], failure: str | None = None) -> bytes:
    """Run git in `root` (paths are then relative to the project root, which may be a
    subfolder of the repository). `failure` replaces git's own message when given."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise RevisionError("git is not installed; it is needed to read the base revision") from exc
    if done.returncode != 0:
        if failure is not None:
            raise RevisionError(failure)
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[0].removeprefix("fatal: ") if lines else f"exit {done.returncode}"
        raise RevisionError(f"git {args[0]}: {detail}")
    return done.stdout


def resolve(root: Path, ref: str) -> Revision:
    """The commit `ref` names in the repository holding `root`."""
    _git(
        root,
        ["rev-parse", "--is-inside-work-tree"],
        f"{root} is not inside a git repository (needed to read the base revision)",
    )
    unknown = f"unknown git revision '{ref}' (no such branch, tag or commit)"
    if not ref or ref.startswith("-"):
        raise RevisionError(unknown)
    out = _git(
        root, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], unknown
    )
    return Revision(ref=ref, commit=out.decode().strip())


def materialise(root: Path, revision: Revision, dest: Path) -> Path:
    """Write the config files of `revision` under `dest` and return `dest`, a folder
    `load_catalog` and `load_stack` read like the project root."""
    listing = _git(root, ["ls-tree", "-r", "-z", revision.commit, "--", *CONFIG_ROOTS])
    found = False
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, oid = meta.decode().split()
        path = PurePosixPath(os.fsdecode(raw_path))
        if kind != "blob" or ".." in path.parts or path.is_absolute() or not is_config_file(path):
            continue  # submodules, and anything that could step outside `dest`
        target = dest.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        content = _git(root, ["cat-file", "blob", oid])
        if mode == "120000":  # a symlink: git stores its target as the blob
            target.symlink_to(os.fsdecode(content))
        else:
            target.write_bytes(content)
        found = found or path.parts[0] == _CONFIG_FOLDER
    if not found:
        raise RevisionError(
            f"{revision.label} has no {_CONFIG_FOLDER}/ folder at this project's path"
        )
    return dest


@contextmanager
def config_at(root: Path, ref: str) -> Iterator[tuple[Revision, Path]]:
    """The revision `ref` names and a temporary project folder holding its alerting config;
    the folder is removed on exit."""
    revision = resolve(root, ref)
    with tempfile.TemporaryDirectory(prefix="pricecheck-alerts-") as tmp:
        yield revision, materialise(root, revision, Path(tmp))
