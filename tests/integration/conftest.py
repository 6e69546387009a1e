"""The container images, built once per session for every container test (containers.py).

`runtime_image` and `baked_image` are the Dockerfile's two targets, built offline on a
base image podman can run: BERT_SERVING_TEST_BASE_IMAGE, or a local debootstrap
(deploy/make_base_image.sh) made once, with deploy/wheelhouse filled on this host.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from containers import build, check_podman, make_base_image, make_wheelhouse, podman

BASE_IMAGE = os.environ.get("BERT_SERVING_TEST_BASE_IMAGE", "")


@pytest.fixture(scope="session")
def base_image() -> str:
    """A base image podman can run: the named one, or a local debootstrap made once."""
    check_podman()
    if BASE_IMAGE:
        podman("image", "exists", BASE_IMAGE)
        return BASE_IMAGE
    image = "localhost/bert-serving-base:test"
    make_base_image(image)
    return image


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    return make_wheelhouse()


@pytest.fixture(scope="session")
def runtime_image(base_image: str, wheelhouse: Path) -> str:
    """The default target: the server, converting its model on first start into /cache."""
    return build("runtime", base_image)


@pytest.fixture(scope="session")
def baked_image(base_image: str, wheelhouse: Path) -> str:
    """The server with the embedded MiniLM's graph inside, at /model/model.onnx."""
    return build("baked", base_image)
