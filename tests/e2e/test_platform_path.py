"""From a folder of images and COCO files to a deployed model, a pre-annotated and reviewed
next batch, and its continuous training, against the emulator: the path `make platform-demo`
runs (scripts/platform_demo.py), with two tiny trainings, each the registered image's job as
the platform starts it, and the pre-annotation processing's job."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import uuid
from pathlib import Path

import pytest

from pictrain.cli import main
from pictrain.envvars import RETRY_BASE_DELAY
from pictrain.synthetic import make_detection_dataset
from scripts.platform_demo import EXAMPLE, clean_env, make_data, run_path
from tests.emulator import Emulator
from tests.emulator.emulator import loopback_env

pytestmark = pytest.mark.slow

IMAGES = Path(__file__).parents[2] / "images"
TINY = {  # the example file's settings this test changes: two trainings of one epoch
    "epochs = 30\nimage_size = 160\nbatch_size = 16": (
        "epochs = 1\nimage_size = 64\nbatch_size = 4\nworkers = 0"
    ),
    "# over [experiment.parameters]\nepochs = 5": "\nepochs = 1",
    "threshold = 0.25 ": "threshold = 0.0 ",  # an untrained model's boxes, to see them drawn
    '# images_dir = "images"': f'images_dir = "{IMAGES}"',
    # an untrained model's boxes, for the reviewer to judge
    "# confidence_threshold = 0.3 ": "confidence_threshold = 0.01 ",
}


def in_process(args: list[str]) -> tuple[int, str]:
    """`pictrain ARGS` in this process (the commands; the jobs run as subprocesses)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(args)
        except SystemExit as exited:
            return int(exited.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_images_and_coco_files_to_a_deployed_model_and_its_continuous_training(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_data(tmp_path / "data/platform-demo", 16, image_size=64)
    text = EXAMPLE.read_text()
    for old, new in TINY.items():
        assert old in text, old
        text = text.replace(old, new)
    project = tmp_path / "picsellia.toml"
    project.write_text(text)
    retry = {RETRY_BASE_DELAY.name: "0.05"}
    for name, value in {**emulator.user_env(), **retry}.items():
        monkeypatch.setenv(name, value)
    job_env = {**clean_env(), **loopback_env(), **retry}
    job_env.pop("PICSELLIA_SDK_CUSTOM_LOGGING", None)  # production does not set it
    work = tmp_path / "work"
    work.mkdir()

    run = run_path(emulator, project, work, in_process, job_env, say=lambda _: None)

    state = emulator.state
    first, retrained = run.jobs
    for done in run.jobs:
        assert done.code == 0
        assert state.experiments[uuid.UUID(done.experiment_id)].job_status == "SUCCESS"
        (job,) = emulator.launched_jobs(done.experiment_id)
        assert job.status == "SUCCEEDED"
    trained = state.experiments[uuid.UUID(first.experiment_id)]
    published = [v for v in state.model_versions.values() if v.experiment_id == trained.id]
    (version,) = published
    assert {"model-latest", "checkpoint-weights-latest"} <= set(version.files)
    assert version.settings["docker_image"] == "ghcr.io/your-org/yolov8-detection"
    (deployment,) = state.deployments.values()
    assert deployment.model_version_id == version.id
    (prediction,) = deployment.predictions
    answer = json.loads(run.outputs[next(k for k in run.outputs if k.startswith("predict"))])
    assert answer["source"] == "deployment shapes-detector"
    assert len(answer["boxes"]) == len(prediction.response["detection_classes"]) > 0
    assert {b["label"] for b in answer["boxes"]} <= {"circle", "square", "triangle"}
    assert Path(answer["drawn"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    batch = next(v for v in state.dataset_versions.values() if v.version == "next")
    (processing_job,) = emulator.launched_processings(batch.id)
    assert state.jobs[processing_job.id].status_history == ["RUNNING", "SUCCEEDED"]
    assert run.review.assets == len(batch.assets) == 4  # each pre-annotated, then reviewed
    assert 0 <= run.review.kept <= run.review.predicted and run.review.truths > 0
    train = next(v for v in state.dataset_versions.values() if v.version == "train")
    assert {a.data_id for a in batch.assets} <= {a.data_id for a in train.assets}
    scored = [state.datas[a.data_id].custom_metadata.get("to_label_score") for a in batch.assets]
    assert all(score is not None for score in scored)

    continuous = state.experiments[uuid.UUID(retrained.experiment_id)]
    assert continuous.base_model_version_id == version.id
    assert continuous.project_id == trained.project_id
    assert continuous.logs["parameters"].data["epochs"] == 1
    best = hashlib.sha256(state.artifact_bytes(trained.id, "best-model")).hexdigest()
    assert retrained.starting_weights_sha256 == best
    assert first.starting_weights_sha256 is None  # the first one trained from scratch


def test_predict_with_the_deployable_file_alone(tmp_path: Path) -> None:
    """`pictrain predict --model model-latest.onnx`: no platform, the export's own metadata."""
    from ultralytics import YOLO

    from pictrain.artifacts import export_onnx

    weights = tmp_path / "untrained.pt"
    YOLO("yolov8n.yaml").save(str(weights))
    labelmap = {str(k): name for k, name in YOLO("yolov8n.yaml").names.items()}
    onnx = export_onnx(weights, 64, tmp_path / "model-latest.onnx", "detect", labelmap)
    (coco,) = make_detection_dataset(tmp_path / "data", n_images=1, image_size=64).values()
    image = next((coco.parent / "images").iterdir())

    code, output = in_process(
        ["predict", str(image), "--model", str(onnx), "--threshold", "0.0", "--out", str(tmp_path)]
    )
    assert code == 0, output
    answer = json.loads(output.splitlines()[-1])
    assert answer["source"] == str(onnx)
    assert answer["boxes"] and {"label", "score", "box"} <= set(answer["boxes"][0])
    assert answer["boxes"][0]["label"] in labelmap.values()
    assert Path(answer["drawn"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
