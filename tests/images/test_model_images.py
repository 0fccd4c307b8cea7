"""Every model image: a short local run on a synthetic dataset of its task ends done, offline,
from the pretrained weights the image carries; a baked file whose sha256 differs from its pin
fails the build."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from pictrain.envvars import WEIGHTS_DIR
from tests.images.build_inputs import (
    IMAGES_DIR,
    MODEL_IMAGES,
    bake_env,
    checkout_sha,
    default_model,
)
from tests.images.dockerutil import Docker, offline_run_flags

LIST_WEIGHTS = (
    "import hashlib, json, os, pathlib; "
    f"folder = pathlib.Path(os.environ['{WEIGHTS_DIR.name}']); "
    "print(json.dumps(sorted(f'{p.stem}={hashlib.sha256(p.read_bytes()).hexdigest()}' "
    "for p in folder.iterdir())))"
)


@pytest.mark.images
@pytest.mark.parametrize("name", MODEL_IMAGES)
def test_local_run_ends_done(
    name: str,
    docker: Docker,
    built: dict[str, str],
    baked_weights: dict[str, str],
    make_dataset,
    runs_dir: Path,
) -> None:
    """From the image's weights for its default model: the test build's own small file (none
    for RT-DETR's, whose run starts from scratch and says why)."""
    task = tomllib.loads((IMAGES_DIR / name / "model.toml").read_text())["task"]
    data = make_dataset(
        {"epochs": 1, "batch_size": 4, "image_size": 64, "device": "cpu"}, task=task
    )
    proc = docker.run(
        built[name],
        "pictrain",
        "run",
        "--local",
        "/data",
        "--name",
        "smoke",
        flags=offline_run_flags(data, runs_dir),
        timeout=600,
        check=False,
    )
    status_file = runs_dir / "smoke" / "status.json"
    log = (proc.stdout + proc.stderr)[-5000:]
    assert status_file.exists(), log
    status = json.loads(status_file.read_text())
    assert status["status"] == "done", (status, log)
    assert proc.returncode == 0, log
    assert (runs_dir / "smoke" / "artifacts" / "model-latest.onnx").is_file()
    manifest = json.loads((runs_dir / "smoke" / "artifacts" / "manifest.json").read_text())
    assert manifest["git_sha"] == (checkout_sha() or None)
    starting = manifest["inputs"]["starting_weights"]
    if baked_weights[name]:
        model, sha256 = baked_weights[name].split("=")
        assert starting == {"source": "image", "file": f"{model}.pt", "sha256": sha256}
    else:
        assert starting["source"] == "none"
        assert f"no pretrained weights for {default_model(name)}" in proc.stderr


@pytest.mark.images
@pytest.mark.parametrize("name", MODEL_IMAGES)
def test_the_image_carries_exactly_its_pinned_weights(
    name: str, docker: Docker, built: dict[str, str], baked_weights: dict[str, str]
) -> None:
    proc = docker.run(built[name], "python", "-c", LIST_WEIGHTS, flags=["--network", "none"])
    assert json.loads(proc.stdout) == ([baked_weights[name]] if baked_weights[name] else [])


@pytest.mark.images
@pytest.mark.parametrize("name", ["yolov8-detection"])  # every image runs the same build step
def test_a_baked_file_whose_checksum_differs_fails_the_build(
    name: str,
    docker: Docker,
    built: dict[str, str],
    baked_weights: dict[str, str],
    base_image: str,
    build_context: Path,
    pretrained_dir: Path,
) -> None:
    """The test's own file against another pin: the build stops at that file, saying so."""
    model = baked_weights[name].split("=")[0]
    wrong = "0" * 64
    proc = subprocess.run(
        [
            *(docker.cli, "buildx", "bake", "--progress=plain"),
            f"--set={name}.args.PRETRAINED={model}={wrong}",
            f"--set={name}.tags=pictrain-test/refused:never",
            name,
        ],
        cwd=build_context,
        env=bake_env(base_image, pretrained_dir),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert f"not the {wrong} pinned in docker-bake.hcl (PRETRAINED): not baked" in log, log[-3000:]
