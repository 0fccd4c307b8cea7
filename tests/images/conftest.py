"""Fixtures for the image tests: one bake build per session, on a local stand-in base.

The tests that need a Docker daemon are marked `images` and skip, with the reason, when none
answers (`make test` on CI); `make test-images` starts one. The static tests (bake file,
Dockerfiles, hadolint) need no daemon.

Environment:
  DOCKER                     the docker CLI (default: `docker` with buildx, else .tools/docker)
  PICTRAIN_TEST_BASE_IMAGE   the base to build on: unset = the local stand-in (made by
                             scripts/make-stand-in-base.sh, needs root) when it can be had, else
                             the real nvidia/cuda base; "" = the real base (registry needed)
  PICTRAIN_TEST_CUDA         the flavour to build (default 12.8)
  PICTRAIN_TEST_TAG          the tag the images are built under (default "test"): several
                             checkouts sharing one daemon keep their images apart
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.images.build_inputs import (
    IMAGES_DIR,
    MODEL_IMAGES,
    PROCESSING_IMAGES,
    SENTINEL_TOKEN,
    bake_env,
    bake_overrides,
    default_model,
    image_tag,
)
from tests.images.dockerutil import REPO, Docker, daemon_problem, docker_cli


@pytest.fixture(scope="session")
def docker() -> Docker:
    cli = docker_cli()
    problem = daemon_problem(cli)
    if problem:
        pytest.skip(f"image tests need a Docker daemon: {problem}; `make test-images` starts one")
    assert cli is not None
    d = Docker(cli)
    yield d
    d.cleanup()


@pytest.fixture(scope="session")
def base_image(docker: Docker) -> str:
    """The BASE_IMAGE the test build uses ("" = the real nvidia/cuda one)."""
    if "PICTRAIN_TEST_BASE_IMAGE" in os.environ:
        return os.environ["PICTRAIN_TEST_BASE_IMAGE"]
    proc = subprocess.run(
        [str(REPO / "scripts" / "make-stand-in-base.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DOCKER": docker.cli},
    )
    if proc.returncode == 0:
        return proc.stdout.strip().splitlines()[-1]
    # No stand-in (not root, no debootstrap): a machine that can reach the registry.
    sys.stderr.write(f"stand-in base unavailable, building on nvidia/cuda:\n{proc.stderr}\n")
    return ""


@pytest.fixture(scope="session")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the bake build reads, plus a user's .env holding a (fake) token."""
    root = tmp_path_factory.mktemp("context")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".pytest_cache")
    for name in ("docker-bake.hcl", ".dockerignore"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(IMAGES_DIR, root / "images", ignore=ignore)
    (root / "shared").mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        if (REPO / "shared" / name).exists():
            shutil.copy2(REPO / "shared" / name, root / "shared" / name)
    shutil.copytree(REPO / "shared" / "src", root / "shared" / "src", ignore=ignore)
    dotenv = f"API_TOKEN={SENTINEL_TOKEN}\nORGANIZATION_ID=00000000-0000-0000-0000-000000000000\n"
    for where in (root, root / "shared", root / "images" / MODEL_IMAGES[0]):
        (where / ".env").write_text(dotenv)
    return root


@pytest.fixture(scope="session")
def pretrained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test build's `PRETRAINED_DIR`: the files `baked_weights` makes."""
    folder = tmp_path_factory.mktemp("pretrained")
    folder.chmod(0o755)  # the build step reads it as the image's user
    return folder


@pytest.fixture(scope="session")
def baked_weights(pretrained_dir: Path) -> dict[str, str]:
    """The pretrained weights the test build bakes instead of the release's: a small untrained
    checkpoint of each image's default model, made here (RT-DETR's would be 64 MB: that image
    bakes none, and shows that a run then starts from scratch). {image: "<model>=<sha256>" or
    ""}, as docker-bake.hcl's PRETRAINED gives them."""
    from ultralytics import YOLO

    pins = {}
    for name in MODEL_IMAGES:
        model = default_model(name)
        if model.startswith("rtdetr"):
            pins[name] = ""
            continue
        path = pretrained_dir / f"{model}.pt"
        YOLO(f"{model}.yaml").save(str(path))
        path.chmod(0o644)
        pins[name] = f"{model}={hashlib.sha256(path.read_bytes()).hexdigest()}"
    return pins


@pytest.fixture(scope="session")
def built(
    docker: Docker,
    base_image: str,
    build_context: Path,
    pretrained_dir: Path,
    baked_weights: dict[str, str],
) -> dict[str, str]:
    """Bake group "default" once: {target name: image tag}. Its log is kept next to the copy."""
    env = bake_env(base_image, pretrained_dir)
    log = build_context / "bake.log"
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            [
                *(docker.cli, "buildx", "bake", "--progress=plain", "--load"),
                *bake_overrides(baked_weights),
                "default",
            ],
            cwd=build_context,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=3600,
        )
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        pytest.fail(f"bake failed ({proc.returncode}); log {log}:\n{log.read_text()[-6000:]}")
    sys.stderr.write(f"\nimages built in {seconds:.0f} s (base {base_image or 'nvidia/cuda'})\n")
    return {name: image_tag(name) for name in ["base", *MODEL_IMAGES, *PROCESSING_IMAGES]}


@pytest.fixture(params=MODEL_IMAGES)
def model_image(request: pytest.FixtureRequest, built: dict[str, str]) -> str:
    """Each model image in turn: what holds for the base must hold for every image on it."""
    return built[request.param]


@pytest.fixture(params=["yolov8-detection"])
def detection_image(request: pytest.FixtureRequest, built: dict[str, str]) -> str:
    """For the heavy checks (layer scan, a training run): the model images differ from each
    other only by their model.toml and weights layers, so one of them stands for all. Its name
    is in the test ids, so `make test-image-yolov8-detection` (-k '[yolov8-detection]') selects
    them."""
    return built[request.param]


@pytest.fixture(scope="session")
def make_dataset(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic COCO dataset folder (scripts/make_synthetic_coco.py) + parameters.json."""

    def make(
        parameters: dict, n_images: int = 16, image_size: int = 64, task: str = "detect"
    ) -> Path:
        out = tmp_path_factory.mktemp("dataset")
        proc = subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "make_synthetic_coco.py"),
                "--out",
                str(out),
                "--n-images",
                str(n_images),
                "--image-size",
                str(image_size),
                "--seed",
                "0",
                "--task",
                task,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        (out / "parameters.json").write_text(json.dumps(parameters))
        # the container's user (uid 1000) reads it whatever the host user is
        for path in [out, *out.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return out

    return make


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """A host folder the container's non-root user can write its runs/ into."""
    path = tmp_path / "runs"
    path.mkdir()
    path.chmod(0o777)
    return path
