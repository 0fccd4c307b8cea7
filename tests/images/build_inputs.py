"""What the image tests build from: the model images, the commit, the token planted around the
build, the CA given to it. Read by the fixtures (conftest.py) and the tests alike."""

from __future__ import annotations

import functools
import os
import secrets
import subprocess
from pathlib import Path

from tests.images.dockerutil import REPO

IMAGES_DIR = REPO / "images"
MODEL_IMAGES = sorted(
    p.name for p in IMAGES_DIR.iterdir() if p.name != "base" and (p / "Dockerfile").exists()
)
# Put in every place a careless build could pick a token up from (.env in the build context,
# the builder's environment); the tests then look for it in the images.
SENTINEL_TOKEN = "pictrain-sentinel-" + secrets.token_hex(12)


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
