#!/bin/sh
# Makes a local base image for the Dockerfile's BASE_IMAGE, where no registry is reachable:
# Debian (this host's release) from the mirror apt is configured with, minbase plus Python
# and venv, imported into podman. Needs root, debootstrap and podman.
#
#   sh deploy/make_base_image.sh [IMAGE]   # default localhost/bert-serving-base:<codename>
#   podman build --build-arg BASE_IMAGE=localhost/bert-serving-base:bookworm ...
set -eu

# shellcheck disable=SC1091
. /etc/os-release
suite=${VERSION_CODENAME:?/etc/os-release names no release}
image=${1:-localhost/bert-serving-base:$suite}
# The first non-security mirror that serves this release's package lists. The $(...) are
# apt's own placeholders, not the shell's.
# shellcheck disable=SC2016
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' \
    | awk -v suite="$suite" '$2 == suite { print $1; exit }')
[ -n "$mirror" ] || { echo "apt has no mirror for $suite" >&2; exit 2; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv "$suite" "$root" "$mirror"
tar -C "$root" -c . | podman import - "$image"
echo "made $image from $mirror ($suite)"
