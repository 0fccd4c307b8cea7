"""From a folder of images and COCO files to a deployed model, a pre-annotated and reviewed
next batch, and the continuous training that learns from its reviewed predictions, against the
emulator: the path `make platform-demo` runs (scripts/platform_demo.py), each training the
registered image's job as the platform starts it, and the pre-annotation processing's job.

Weights the test makes: a tiny model trained locally on one synthetic set is the experiment's
`pretrained-weights`; the experiment fine-tunes it on another (the champion, deployed); the
continuous-training run fine-tunes the deployed weights on train plus the reviewed images, with
settings that make it worse (the challenger publishing refuses)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pictrain.cli import main
from pictrain.envvars import RETRY_BASE_DELAY
from pictrain.synthetic import make_detection_dataset
from scripts.platform_demo import EXAMPLE, clean_env, job_log, make_next, make_production, run_path
from tests.emulator import Emulator
from tests.emulator.emulator import loopback_env

pytestmark = pytest.mark.slow

IMAGES = Path(__file__).parents[2] / "images"
REVIEWS = 4  # the continuous-training threshold: as many production images
NEXT_IMAGES = 4  # the next batch, pre-annotated
TINY = {  # the example file's settings this test changes
    "epochs = 30\nimage_size = 160\nbatch_size = 16": (
        "epochs = 6\nimage_size = 64\nbatch_size = 8\nworkers = 0"
    ),
    # One epoch at a learning rate that wrecks what the deployed model learnt: a challenger
    # scoring below its champion.
    "# over [experiment.parameters]\nepochs = 5": (
        '\nepochs = 1\nlr0 = 0.5\noptimizer = "SGD"\nwarmup_epochs = 0'
    ),
    "threshold = 50": f"threshold = {REVIEWS}",
    '# pretrained_weights = "yolov8n.pt"': 'pretrained_weights = "pretrained.pt"',
    '# images_dir = "images"': f'images_dir = "{IMAGES}"',
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


def pretrain(folder: Path) -> Path:
    """A tiny detector trained from scratch on a synthetic set of its own (another seed)."""
    make_detection_dataset(folder, 48, 64, seed=3, splits={"train": 36, "val": 6, "test": 6})
    parameters = {"epochs": 40, "batch_size": 8, "image_size": 64, "workers": 0, "seed": 0}
    (folder / "parameters.json").write_text(json.dumps({**parameters, "pretrained": False}))
    runs = folder.parent / "pretraining"
    command = ["run", "--local", str(folder), "--name", "source", "--runs-dir", str(runs)]
    done = subprocess.run(
        [sys.executable, "-m", "pictrain", *command],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return runs / "source" / "artifacts" / "best-model.pt"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_the_loop_deploy_predict_review_retrain_and_refuse_a_worse_challenger(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data/platform-demo"
    make_detection_dataset(data, 36, 64, seed=0, splits={"train": 20, "val": 6, "test": 10})
    make_next(data, NEXT_IMAGES, 64)
    production = make_production(data, REVIEWS, 64)
    weights = pretrain(tmp_path / "source")
    text = EXAMPLE.read_text()
    for old, new in TINY.items():
        assert old in text, old
        text = text.replace(old, new)
    project = tmp_path / "picsellia.toml"
    project.write_text(text)
    (tmp_path / "pretrained.pt").write_bytes(weights.read_bytes())
    # Publishing keeps every artifact (the original pretrained file too) and experiments get
    # copies of their base model version's files: the platform behaviour that could make a
    # continuous-training run start from the original (the other one: test_base_weights.py).
    state = emulator.state
    state.settings.published_artifacts = ("*",)
    state.settings.copy_model_files = True
    retry = {RETRY_BASE_DELAY.name: "0.05"}
    for name, value in {**emulator.user_env(), **retry}.items():
        monkeypatch.setenv(name, value)
    job_env = {**clean_env(), **loopback_env(), **retry}
    job_env.pop("PICSELLIA_SDK_CUSTOM_LOGGING", None)  # production does not set it
    work = tmp_path / "work"
    work.mkdir()

    run = run_path(emulator, project, work, in_process, job_env, production, say=lambda _: None)

    first, retrained = run.jobs
    for done in run.jobs:
        assert done.code == 0
        assert state.experiments[uuid.UUID(done.experiment_id)].job_status == "SUCCESS"
        (job,) = emulator.launched_jobs(done.experiment_id)
        assert job.status == "SUCCEEDED"
    trained = state.experiments[uuid.UUID(first.experiment_id)]
    original = sha256(weights.read_bytes())
    started = first.starting_weights
    assert (started["source"], started["sha256"]) == ("experiment", original)

    # Deployed at the operating point the job chose on val.
    (version,) = [v for v in state.model_versions.values() if v.experiment_id == trained.id]
    assert {"model-latest", "checkpoint-weights-latest", "pretrained-weights"} <= set(version.files)
    (deployment,) = state.deployments.values()
    assert deployment.model_version_id == version.id
    point = trained.logs["operating-point"].data
    assert deployment.min_threshold == round(point["data"][point["rows"].index("all")][0], 4)
    (asked,) = [output for command, output in run.outputs.items() if command.startswith("predict ")]
    answers = [json.loads(line) for line in asked.splitlines() if line.startswith("{")]
    assert [a["source"] for a in answers] == ["deployment shapes-detector"] * REVIEWS
    assert "the images go to deployment shapes-detector's monitoring" in asked

    # The next batch pre-annotated at the model's operating point, reviewed, joined train.
    train_version = state.dataset_versions[trained.datasets["train"]]
    batch = next(v for v in state.dataset_versions.values() if v.version == "next")
    (processing_job,) = emulator.launched_processings(batch.id)
    assert state.jobs[processing_job.id].status_history == ["RUNNING", "SUCCEEDED"]
    assert "the model's operating point" in job_log(work, processing_job).read_text()
    assert len(batch.assets) == NEXT_IMAGES
    reviewed_batch = {a.data_id for a in batch.assets if a.annotation_status == "ACCEPTED"}
    assert 0 < run.review.assets == len(reviewed_batch)  # those it pre-annotated
    assert 0 < run.review.kept <= run.review.predicted and run.review.truths > 0
    assert reviewed_batch <= {a.data_id for a in train_version.assets}
    scored = [state.datas[a.data_id].custom_metadata.get("to_label_score") for a in batch.assets]
    assert all(score is not None for score in scored)

    # Reviewed predictions enriched the train version, and the new experiment trained on them.
    reviewed = [a for a in train_version.assets if str(a.data_id) in run.reviewed]
    assert len(reviewed) == REVIEWS and all(a.shapes for a in reviewed)
    continuous = state.experiments[uuid.UUID(retrained.experiment_id)]
    assert continuous.datasets["train"] == train_version.id
    downloads = work / "runs" / retrained.experiment_id / "downloads" / "train"
    downloaded = {p.stem for p in downloads.rglob("*.jpg")}
    assert {str(a.id) for a in reviewed} <= downloaded
    assert len(downloaded) == 20 + run.review.assets + REVIEWS

    # It started from the deployed weights, not the copied original pretrained file.
    assert continuous.base_model_version_id == version.id
    assert sha256(state.artifact_bytes(continuous.id, "pretrained-weights")) == original
    deployed = sha256(state.artifact_bytes(trained.id, "best-model"))
    started = retrained.starting_weights
    assert (started["source"], started["sha256"]) == ("model-version", deployed)

    # Champion against challenger, and the gate at publishing.
    table = continuous.logs["champion-vs-challenger"].data
    champion_value = continuous.logs["test/champion-mAP50-95(B)"].data
    challenger_value = continuous.logs["test/mAP50-95(B)"].data
    assert table["rows"][0] == "mAP50-95(B)" and table["data"][0][-1] == "worse"
    assert challenger_value < champion_value - 0.005
    name = continuous.name
    refused = run.outputs[f"model publish --experiment {name}"]
    assert run.codes[f"model publish --experiment {name}"] == 2
    assert f"scores test mAP50-95(B) {challenger_value:.4f}, below the champion's " in refused
    assert f"{champion_value:.4f}" in refused
    assert not [v for v in state.model_versions.values() if v.experiment_id == continuous.id]
    flags = ["--project", str(project), "--env-file", str(work / "none.env")]
    code, output = in_process(["model", "publish", "--experiment", name, "--force", *flags])
    assert code == 0 and "--force: published although" in output

    # Told not to, a prediction stays out of the monitoring.
    image = next((production / "images").iterdir())
    code, output = in_process(["predict", str(image), "--no-monitor", "--out", str(work), *flags])
    assert code == 0 and "stay out of deployment shapes-detector's monitoring" in output
    assert deployment.predictions[-1].monitor is False
    assert deployment.predictions[-1].data_id is None


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
