# syntax=docker/dockerfile:1
# The PriceCheckTN pipeline image: what the Kubernetes work pools (pricechecktn-staging,
# pricechecktn-prod; `workPool.jobVariables.image` in infra/Pulumi.<stack>.yaml) run.
# It holds the flows' locked dependencies (the project plus its `pipeline` extra, from
# uv.lock), the pricecheck-alerts package itself (the flows import it), and flows/,
# automations/ and prefect.yaml at /opt/pricechecktn, where the deployments' pull step
# `set_working_directory` points.
#
# Build from the repository root (the build context):
#   docker build -f docker/pipeline.Dockerfile -t ghcr.io/pricechecktn/pipeline:<tag> .

ARG PYTHON_IMAGE=python:3.11.17-slim-trixie

# --- builder: resolve nothing, install exactly uv.lock into /opt/venv ------------------------
FROM ${PYTHON_IMAGE} AS builder

# uv from PyPI, the same version the Makefile installs into .tools/.
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

# The image's own interpreter, a venv outside the source tree, compiled bytecode, real copies
# (the venv is copied to the final stage, so no hard links into uv's cache).
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

WORKDIR /build

# Dependencies first (a layer that only changes with the lock). infra/pyproject.toml is
# there only because infra/ is a workspace member; --no-dev leaves Pulumi out.
COPY pyproject.toml uv.lock README.md ./
COPY infra/pyproject.toml infra/pyproject.toml
RUN uv sync --frozen --no-dev --extra pipeline --no-install-project --no-install-workspace

# Then the package itself, installed as a regular (non-editable) wheel into /opt/venv.
COPY src/ src/
RUN uv sync --frozen --no-dev --extra pipeline --no-editable

# --- runtime -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="pricechecktn-pipeline" \
      org.opencontainers.image.description="PriceCheckTN Prefect flows and their locked dependencies"

ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" pricechecktn \
    && useradd --system --uid "${APP_UID}" --gid pricechecktn \
       --home-dir /home/pricechecktn --create-home --shell /usr/sbin/nologin pricechecktn \
    && install --directory --owner=pricechecktn --group=pricechecktn /var/lib/pricechecktn

COPY --from=builder /opt/venv /opt/venv

# /opt/pricechecktn is on sys.path so that `flows.*` imports resolve whatever the entrypoint;
# the pipeline's state (snapshots, model, drift baseline) goes to a writable volume-able dir.
ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/opt/pricechecktn \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PRICECHECK_STATE_DIR=/var/lib/pricechecktn/state

WORKDIR /opt/pricechecktn
# Owned by root, read-only for the runtime user: the code is not for the flows to rewrite.
COPY flows/ flows/
COPY automations/ automations/
COPY prefect.yaml ./

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER ${APP_UID}:${APP_UID}

# Fails the build if the package, the pipeline extra or the flows cannot be imported.
RUN python -c "import pricecheck_alerts, sklearn, selectolax, rapidfuzz, flows.pipeline"
