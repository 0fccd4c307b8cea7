"""The workflow commands against the emulator, without training: each converges when run twice
(nothing duplicated, whether the server refuses twins or makes them), and each bad input is one
line, exit 2, nothing created."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pictrain.platform.env import read_env_file
from pictrain.workflow.progress import Progress
from tests.emulator import Emulator
from tests.unit.workflow_project import (
    IMAGES,
    STEPS,
    edit,
    one_error_line,
    pictrain,
    trained,
    up_to,
)


def test_register_to_launch_twice_duplicates_nothing(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = emulator.state
    for command in STEPS:
        first = pictrain(capsys, project, *command)
        again = pictrain(capsys, project, *command)
        assert first[0] == again[0] == 0, (command, first, again)

    (model,) = state.models.values()
    (version,) = state.model_versions.values()
    assert (model.name, version.name) == ("yolov8-detection", "0.1.0-cu128")
    assert version.settings["docker_image"] == "ghcr.io/your-org/yolov8-detection"
    assert version.settings["docker_flags"] == ["--gpus all", "--ipc host", "--name training"]
    assert version.settings["parameters"]["epochs"] == 100  # the image's defaults, all of them
    assert (version.type, version.framework) == ("OBJECT_DETECTION", "PYTORCH")
    assert len(state.datas) == 12  # 4 files per split, each once
    tags = {t.name for t in state.tags.values()}
    assert tags == {"shapes", "train", "val", "test"}
    (dataset,) = state.datasets.values()
    assert dataset.name == "shapes"
    versions = {v.version: v for v in state.dataset_versions.values()}
    assert set(versions) == {"train", "val", "test"}
    for split in versions.values():
        assert len(split.assets) == 4
        assert sum(len(a.shapes) for a in split.assets) == 3  # the background image has none
        assert [label.name for label in split.labels] == ["cat", "dog"]
    (experiment,) = state.experiments.values()
    assert experiment.base_model_version_id == version.id
    parameters = experiment.logs["parameters"].data
    assert (parameters["epochs"], parameters["image_size"]) == (30, 160)  # the file over
    assert parameters["lr0"] == 0.01  # the image's defaults
    assert {a: state.dataset_versions[v].version for a, v in experiment.datasets.items()} == {
        "train": "train",
        "val": "val",
        "test": "test",
    }

    code, output = pictrain(capsys, project, "experiment", "launch", "--gpus", "2")
    assert code == 0, output
    code, output = pictrain(capsys, project, "experiment", "launch")
    assert code == 2
    assert "already launched" in one_error_line(output)
    (job,) = emulator.launched_jobs(experiment.id)
    assert job.launch.docker_image == "ghcr.io/your-org/yolov8-detection"
    assert job.launch.gpus == 2  # --gpus over the file's [experiment] gpus


def test_a_rerun_uploads_only_what_is_missing(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.parent / "dataset/train/images/broken.jpg").write_bytes(b"not an image")
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 0, output
    assert re.search(r"train \[shapes, train\]: 4 uploaded, 0 already there, 1 unreadable", output)
    uploaded = set(emulator.state.datas)
    (project.parent / "dataset/val/images/late.png").write_bytes(
        (project.parent / "dataset/val/images/val_0.png").read_bytes()
    )
    code, output = pictrain(capsys, project, "data", "upload")
    assert "val [shapes, val]: 1 uploaded, 4 already there" in output
    (new,) = set(emulator.state.datas) - uploaded
    assert emulator.state.datas[new].filename == "late.png"


def test_missing_folder(emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]):
    edit(project, "dataset/test/images", "dataset/tset/images")
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 2
    assert "tset/images does not exist" in one_error_line(output)
    assert not emulator.state.datas and not emulator.state.tags  # not even the other splits


def test_tag_query_matching_nothing(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pictrain(capsys, project, "data", "upload")[0] == 0
    edit(
        project,
        'tags = ["shapes", "test"]',
        'tags = ["shapes", "test"]\nquery = ["shapes", "tset"]',
    )
    code, output = pictrain(capsys, project, "data", "dataset")
    assert code == 2
    assert "no data in the datalake has all the tags ['shapes', 'tset']" in one_error_line(output)
    assert not emulator.state.datasets and not emulator.state.dataset_versions


def test_unknown_image_name(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = pictrain(capsys, project, "register", "yolov8-detection", "yolo9-detection")
    assert code == 2
    line = one_error_line(output)
    assert "unknown image yolo9-detection" in line and "yolov8-detection" in line
    assert not emulator.state.models


def test_dataset_type_not_matching_the_image(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(project, 'type = "OBJECT_DETECTION"', 'type = "CLASSIFICATION"')
    up_to(capsys, project, "data", "dataset")
    code, output = pictrain(capsys, project, "experiment", "create")
    assert code == 2
    line = one_error_line(output)
    assert "is a CLASSIFICATION dataset" in line and "needs OBJECT_DETECTION" in line
    assert not emulator.state.projects and not emulator.state.experiments


def test_experiment_already_running(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up_to(capsys, project, "experiment", "create")
    (experiment,) = emulator.state.experiments.values()
    experiment.status = "RUNNING"  # started from the UI, say
    code, output = pictrain(capsys, project, "experiment", "launch")
    assert code == 2
    assert "already running" in one_error_line(output)
    assert not emulator.launched_jobs(experiment.id)


def test_experiment_on_an_unregistered_image(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = pictrain(capsys, project, "experiment", "create")
    assert code == 2
    assert "run `pictrain register yolov8-detection`" in one_error_line(output)


def test_no_token(project: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.delenv("API_TOKEN")
    code, output = pictrain(capsys, project, "register", "--all")
    assert code == 2
    assert "no API token" in one_error_line(output)


def test_a_misspelt_key_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(project, "[deployment]\nname", "[deployment]\nnmae")
    code, output = pictrain(capsys, project, "data", "upload")
    assert code == 2
    assert "deployment.nmae" in one_error_line(output)


@pytest.mark.parametrize(
    "command",
    [
        ("data", "upload"),
        ("data", "dataset"),
        ("experiment", "create"),
        ("experiment", "launch"),
        ("model", "publish"),
        ("deploy",),
        ("ct", "setup"),
    ],
)
def test_the_project_file_is_checked_before_the_credentials(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch, command: tuple[str, ...]
) -> None:
    """A user fixing one error at a time sees the file's own mistake first, whatever the step."""
    monkeypatch.delenv("API_TOKEN")
    edit(project, "[deployment]\nname", "[deployment]\nnmae")
    code, output = pictrain(capsys, project, *command)
    assert code == 2
    assert "deployment.nmae" in one_error_line(output)


def test_publish_deploy_and_ct_setup_twice_duplicate_nothing(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trained(emulator, project, capsys, tmp_path)
    state = emulator.state
    for command in (["model", "publish"], ["deploy"], ["ct", "setup"]):
        first = pictrain(capsys, project, *command)
        again = pictrain(capsys, project, *command)
        assert first[0] == again[0] == 0, (command, first, again)
        if command == ["model", "publish"]:
            assert "will start from its file checkpoint-weights-latest (best.pt" in again[1]
    published = [v for v in state.model_versions.values() if v.experiment_id is not None]
    (version,) = published
    assert state.models[version.model_id].name == "shapes-detector"
    assert version.labels == {"0": "cat", "1": "dog"}
    assert version.framework == "ONNX"
    assert version.settings["docker_image"] == "ghcr.io/your-org/yolov8-detection"  # carried
    assert version.settings["parameters"]["epochs"] == 100
    (deployment,) = state.deployments.values()
    assert (deployment.name, deployment.model_version_id) == ("shapes-detector", version.id)
    assert deployment.min_threshold == 0.25
    assert deployment.feedback_loop
    training = deployment.continuous_training
    # Reviews enrich the train version, the one continuous training reads as train.
    assert deployment.feedback_loop_datasets == [training.datasets["train"]]
    assert deployment.training_data == training.datasets["train"]
    assert state.dataset_versions[training.datasets["train"]].version == "train"
    assert "reviewed predictions enrich shapes/train" in again[1]
    assert "nothing changed since the last" in again[1]
    assert training.trigger == "FEEDBACK_LOOP" and training.threshold == 50
    assert training.experiment_parameters["epochs"] == 5  # [continuous_training.parameters]
    assert training.experiment_parameters["image_size"] == 160  # [experiment.parameters]
    assert set(training.datasets) == {"train", "val", "test"}
    assert deployment.continuous_deployment == "DEPLOY_SHADOW"


def test_publish_stores_the_weights_the_platform_did_not_keep(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trained(emulator, project, capsys, tmp_path)
    emulator.state.settings.published_artifacts = ("model-latest",)
    code, output = pictrain(capsys, project, "model", "publish")
    assert code == 0, output
    assert "did not keep checkpoint-weights-latest: stored it" in output
    (version,) = [v for v in emulator.state.model_versions.values() if v.experiment_id]
    stored = emulator.state.storage.get(version.files["checkpoint-weights-latest"].object_name)
    assert stored == b"trained weights"


def test_publish_carries_every_export_into_the_version(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The platform keeps model-latest (the emulator's default rule); the other exports a run
    stored (export_formats) are stored in the version by pictrain itself."""
    trained(emulator, project, capsys, tmp_path)
    (state,) = emulator.state.experiments.values()
    experiment = emulator.client().get_experiment_by_id(state.id)
    exports = {"model-openvino-int8": b"openvino zip", "model-torchscript": b"torchscript"}
    for name, content in exports.items():
        (tmp_path / name).write_bytes(content)
        experiment.store(name, str(tmp_path / name))
    code, output = pictrain(capsys, project, "model", "publish")
    assert code == 0, output
    (version,) = [v for v in emulator.state.model_versions.values() if v.experiment_id]
    for name, content in exports.items():
        assert f"did not keep {name}: stored it" in output
        assert emulator.state.storage.get(version.files[name].object_name) == content
    again = pictrain(capsys, project, "model", "publish")
    assert again[0] == 0 and "did not keep" not in again[1]


def test_publishing_an_untrained_experiment(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up_to(capsys, project, "experiment", "create")
    code, output = pictrain(capsys, project, "model", "publish")
    assert code == 2
    assert "is WAITING" in one_error_line(output)
    assert len(emulator.state.model_versions) == 1  # the registered image's only


def test_progress_outside_a_terminal_prints_lines() -> None:
    stream = io.StringIO()
    with Progress(3, "upload train", stream=stream) as progress:
        for _ in range(3):
            progress.update()
    assert stream.getvalue() == "upload train: 3/3 files\n"


def test_env_file_as_users_write_it(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# mine\nexport API_TOKEN='t0k'\nORGANIZATION_ID = \"org\"\nnot a line\n")
    assert read_env_file(path) == {"API_TOKEN": "t0k", "ORGANIZATION_ID": "org"}


def test_register_all(emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]):
    code, output = pictrain(capsys, project, "register", "--all", "--tag", "0.2.0-cu130")
    assert code == 0, output
    names = {p.name for p in IMAGES.iterdir() if (p / "model.toml").is_file()}
    assert {m.name for m in emulator.state.models.values()} == names
    kinds = {
        emulator.state.models[v.model_id].name: v.type
        for v in emulator.state.model_versions.values()
    }
    assert kinds["yolo11-segmentation"] == "SEGMENTATION"
    assert kinds["yolov8-classification"] == "CLASSIFICATION"
    assert kinds["yolo11-pose"] == "KEYPOINT"
    assert kinds["yolo11-obb"] == "SEGMENTATION"  # its evaluations are polygons
    assert {v.name for v in emulator.state.model_versions.values()} == {"0.2.0-cu130"}


SKELETON = {"keypoints": ["nose", "left_ear", "right_ear"], "skeleton": [[1, 2], [1, 3]]}


def _as_keypoints(project: Path, skeleton: dict | None) -> None:
    """The sample's COCO files with 3 keypoints per box (the categories with `skeleton`), the
    project a KEYPOINT dataset for yolov8-pose."""
    for coco in (project.parent / "dataset").glob("*/annotations.json"):
        document = json.loads(coco.read_text())
        for category in document["categories"]:
            category.update(skeleton or {})
        for a in document["annotations"]:
            x, y, w, _ = a["bbox"]
            a["keypoints"] = [x + w / 2, y + 1, 2, x + 1, y + 2, 2, x + w - 1, y + 2, 1]
            a.pop("segmentation")
        coco.write_text(json.dumps(document))
    edit(project, 'type = "OBJECT_DETECTION"', 'type = "KEYPOINT"')
    edit(project, 'name = "yolov8-detection"', 'name = "yolov8-pose"')


def test_a_keypoint_version_imports_its_skeleton(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`data dataset` into a KEYPOINT version: the SDK's import sets each label's skeleton,
    the keypoints land as keypoints; the pose image takes the version for an experiment."""
    _as_keypoints(project, SKELETON)
    for command in (("register", "yolov8-pose"), *STEPS[1:]):
        code, output = pictrain(capsys, project, *command)
        assert code == 0, (command, output)
    for version in emulator.state.dataset_versions.values():
        assert version.type == "KEYPOINT"
        assert {label.name: label.skeleton for label in version.labels} == {
            name: {"vertices": SKELETON["keypoints"], "edges": SKELETON["skeleton"]}
            for name in ("cat", "dog")
        }
        shapes = [shape for asset in version.assets for shape in asset.shapes]
        assert len(shapes) == 3 and all(len(shape.points) == 3 for shape in shapes)
    (experiment,) = emulator.state.experiments.values()
    assert len(experiment.datasets) == 3


def test_a_keypoint_coco_file_without_skeletons_creates_nothing(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _as_keypoints(project, None)
    up_to(capsys, project, "data", "upload")
    code, output = pictrain(capsys, project, "data", "dataset")
    assert code == 2
    line = one_error_line(output)
    assert "needs every category's skeleton" in line and "cat, dog" in line
    assert not emulator.state.datasets


def test_platform_errors_are_retried_without_twins(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = [
        emulator.faults.add("POST", "/api/datalake/*/datas", status=502, times=3),
        emulator.faults.add("POST", "/api/organization/*/datasets", status=502),
        emulator.faults.add("POST", "/api/dataset/version/*/assets", status=503, times=2),
        emulator.faults.add("POST", "/api/dataset/version/*/bulk-annotations", status=429),
    ]
    for command in (["data", "upload"], ["data", "dataset"]):
        code, output = pictrain(capsys, project, *command)
        assert code == 0, output
    assert len(emulator.state.datas) == 12
    assert len(emulator.state.datasets) == 1
    for version in emulator.state.dataset_versions.values():
        assert len(version.assets) == 4
        assert sum(len(a.shapes) for a in version.assets) == 3
    assert [rule.fired for rule in rules] == [3, 1, 2, 1]


def test_pretrained_weights_are_stored_once(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.parent / "start.pt").write_bytes(b"starting weights")
    edit(project, "gpus = 1", 'gpus = 1\npretrained_weights = "start.pt"')
    up_to(capsys, project, "data", "dataset")
    for _ in range(2):
        code, output = pictrain(capsys, project, "experiment", "create")
        assert code == 0, output
    (experiment,) = emulator.state.experiments.values()
    assert emulator.state.artifact_bytes(experiment.id, "pretrained-weights") == b"starting weights"
    assert len(emulator.requests("POST", "/api/experiment/*/artifacts")) == 1


def test_a_failed_add_data_job_is_bad_input_with_its_reason(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up_to(capsys, project, "data", "upload")
    emulator.state.settings.add_data_failure = "data 3f2a is not an image the platform reads"
    code, output = pictrain(capsys, project, "data", "dataset")
    assert code == 2
    line = one_error_line(output)
    assert "did not add the data to version train" in line
    assert "ended FAILED: failure_reason: data 3f2a is not an image" in line
    assert "created" not in output  # nothing reported as done


def test_publish_and_deploy_find_the_version_past_the_first_page(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`model.list_versions()` reads one page: the published version is found on a later one,
    so a rerun neither publishes it twice nor deploys another."""
    trained(emulator, project, capsys, tmp_path)
    model = emulator.client().create_model("shapes-detector")
    for k in range(3):
        model.create_version(f"older-{k}")
    emulator.state.settings.page_size = 2
    for command in (["model", "publish"], ["model", "publish"], ["deploy"]):
        code, output = pictrain(capsys, project, *command)
        assert code == 0, output
    published = [v for v in emulator.state.model_versions.values() if v.experiment_id]
    (version,) = published
    assert version.version == 3  # after the three older ones: beyond the first page of 2
    (deployment,) = emulator.state.deployments.values()
    assert deployment.model_version_id == version.id


def _log_table(emulator: Emulator, name: str, table: dict) -> None:
    (experiment,) = emulator.state.experiments.values()
    emulator.client().get_experiment_by_id(experiment.id).log(name, table, "TABLE")


def test_a_challenger_worse_than_its_champion_is_refused_unless_forced(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What the job logs when the base model version's weights score better on test."""
    from pictrain.evaluate.champion import TABLE, Comparison

    trained(emulator, project, capsys, tmp_path)
    worse = Comparison(
        "detect", "checkpoint-weights-latest", "0" * 64, 0.005, {"mAP50-95(B)": 0.41}
    )
    worse = dataclasses.replace(worse, champion={"mAP50-95(B)": 0.52})
    _log_table(emulator, TABLE, worse.table)
    for command in (["model", "publish"], ["deploy"]):
        code, output = pictrain(capsys, project, *command)
        assert code == 2
        line = one_error_line(output)
        assert "scores test mAP50-95(B) 0.4100, below the champion's 0.5200" in line
        assert "`--force`" in line
        if command == ["model", "publish"]:
            assert not [v for v in emulator.state.model_versions.values() if v.experiment_id]
            code, output = pictrain(capsys, project, *command, "--force")
            assert code == 0 and "--force: published although" in output
    code, output = pictrain(capsys, project, "deploy", "--force")
    assert code == 0 and "--force: deployed although" in output


def test_deploy_takes_the_threshold_of_the_operating_point_unless_the_file_gives_one(
    emulator: Emulator, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from pictrain.evaluate.operating_point import TABLE, Report, Scored, Thresholds

    trained(emulator, project, capsys, tmp_path)
    point = Thresholds(0.37, {"cat": 0.4, "dog": 0.3}, ["cat", "dog"])
    nothing = Scored(*(np.zeros(0) for _ in range(3)), np.zeros(2, dtype=int))
    _log_table(emulator, TABLE, Report.of(point, nothing).table())
    assert pictrain(capsys, project, "model", "publish")[0] == 0
    code, output = pictrain(capsys, project, "deploy")
    assert code == 0 and "threshold 0.37 (its operating point)" in output
    (deployment,) = emulator.state.deployments.values()
    assert deployment.min_threshold == 0.37
    edit(project, "# threshold = 0.3", "threshold = 0.3")
    code, output = pictrain(capsys, project, "deploy")
    assert code == 0 and "threshold 0.3 ([deployment] threshold)" in output
    assert deployment.min_threshold == 0.3
