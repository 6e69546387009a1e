# bert-serving container image.
#
#   docker build -t bert-serving:cpu .                                        # CPU
#   docker build -t bert-serving:gpu --build-arg SERVER_EXTRA=gpu .           # GPU (CUDA 13)
#   docker build -t bert-serving:baked --target baked --build-arg MODEL_SRC=models/bert .
#
#   docker run -p 127.0.0.1:5555:5555 -p 127.0.0.1:5556:5556 -p 127.0.0.1:8125:8125 \
#       -v bert-cache:/cache bert-serving:cpu -cpu
#
# Offline (air-gapped): `sh deploy/make_wheelhouse.sh [server|gpu]` on a host that reaches
# PyPI fills deploy/wheelhouse/, then `--build-arg OFFLINE=1` installs from it alone.
# buildah and podman build OCI images by default, which have no HEALTHCHECK: build with
# `--format docker` to keep it (Docker's builders, classic and BuildKit, always keep it).
#
# Stages: `python` is the base image with Python and the runtime user; `deps` installs the
# dependencies from pyproject.toml and the lock file only (a code change does not redo that
# layer); `wheel` builds the project's own wheel; `base` is the server (the deps' venv plus
# that wheel); `export` converts MODEL_SRC at build time; `baked` is base plus that graph;
# `runtime` (the last stage, so the default target) is base as it is.
#
# SERVER_EXTRA picks the onnxruntime build: `server` (the CPU wheel) or `gpu`
# (onnxruntime-gpu with CUDA 13 and cuDNN 9 as pip packages; the host needs the NVIDIA
# driver and Container Toolkit, nothing else). Python comes from the base image: Debian 12's
# 3.11 is what deploy/constraints.txt was resolved for.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS python
ARG DEBIAN_FRONTEND=noninteractive
# Versions come from the pinned base image's release; pinning apt versions on top would
# break the build each time Debian publishes a security update. A base that already has
# Python and venv (CI's debootstrapped one) needs no apt, and no network, here.
# hadolint ignore=DL3008
RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi
# The runtime user and its own group, both 10001, as USER, runAsGroup and fsGroup expect.
RUN groupadd --system --gid 10001 bert \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/bert bert
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1


FROM python AS deps
ARG SERVER_EXTRA=server
ARG OFFLINE=0
# Only what the dependency install reads: pyproject.toml, the lock file, the install steps
# and the wheelhouse (a README alone unless deploy/make_wheelhouse.sh filled it).
COPY pyproject.toml /tmp/bert-serving/
COPY deploy/install.sh deploy/requirements.py deploy/constraints.txt /tmp/bert-serving/deploy/
COPY deploy/wheelhouse /tmp/wheelhouse
ENV BERT_SERVING_EXTRA=${SERVER_EXTRA}
RUN if [ "$OFFLINE" = 1 ]; then export BERT_SERVING_WHEELHOUSE=/tmp/wheelhouse; fi \
    && python3 -m venv /opt/venv \
    && sh /tmp/bert-serving/deploy/install.sh deps /tmp/bert-serving


FROM deps AS wheel
ARG OFFLINE=0
COPY README.md /tmp/bert-serving/
COPY proto /tmp/bert-serving/proto
COPY client /tmp/bert-serving/client
COPY server /tmp/bert-serving/server
RUN if [ "$OFFLINE" = 1 ]; then export BERT_SERVING_WHEELHOUSE=/tmp/wheelhouse; fi \
    && sh /tmp/bert-serving/deploy/install.sh wheel /tmp/bert-serving /tmp/dist


FROM python AS base
# The dependencies' layer changes only with pyproject.toml or the lock; the project's wheel
# is a layer of its own (kilobytes) on top.
COPY --from=deps /opt/venv /opt/venv
COPY --from=deps /tmp/bert-serving/deploy/install.sh /tmp/install.sh
COPY --from=wheel /tmp/dist /tmp/dist
RUN sh /tmp/install.sh project /tmp/dist && rm -rf /tmp/dist /tmp/install.sh

# Converted graphs go to /cache (mount a volume there so a restart skips conversion).
RUN mkdir -p /cache /model && chown bert:bert /cache
ENV BERT_SERVING_CACHE=/cache
USER 10001:10001
WORKDIR /home/bert

EXPOSE 5555 5556 8125
# /health answers once the HTTP gateway is up; the start period covers a first conversion.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8125/health', timeout=4)"]
ENTRYPOINT ["bert-serving-start", "-http_port", "8125", "-bind_ip", "*"]
CMD []


# Converts MODEL_SRC (a model folder in the build context) once, at build time; the default,
# deploy/baked-model, holds no model, and then the embedded MiniLM is exported. (The classic
# builder runs this stage for every target, so it must succeed without arguments.)
# EXPORT_ARGS must make the graph the serving device runs: nothing (fp32) or -int8 for a CPU
# image, -gpu (fp16, fused) for SERVER_EXTRA=gpu, plus any pooling flags; start the
# container with the same pooling flags.
FROM base AS export
ARG MODEL_SRC=deploy/baked-model
ARG EXPORT_ARGS=
COPY ${MODEL_SRC} /tmp/model-src
# EXPORT_ARGS and $source are unquoted on purpose: they hold several words (or none).
# hadolint ignore=SC2086
RUN source="-model_dir /tmp/model-src"; \
    if [ -z "$(find /tmp/model-src -mindepth 1 -maxdepth 1 ! -name README.md)" ]; then \
        source=; \
    fi; \
    bert-serving-export $source -graph_tmp_dir /tmp/graph-cache ${EXPORT_ARGS} \
        -o /home/bert/model/model.onnx \
    && rm -rf /tmp/graph-cache


# The server with the graph inside: it starts without converting, and without the checkpoint
# (the export stage's layers, which hold it, are not part of this image). COPY makes the
# files root's: the runtime user reads /model and cannot change it.
FROM base AS baked
COPY --from=export --chown=0:0 /home/bert/model /model
CMD ["-model_dir", "/model/model.onnx"]


# The default target: the server, converting -model_dir (or the embedded MiniLM) on first
# start into /cache.
FROM base AS runtime
