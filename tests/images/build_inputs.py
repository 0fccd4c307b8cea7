"""What the image tests build from: the model images, the commit, the token planted around the
build, the CA given to it. Read by the fixtures (conftest.py) and the tests alike."""

from __future__ import annotations

import functools
import os
import secrets
import subprocess
import tomllib
from pathlib import Path

from tests.images.dockerutil import REPO

IMAGES_DIR = REPO / "images"
# Every image but the base: model images (model.toml), processing images (processing.toml).
IMAGES = sorted(
    p.name for p in IMAGES_DIR.iterdir() if p.name != "base" and (p / "Dockerfile").exists()
)
MODEL_IMAGES = [name for name in IMAGES if (IMAGES_DIR / name / "model.toml").exists()]
PROCESSING_IMAGES = [name for name in IMAGES if (IMAGES_DIR / name / "processing.toml").exists()]
# Put in every place a careless build could pick a token up from (.env in the build context,
# the builder's environment); the tests then look for it in the images.
SENTINEL_TOKEN = "pictrain-sentinel-" + secrets.token_hex(12)

TEST_REGISTRY = "pictrain-test"
TEST_TAG = os.environ.get("PICTRAIN_TEST_TAG", "test")
CUDA = os.environ.get("PICTRAIN_TEST_CUDA", "12.8")
FLAVOUR = {"12.8": "cu128", "13.0": "cu130"}[CUDA]


def image_tag(name: str) -> str:
    return f"{TEST_REGISTRY}/{name}:{TEST_TAG}-{FLAVOUR}"


@functools.cache
def checkout_sha() -> str:
    """The commit the test build is made from, as `make images` bakes it ("" outside git)."""
    proc = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def build_ca() -> Path | None:
    """The host's CA bundle, given to the build as the secret "ca" (as the Makefile's CA_CERT)."""
    ca = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    return ca if ca.is_file() else None


def default_model(name: str) -> str:
    return tomllib.loads((IMAGES_DIR / name / "model.toml").read_text())["model"]


def bake_env(base_image: str, pretrained_dir: Path) -> dict[str, str]:
    """The test build's bake variables, and a token where a careless build could take it."""
    env = {
        **os.environ,
        "CUDA": CUDA,
        "REGISTRY": TEST_REGISTRY,
        "TAG": TEST_TAG,
        "BASE_IMAGE": base_image,
        "GIT_SHA": checkout_sha(),
        "API_TOKEN": SENTINEL_TOKEN,
        "api_token": SENTINEL_TOKEN,
        "PICSELLIA_TOKEN": SENTINEL_TOKEN,
        "PRETRAINED_DIR": str(pretrained_dir),
    }
    ca = build_ca()
    if ca is not None:
        env["CA_CERT"] = str(ca)
    return env


def bake_overrides(pins: dict[str, str]) -> list[str]:
    """`docker buildx bake` flags that bake `pins` (per image) instead of docker-bake.hcl's."""
    return [f"--set={name}.args.PRETRAINED={pin}" for name, pin in pins.items()]
