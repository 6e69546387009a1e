# bert-serving container image.
#
#   docker build -t bert-serving .                                        # GPU (CUDA 13, cuDNN 9)
#   docker build -t bert-serving:cpu --build-arg BASE_IMAGE=ubuntu:24.04 .  # CPU, same steps
#   docker build -t bert-serving:baked --target baked --build-arg MODEL_SRC=models/bert .
#
#   docker run --gpus all -p 5555:5555 -p 5556:5556 -p 8125:8125 \
#       -v "$PWD/models/bert:/model:ro" -v bert-cache:/cache bert-serving -model_dir /model
#
# Stages: `base` installs; `export` converts MODEL_SRC at build time; `baked` is base plus
# that graph; `runtime` (the last stage, so the default target) is base as it is.
# onnxruntime-gpu runs on CPU too, so the CPU image differs only in BASE_IMAGE.
ARG BASE_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

FROM ${BASE_IMAGE} AS base
ARG DEBIAN_FRONTEND=noninteractive
# Versions come from the pinned base image's Ubuntu release; pinning apt versions on top
# would break the build each time Ubuntu publishes a security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

# Only what the install needs; tests, docs and the rest of the context stay out.
COPY pyproject.toml README.md /tmp/bert-serving/
COPY proto /tmp/bert-serving/proto
COPY client /tmp/bert-serving/client
COPY server /tmp/bert-serving/server
COPY deploy/install.sh /tmp/bert-serving/deploy/install.sh
RUN sh /tmp/bert-serving/deploy/install.sh /tmp/bert-serving \
    && rm -rf /tmp/bert-serving

# Converted graphs go to /cache (mount a volume there so a restart skips conversion).
RUN useradd --system --uid 10001 --create-home --home-dir /home/bert bert \
    && mkdir -p /cache /model \
    && chown bert:bert /cache
ENV BERT_SERVING_CACHE=/cache
USER 10001:10001
WORKDIR /home/bert

EXPOSE 5555 5556 8125
# /health answers once the HTTP gateway is up; the start period covers a first conversion.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8125/health', timeout=4)"]
ENTRYPOINT ["bert-serving-start", "-http_port", "8125", "-bind_ip", "*"]
CMD []


# Converts MODEL_SRC (a model folder in the build context) once, at build time. EXPORT_ARGS
# must make the graph the serving device runs: -gpu (fp16, fused) for the CUDA image,
# nothing (fp32) or -int8 for the CPU image, plus any pooling flags; start the container
# with the same pooling flags.
FROM base AS export
ARG MODEL_SRC=model
ARG EXPORT_ARGS=-gpu
COPY ${MODEL_SRC} /tmp/model-src
# EXPORT_ARGS is unquoted on purpose: it holds several flags (or none).
RUN bert-serving-export -model_dir /tmp/model-src -graph_tmp_dir /tmp/graph-cache \
        ${EXPORT_ARGS} -o /home/bert/model/model.onnx \
    && rm -rf /tmp/graph-cache


# The server with the graph inside: it starts without converting, and without the checkpoint
# (the export stage's layers, which hold it, are not part of this image).
FROM base AS baked
COPY --from=export /home/bert/model /model
CMD ["-model_dir", "/model/model.onnx"]


# The default target: the server, converting -model_dir (or the embedded MiniLM) on first
# start into /cache.
FROM base AS runtime
