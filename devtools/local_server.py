"""Start and stop a real local Prefect server (SQLite) for the demo and the tests.

One class for both so that what the tests exercise is what `make demo` runs. The server runs
in its own process group with its own PREFECT_HOME, so it never touches a user's profile.

With an `auth_string` (`user:password`) the server is the shape staging and prod run: basic
auth on every API route but the health probes (PREFECT_SERVER_API_AUTH_STRING) and CSRF
protection on; its clients (`env`, `as_current`, and so every worker, deploy and flow run
started from them) carry the same string as PREFECT_API_AUTH_STRING.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(count: int, start: int = 20000, stop: int = 30000) -> int:
    """`count` consecutive loopback ports that can all be bound now (the first is returned),
    searched below Linux's ephemeral range (32768+) so outgoing connections do not take
    them, from a random point so two callers do not race for the same block."""
    bases = list(range(start, stop - count, count))
    first = random.randrange(len(bases))
    for base in bases[first:] + bases[:first]:
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports in {start}-{stop}")


def redis_messaging_env(redis_url: str) -> dict[str, str]:
    """Settings for the scale path: events, caches, ordering and leases in Redis
    (prefect-redis), so several server replicas can share them."""
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": redis_url,
    }


POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
"""The scale path's PostgreSQL (trust auth), as this machine and CI run it."""


def _psql(sql: str) -> None:
    connect = ["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
    subprocess.run(
        ["psql", *connect, "-c", sql],
        check=True,
        capture_output=True,
    )


@contextmanager
def scale_backend(prefix: str, redis_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """What one server of the scale path needs: a fresh PostgreSQL database (dropped on
    exit, after the server stopped) and an emptied Redis database. Yields the database URL
    and the messaging settings. Each server gets its own Redis database: two servers on one
    take each other's messages."""
    import redis

    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _psql(f"CREATE DATABASE {database}")
    redis.Redis.from_url(redis_url).flushdb()
    try:
        yield f"{POSTGRES}/{database}", redis_messaging_env(redis_url)
    finally:
        _psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


AUTH_STRING_VARS = ("PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING")


def auth_env(auth_string: str | None) -> dict[str, str]:
    """Basic auth for a server and its clients, or nothing for an open server. The server
    checks PREFECT_SERVER_API_AUTH_STRING; every client (this process, workers, `prefect
    deploy`, flow runs, the events websocket) sends PREFECT_API_AUTH_STRING. CSRF
    protection is on as on a server a browser can reach; Prefect's clients fetch a token
    by themselves."""
    if auth_string is None:
        return {}
    return {
        **dict.fromkeys(AUTH_STRING_VARS, auth_string),
        "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "true",
    }


def server_env(home: Path, port: int, database_url: str | None = None) -> dict[str, str]:
    """Environment for a server (and its clients) isolated under `home`."""
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
        "PREFECT_API_URL": f"{url}/api",
        "PREFECT_UI_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url
        or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        # A run counts as Late 60 s after it was due here, not Prefect's 15 s: on a loaded
        # laptop or CI runner a worker that is still starting must not look like a dead one.
        "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "60",
    }
    return env


@dataclass
class LocalPrefectServer:
    """A `prefect server start` subprocess on 127.0.0.1."""

    home: Path
    port: int = field(default_factory=free_port)
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # The interpreter whose environment serves (e.g. a virtualenv with only the wheel).
    python: str = sys.executable
    process: subprocess.Popen[bytes] | None = None
    # `user:password`: basic auth and CSRF protection, as on staging and prod (`auth_env`).
    auth_string: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def env(self) -> dict[str, str]:
        """The server's environment, and its clients': with `auth_string`, both sides of
        the basic auth; without, no auth variable at all (not even one this process
        inherited), so an open server's clients never send a stray credential."""
        env = server_env(self.home, self.port, self.database_url)
        for key in AUTH_STRING_VARS:
            env.pop(key, None)
        return {**env, **auth_env(self.auth_string), **self.extra_env}

    def start(self, timeout: float = 90.0) -> LocalPrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.python,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_healthy(timeout)
        (self.home / "server.pid").write_text(str(self.process.pid))
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Prefect server exited with {self.process.returncode}; "
                    f"see {self.home / 'server.log'}"
                )
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"Prefect server not healthy after {timeout:.0f}s")

    @contextmanager
    def as_current(self) -> Iterator[None]:
        """Point this process at the server: its environment (inherited by the flow-run
        subprocesses) and Prefect's settings, which were read when prefect was imported."""
        import prefect.context
        from prefect.settings import (
            PREFECT_API_AUTH_STRING,
            PREFECT_API_URL,
            PREFECT_UI_URL,
            temporary_settings,
        )

        saved = dict(os.environ)
        env = self.env
        auth = {PREFECT_API_AUTH_STRING: self.auth_string} if self.auth_string else {}
        for key in AUTH_STRING_VARS:
            os.environ.pop(key, None)
        os.environ.update({k: v for k, v in env.items() if k.startswith("PREFECT_")})
        try:
            with (
                temporary_settings(
                    {PREFECT_API_URL: self.api_url, PREFECT_UI_URL: self.url, **auth},
                    # An open server's clients send no credential, whatever this process had.
                    restore_defaults=() if auth else {PREFECT_API_AUTH_STRING},
                ),
                # Threads Prefect starts itself (the concurrency-slot service, for one) do
                # not inherit this context: make the settings process-global too, as
                # Prefect's own test harness does, or they start a throwaway server.
                prefect.context._temporary_global_settings_context(
                    prefect.context.get_settings_context()
                ),
            ):
                yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
