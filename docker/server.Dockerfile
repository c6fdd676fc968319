# syntax=docker/dockerfile:1
# The Prefect server image: Prefect 3.9.1 (the version pyproject.toml pins) plus this
# project's wheel, so that the server finds the pricecheck-alerts notification blocks
# through the package's `prefect.collections` entry point. Only the package's runtime
# dependencies, at the versions in uv.lock: no flows, tests, devtools or Pulumi.
#
# Build from the repository root (the build context):
#   docker build -f docker/server.Dockerfile -t ghcr.io/pricechecktn/prefect-server:<tag> .
# Build arg WITH_REDIS=true adds the `redis` extra (prefect-redis at its uv.lock version) for
# the scale path's Redis messaging between several server replicas (the base image may ship
# a prefect-redis of its own; this pins the one the scale test ran with):
#   docker build -f docker/server.Dockerfile --build-arg WITH_REDIS=true -t … .

ARG PREFECT_IMAGE=prefecthq/prefect:3.9.1-python3.11
ARG BUILDER_IMAGE=python:3.11.17-slim-trixie

# --- builder: the wheel and the locked, hashed requirements of its runtime dependencies ----
FROM ${BUILDER_IMAGE} AS builder

ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

ENV UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1

WORKDIR /build
# infra/pyproject.toml only because infra/ is a workspace member; nothing of it is built.
COPY pyproject.toml uv.lock README.md ./
COPY infra/pyproject.toml infra/pyproject.toml
COPY src/ src/

ARG WITH_REDIS=false
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN extras=(); \
    if [ "${WITH_REDIS}" = "true" ]; then extras=(--extra redis); fi; \
    uv build --wheel --package pricecheck-alerts --out-dir /dist \
    && uv export --frozen --no-dev --package pricecheck-alerts --no-emit-workspace \
       "${extras[@]}" --format requirements.txt --output-file /dist/requirements.txt

# --- the server ----------------------------------------------------------------------------
FROM ${PREFECT_IMAGE}

LABEL org.opencontainers.image.title="pricechecktn-prefect-server" \
      org.opencontainers.image.description="Prefect server with the pricecheck-alerts notification blocks"

# The locked runtime dependencies (hash-checked; prefect==3.9.1 is already the base's), then
# the wheel itself without letting pip resolve anything else. The builder's /dist is
# bind-mounted, not copied: neither the wheel nor the requirements stay in a layer.
# Then fail the build if the server could not find the blocks' entry point.
RUN --mount=type=bind,from=builder,source=/dist,target=/tmp/dist \
    pip install --no-cache-dir --disable-pip-version-check --require-hashes \
        -r /tmp/dist/requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check --no-deps \
        /tmp/dist/pricecheck_alerts-*.whl \
    && python -c "from importlib.metadata import entry_points as e; \
assert 'pricecheck_alerts' in {p.name for p in e(group='prefect.collections')}"

# Non-root at runtime. The server keeps its state under PREFECT_HOME (the SQLite database
# when PREFECT_API_DATABASE_CONNECTION_URL is not set): mount a volume there.
# The base entrypoint's EXTRA_PIP_PACKAGES cannot install as this user: bake packages in here.
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" prefect \
    && useradd --system --uid "${APP_UID}" --gid prefect \
       --home-dir /home/prefect --create-home --shell /usr/sbin/nologin prefect
ENV PREFECT_HOME=/home/prefect/.prefect
USER ${APP_UID}:${APP_UID}

EXPOSE 4200
CMD ["prefect", "server", "start", "--host", "0.0.0.0"]
