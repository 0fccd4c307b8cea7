"""The processing images at run time (built on the stand-in base; needs a Docker daemon): what
Picsellia starts with no command is the job, under tini, as a non-root user; the same pass runs
on a local folder with the network off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pictrain.synthetic import make_detection_dataset
from tests.images.build_inputs import PROCESSING_IMAGES
from tests.images.dockerutil import Docker, offline_run_flags
from tests.unit.preannotate_setup import LABELS, detect_model

pytestmark = pytest.mark.images


@pytest.fixture(params=PROCESSING_IMAGES)
def processing_image(request: pytest.FixtureRequest, built: dict[str, str]) -> str:
    return built[request.param]


def test_the_default_command_is_the_job_under_tini_as_a_user(
    docker: Docker, processing_image: str
) -> None:
    config = docker.inspect(processing_image)["Config"]
    assert config["Entrypoint"] == ["tini", "-g", "--"]
    assert config["Cmd"] == ["pictrain", "preannotate"]
    assert config["User"].split(":")[0] not in {"", "0", "root"}
    proc = docker.run(processing_image, flags=["--network", "none"], check=False, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and "no job_id" in errors[0], proc.stderr


def test_a_local_folder_offline(
    docker: Docker, processing_image: str, tmp_path: Path, runs_dir: Path
) -> None:
    data = tmp_path / "data"
    (coco,) = make_detection_dataset(data, 4, 64, seed=0).values()
    detect_model(data / "model.onnx")
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    proc = docker.run(
        processing_image,
        "pictrain",
        "preannotate",
        *("--local", f"/data/{coco.parent.name}/images", "--model", "/data/model.onnx"),
        *("--out", "/workspace/runs/pre.json"),
        flags=offline_run_flags(data, runs_dir),
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = json.loads((runs_dir / "pre.json").read_text())
    assert [c["name"] for c in document["categories"]] == LABELS
    assert len(document["images"]) == 4 and len(document["annotations"]) == 8
