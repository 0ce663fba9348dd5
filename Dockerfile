# syntax=docker/dockerfile:1
# The code location image: `dagster api grpc -m numerai_assets.definitions` on port 4000.
# docker-compose runs dagster-webserver and dagster-daemon from the same image (other commands).
#
#   CPU (default):  docker build -t numerai-tournament .
#   CUDA:           docker build --build-arg TORCH_VARIANT=cu128 -t numerai-tournament:cuda .
#
# TORCH_VARIANT picks the PyTorch wheel index (https://download.pytorch.org/whl/<variant>): `cpu`,
# or a CUDA build published for torch 2.13.0 (cu126, cu128, ...). The CUDA wheels bring their own
# CUDA runtime; the host needs only the NVIDIA driver and the NVIDIA Container Toolkit.
# Everything else is installed from PyPI with the exact pins of constraints.txt.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

# torch first, from the index of the chosen variant (its own dependencies come from there too),
# so that the PyPI install below finds `torch==2.13.0` satisfied and never pulls another build.
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY model_core ./model_core
COPY numerai_assets ./numerai_assets
COPY tournament_sim ./tournament_sim
RUN pip install --no-cache-dir -c constraints.txt . \
    && python -c "import torch, dagster_k8s, dagster_postgres, numerai_assets; print('torch', torch.__version__)"

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# A fixed numeric user, so Kubernetes' `runAsNonRoot` can check it.
ARG APP_UID=10001
ARG APP_GID=10001
RUN groupadd --gid "${APP_GID}" numerai \
    && useradd --uid "${APP_UID}" --gid numerai --create-home --home-dir /home/numerai \
        --shell /usr/sbin/nologin numerai \
    && mkdir -p /data /opt/dagster/dagster_home /opt/dagster/storage \
    && chown -R numerai:numerai /data /opt/dagster

COPY --from=builder /opt/venv /opt/venv
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/workspace.yaml

# NUMERAI_HOME (/data) and DAGSTER_STORAGE_DIR are volumes in docker-compose: the image's
# directories are owned by the app user, so fresh named volumes are too.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    DAGSTER_STORAGE_DIR=/opt/dagster/storage \
    NUMERAI_HOME=/data \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /home/numerai
USER ${APP_UID}:${APP_GID}

EXPOSE 4000

# The code location's health. The webserver and daemon services of docker-compose.yml override
# it with their own checks; Kubernetes ignores it (the Helm chart sets probes).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]

CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "numerai_assets.definitions"]
