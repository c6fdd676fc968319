"""Run a Pulumi Python program the way the engine's language host does, against the SDK's
mocks, and print what it registered as JSON.

The Pulumi CLI cannot run here, so this reproduces its launch instead. From pulumi/pulumi:
- `pkg/engine/project.go` (`getPwdMain`): for `main: __main__.py` (a file) the working
  directory is the file's folder and the entry point is the bare file name;
- `sdk/python/cmd/pulumi-language-python/main.go`: the host runs this interpreter of the
  project's virtualenv with `--project --stack --pwd ... <entrypoint>` and hands the config
  over in `PULUMI_CONFIG` (JSON, `namespace:key` → string; structured values as JSON text)
  and `PULUMI_CONFIG_SECRET_KEYS`; it does not set PYTHONPATH;
- `sdk/python/cmd/pulumi-language-python-exec`: `set_all_config(get_config_env(),
  get_config_secret_keys_env())`, `os.chdir(pwd)`, then `runpy.run_path(program,
  run_name="__main__")`, waiting for every output. `run_path` of a *file* does not put its
  folder on sys.path, so the program can import only what the virtualenv has installed.

This file lives outside `infra/`, as Pulumi's exec script lives in Pulumi's own bin folder:
the folder of the script is sys.path[0], and it holds nothing the program imports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime.config import get_config_env, get_config_secret_keys_env

# The recording mocks, found after everything the virtualenv has (appended, not inserted,
# so nothing here can stand in for an installed package).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from devtools.pulumi_mocks import FakeClouds, RecordingMonitor, StackRun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--pwd", required=True)
    parser.add_argument("program")
    args = parser.parse_args()

    # The exec script's loop: the SDK creates its futures on the current one.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_all_config(get_config_env(), get_config_secret_keys_env())
    run = StackRun(args.stack)
    pulumi.runtime.set_mocks(
        FakeClouds(),
        project=args.project,
        stack=args.stack,
        preview=False,
        monitor=RecordingMonitor(run),
    )
    exported: dict[str, Any] = {}
    pulumi.export = exported.__setitem__  # type: ignore[assignment]
    os.chdir(args.pwd)
    program_dir = Path(args.program).resolve().parent
    on_path = [p for p in sys.path if p and Path(p).resolve() == program_dir]

    # Under mocks the SDK registers the root stack itself, so the program runs through
    # `pulumi.runtime.test`, which (like `run_in_stack`) waits for every pending output.
    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        runpy.run_path(args.program, run_name="__main__")
        return pulumi.Output.all(**exported).apply(run.exports.update)

    program()
    print(json.dumps({**run.to_json(), "program_dir_on_sys_path": bool(on_path)}, default=str))


if __name__ == "__main__":
    main()
