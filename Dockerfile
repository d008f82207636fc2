# The Iris classifier service image (SPEC §1). Build from the repository root after training:
#   python -m model_training --output-dir model
#   docker build --build-arg MODEL_VERSION=$(jq -r .model_version model/metadata.json) -t iris .
# PYTHON_IMAGE may be any Debian-based image with python3 and python3-venv (python:3.11-slim, or a
# debootstrap bookworm image that has only `python3`, hence python3 everywhere below).
ARG PYTHON_IMAGE=python:3.11-slim

# --- model: fail early, and say why, when the model was not trained before the build -------------------
FROM ${PYTHON_IMAGE} AS model
WORKDIR /build
# The wildcard lets the build reach the check below when model/ is absent (a plain COPY model/ would stop
# with an obscure "not found"); requirements/runtime.txt always exists and keeps the COPY non-empty.
COPY requirements/runtime.txt model* /build/model/
RUN test -f /build/model/iris_model.onnx -a -f /build/model/metadata.json \
    || { echo "model/ is missing: run python -m model_training first" >&2; exit 1; } \
    && rm /build/model/runtime.txt

# --- builder: the runtime dependencies in a virtualenv, nothing else ------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements/runtime.txt requirements/runtime.txt
# pip and setuptools are not needed at run time; removing them keeps their advisories out of the image.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements/runtime.txt \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

# --- runtime -------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:${PATH}" \
    MODEL_DIR=/app/model \
    PORT=5000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=model /build/model/ /app/model/
COPY app/ /app/app/

USER 10001:10001
# Build metadata last. These values change with every build, and a build arg invalidates the cache of every
# RUN after its ARG (and a LABEL that uses one, every step after it). Declared after the last layer, they
# leave the user and venv layers cached with the same digests: the registry already holds those layers,
# so a push skips them, and Trivy's cache already has their analysis, so trivy-image does too.
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
ARG SOURCE_URL=unknown
ARG MODEL_VERSION=unknown
LABEL org.opencontainers.image.title="iris-classifier" \
      org.opencontainers.image.description="Iris species classifier (scikit-learn -> ONNX) behind Flask and granian" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      io.mlops.model.version="${MODEL_VERSION}"
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '5000'), timeout=2)"]
# granian (app/serve.py): the app built once, then 2 workers x 4 threads; SIGTERM drains in-flight requests.
CMD ["python3", "-m", "app.serve"]
