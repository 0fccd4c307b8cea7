"""The emulator against the real picsellia SDK: every call a training job makes, plus faults."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import picsellia
import picsellia.decorators
import pytest
import requests
from picsellia import exceptions
from picsellia.types.enums import (
    AnnotationFileType,
    InferenceType,
    JobRunStatus,
    JobStatus,
    LogType,
)

from tests.emulator import Emulator, Faults, SeededIds
from tests.emulator.dataset_dir import png_bytes, read_dataset_dir, write_sample_dataset


@pytest.fixture
def client(emulator: Emulator) -> picsellia.Client:
    return emulator.client()


def raw_session(emulator: Emulator | None = None) -> requests.Session:
    """A plain session (no SDK) that ignores proxy variables and, given an emulator, logs in."""
    session = requests.Session()
    session.trust_env = False
    if emulator is not None:
        session.headers["Authorization"] = f"Bearer {emulator.token}"
    return session


@pytest.fixture
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK waits 0.5 s, 1 s, 2 s... between connection retries: skip the waits."""
    monkeypatch.setattr(picsellia.decorators, "time", SimpleNamespace(sleep=lambda _: None))


def test_connects_from_job_variables_and_finds_the_experiment(
    emulator: Emulator, seeded: SeededIds
) -> None:
    env = emulator.job_env(seeded)
    client = picsellia.Client(
        api_token=env["api_token"], organization_id=env["organization_id"], host=env["host"]
    )
    by_id = client.get_experiment_by_id(env["experiment_id"])
    by_name = client.get_project("emulated-project").get_experiment("emulated-experiment")
    assert by_id.id == by_name.id == seeded.experiment_id
    assert by_id.get_log("parameters").data == {"epochs": 2, "image_size": 32}
    assert env["job_id"] == str(seeded.job_id)


def test_attached_versions_list_with_cursor_and_download(
    emulator: Emulator,
    client: picsellia.Client,
    seeded: SeededIds,
    sample_dataset: Path,
    tmp_path: Path,
) -> None:
    experiment = client.get_experiment_by_id(seeded.experiment_id)
    versions = experiment.get_attached_dataset_versions()
    assert set(versions) == {"train", "val", "test"}
    assert {v.id for v in experiment.list_attached_dataset_versions()} == {
        v.id for v in versions.values()
    }
    assert experiment.get_dataset("val").id == versions["val"].id

    emulator.state.settings.page_size = 2
    assets = versions["train"].list_assets()
    assert len(assets) == 4
    assert any("cursor=" in r.query for r in emulator.requests("GET", "*/assets"))

    assets.download(tmp_path / "train", max_workers=2)
    source = sample_dataset / "train" / "images"
    for path in source.iterdir():
        assert (tmp_path / "train" / path.name).read_bytes() == path.read_bytes()

    asset = versions["train"].list_assets(filenames=["train_1.png"])[0]
    assert (asset.width, asset.height) == (32, 24)
    assert asset.reset_url().startswith(emulator.url)


def test_coco_export_holds_the_seeded_boxes(
    client: picsellia.Client, seeded: SeededIds, tmp_path: Path
) -> None:
    version = client.get_experiment_by_id(seeded.experiment_id).get_dataset("train")
    path = Path(version.export_annotation_file(AnnotationFileType.COCO, tmp_path))
    assert path.is_relative_to(tmp_path) and path.parent != tmp_path  # nested object name
    coco = json.loads(path.read_text())
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog"]
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    assert sorted(files.values()) == ["train_0.png", "train_1.png", "train_2.png"]  # no background
    boxes = {files[a["image_id"]]: (a["bbox"], a["category_id"]) for a in coco["annotations"]}
    assert boxes == {
        "train_0.png": ([2, 3, 10, 8], 0),
        "train_1.png": ([3, 3, 11, 8], 1),
        "train_2.png": ([4, 3, 12, 8], 0),
    }


@pytest.mark.parametrize("dataset_type", ["SEGMENTATION", "CLASSIFICATION"])
def test_coco_export_of_other_dataset_types(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path, dataset_type: str
) -> None:
    splits, _ = read_dataset_dir(sample_dataset)
    ids = emulator.seed_experiment(splits, dataset_type=dataset_type)
    version = emulator.client().get_experiment_by_id(ids.experiment_id).get_dataset("test")
    assert version.type.value == dataset_type
    coco = json.loads(Path(version.export_annotation_file("COCO", tmp_path)).read_text())
    first = coco["annotations"][0]
    if dataset_type == "SEGMENTATION":
        assert first["segmentation"] == [[2, 3, 12, 3, 12, 11, 2, 11]] and first["area"] == 80.0
    else:
        assert first["bbox"] == [] and first["segmentation"] == []


def test_artifacts_and_base_model_files(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "yolo.pt"
    weights.write_bytes(b"pretrained")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx-bytes")
    splits, _ = read_dataset_dir(sample_dataset)
    ids = emulator.seed_experiment(
        splits,
        experiment_files={"pretrained-weights": weights},
        base_model_files={"model-latest": onnx},
    )
    experiment = emulator.client().get_experiment_by_id(ids.experiment_id)

    assert [a.name for a in experiment.list_artifacts()] == ["pretrained-weights"]
    experiment.get_artifact("pretrained-weights").download(tmp_path / "artifacts")
    assert (tmp_path / "artifacts" / "yolo.pt").read_bytes() == b"pretrained"

    model_version = experiment.get_base_model_version()
    assert model_version.labels == {"0": "cat", "1": "dog"}
    assert [f.name for f in model_version.list_files()] == ["model-latest"]
    model_version.get_file("model-latest").download(tmp_path / "model")
    assert (tmp_path / "model" / "model.onnx").read_bytes() == b"onnx-bytes"


def test_line_logs_append_and_other_types_replace(
    emulator: Emulator, client: picsellia.Client, seeded: SeededIds, tmp_path: Path
) -> None:
    experiment = client.get_experiment_by_id(seeded.experiment_id)
    experiment.log("train/box_loss", 1.5, LogType.LINE)
    experiment.log("train/box_loss", [1.0, 0.0], LogType.LINE)
    experiment.log("val/mAP50(B)", 0.1, LogType.VALUE)
    experiment.log("val/mAP50(B)", 0.0, LogType.VALUE)
    experiment.log("table", {"a": 1}, LogType.TABLE)
    experiment.log("table", {"b": 2}, LogType.TABLE)
    experiment.log("labelmap", {"0": "cat", "1": "dog"}, LogType.LABELMAP)
    image = tmp_path / "confusion.png"
    image.write_bytes(png_bytes(4, 4, (1, 2, 3)))
    experiment.log("confusion", str(image), LogType.IMAGE)
    experiment.log("confusion", str(image), LogType.IMAGE)

    logs = emulator.state.experiments[seeded.experiment_id].logs
    assert logs["train/box_loss"].data == [1.5, 1.0, 0.0]
    assert logs["val/mAP50(B)"].data == 0.0
    assert logs["table"].data == {"b": 2}
    assert logs["labelmap"].type == "LABELMAP"
    assert emulator.state.storage.get(logs["confusion"].data["object_name"]) == image.read_bytes()
    assert experiment.get_log("train/box_loss").data == [1.5, 1.0, 0.0]

    experiment.get_log("train/box_loss").delete()
    with pytest.raises(exceptions.ResourceNotFoundError):
        experiment.get_log("train/box_loss")
    experiment.log("train/box_loss", 9.0, LogType.LINE)
    assert logs["train/box_loss"].data == [9.0]
    with pytest.raises(exceptions.ResourceConflictError):
        experiment.log("table", {"c": 3}, LogType.TABLE, replace=False)


def test_store_small_and_multipart_artifacts(
    emulator: Emulator,
    client: picsellia.Client,
    seeded: SeededIds,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    experiment = client.get_experiment_by_id(seeded.experiment_id)
    small = tmp_path / "best.pt"
    small.write_bytes(b"\r\n--boundary-like\r\n" + bytes(range(256)))
    assert not experiment.store("best-model", small).large
    assert emulator.state.artifact_bytes(seeded.experiment_id, "best-model") == small.read_bytes()

    monkeypatch.setattr("picsellia.services.upload.file.LARGE_FILE_SIZE", 1000)
    monkeypatch.setattr("picsellia.services.upload.adapters.CHUNK_SIZE", 1000)
    big = tmp_path / "model.onnx"
    big.write_bytes(bytes(k % 251 for k in range(2500)))
    assert experiment.store("model-latest", big).large
    assert emulator.state.artifact_bytes(seeded.experiment_id, "model-latest") == big.read_bytes()
    assert [r.status for r in emulator.requests("PUT", "/_storage/part/*")] == [200, 200, 200]

    big.write_bytes(b"replaced" * 200)
    experiment.store("model-latest", big)  # exists: the SDK PATCHes the artifact
    assert emulator.state.artifact_bytes(seeded.experiment_id, "model-latest") == big.read_bytes()
    assert emulator.requests("PATCH", "/api/artifact/*")


def test_evaluations_and_metrics_job(
    emulator: Emulator, client: picsellia.Client, seeded: SeededIds
) -> None:
    experiment = client.get_experiment_by_id(seeded.experiment_id)
    version = experiment.get_dataset("test")
    cat, dog = version.get_label("cat"), version.get_label("dog")
    assets = version.list_assets()
    experiment.add_evaluation(assets[0], rectangles=[(2, 3, 10, 8, cat, 0.9)])
    experiment.add_evaluations(
        {
            assets[1].id: {
                "rectangles": [{"x": 3, "y": 3, "w": 11, "h": 8, "label_id": dog.id, "score": 0.5}]
            },
            assets[2].id: {"rectangles": []},
        }
    )
    stored = emulator.state.experiments[seeded.experiment_id].evaluations
    assert stored[assets[0].id].shapes["rectangles"][0]["score"] == 0.9
    assert len(experiment.list_evaluations()) == 3

    job = experiment.compute_evaluations_metrics(InferenceType.OBJECT_DETECTION)
    assert job.wait_for_done() == JobStatus.SUCCESS

    other_label = experiment.get_dataset("train").get_label("cat")
    with pytest.raises(exceptions.BadRequestError, match="not a label"):
        experiment.add_evaluation(assets[0], rectangles=[(1, 1, 1, 1, other_label, 0.5)])


def test_keypoint_versions_skeletons_exports_and_evaluations(
    emulator: Emulator, client: picsellia.Client, tmp_path: Path
) -> None:
    """A KEYPOINT version: its labels' skeletons (the SDK's routes), its export as the SDK's
    COCOFileBuilder writes one (hull boxes, area 1.0, infinities without a labelled point),
    keypoint evaluations checked against the label's skeleton and the image."""
    from pictrain.synthetic import POSE_EDGES, POSE_POINTS, make_pose_dataset

    files = make_pose_dataset(tmp_path / "data", 4, 64, seed=0, splits={"train": 1})
    document = json.loads(files["train"].read_text())
    document["annotations"][0]["keypoints"][2::3] = [0] * len(POSE_POINTS)
    files["train"].write_text(json.dumps(document))
    ids = emulator.seed_experiment(
        {"test": (files["train"].parent / "images", files["train"])}, dataset_type="KEYPOINT"
    )
    experiment = client.get_experiment_by_id(ids.experiment_id)
    version = experiment.get_dataset("test")
    skeleton = {"vertices": list(POSE_POINTS), "edges": POSE_EDGES}
    assert list(version.get_skeletons().values()) == [skeleton] * 3
    circle = version.get_label("circle")
    assert circle.get_skeleton() == skeleton

    exported = version.export_annotation_file(AnnotationFileType.COCO, str(tmp_path / "export"))
    coco = json.loads(Path(exported).read_text())
    assert all(c["keypoints"] == list(POSE_POINTS) for c in coco["categories"])
    assert all(c["skeleton"] == POSE_EDGES for c in coco["categories"])
    first, *others = coco["annotations"]
    assert first["bbox"][:2] == [float("inf")] * 2 and first["num_keypoints"] == 0
    for a in others:
        xs, ys = a["keypoints"][0::3], a["keypoints"][1::3]
        assert a["bbox"] == [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        assert a["area"] == 1.0 and a["num_keypoints"] == len(POSE_POINTS)

    asset = version.list_assets()[0]
    points = [[10, 10, 2], [5, 20, 2], [20, 20, 0], [10, 30, 1], [10, 20, 2]]
    experiment.add_evaluation(asset, keypoints=[(points, circle, 0.8)])
    stored = emulator.state.experiments[ids.experiment_id].evaluations[asset.id]
    assert stored.shapes["keypoints"][0]["keypoints"] == points
    job = experiment.compute_evaluations_metrics(InferenceType.KEYPOINT)
    assert job.wait_for_done() == JobStatus.SUCCESS
    refused = {
        "a point short": points[:-1],
        "a visibility of 3": [*points[:-1], [10, 20, 3]],
        "outside the image": [*points[:-1], [10, 65, 2]],
    }
    for why, bad in refused.items():
        with pytest.raises(exceptions.BadRequestError):
            experiment.add_evaluation(asset, keypoints=[(bad, circle, 0.8)])
            pytest.fail(why)
    train_label = experiment.get_dataset("test").create_label("person")
    with pytest.raises(exceptions.BadRequestError, match="no skeleton"):
        experiment.add_evaluation(asset, keypoints=[(points, train_label, 0.8)])


def test_job_status_run_status_and_logging(
    emulator: Emulator, client: picsellia.Client, seeded: SeededIds, tmp_path: Path
) -> None:
    experiment = client.get_experiment_by_id(seeded.experiment_id)
    experiment.update_job_status(JobStatus.RUNNING)
    job = client.get_job_by_id(str(seeded.job_id))
    job.update_job_run_with_status(JobRunStatus.RUNNING)
    job.send_logging("--#--Training\n", "--#--Training")
    job.send_logging("epoch 1/2 10%\n", "--#--Training")
    job.line_nb = 1  # a progress bar redrawn in place, as Picsellia's log monitor does
    job.send_logging("epoch 1/2 100%\n", "--#--Training")
    job.send_logging(["epoch 2/2\n", "done\n"], "--#--Training", special="buffer")
    job.line_nb += 1  # the monitor advances line_nb by the buffer's length - 1
    job.send_logging("0", "--#--End job", special="exit_code")
    with pytest.raises(exceptions.BadRequestError):
        job.send_logging(["no buffer"], "--#--Training")
    log_file = tmp_path / "training.log"
    log_file.write_text("epoch 1/2\nepoch 2/2\n")
    object_name = job.store_logging_file(log_file)
    job.update_job_run_with_status(JobRunStatus.SUCCEEDED)
    experiment.update_job_status(JobStatus.SUCCESS)

    state_job = emulator.state.jobs[seeded.job_id]
    assert state_job.status_history == ["RUNNING", "SUCCEEDED"]
    assert [line.line_nb for line in state_job.logging] == [0, 1, 1, 2, 4]
    assert state_job.view == {
        0: "--#--Training\n",
        1: "epoch 1/2 100%\n",
        2: "epoch 2/2\n",
        3: "done\n",
    }
    assert state_job.exit_code == 0
    assert emulator.state.storage.get(object_name) == log_file.read_bytes()
    assert emulator.state.experiments[seeded.experiment_id].job_status_history == [
        "RUNNING",
        "SUCCESS",
    ]
    with pytest.raises(exceptions.BadRequestError):
        job.update_job_run_with_status(JobRunStatus.FAILED)


def test_publish_experiment_as_model(
    emulator: Emulator, client: picsellia.Client, seeded: SeededIds, tmp_path: Path
) -> None:
    experiment = client.get_experiment_by_id(seeded.experiment_id)
    onnx = tmp_path / "best.onnx"
    onnx.write_bytes(b"onnx")
    experiment.store("model-latest", onnx)
    experiment.store("best-model", onnx)
    experiment.log("labelmap", {"0": "cat", "1": "dog"}, LogType.LABELMAP)
    version = experiment.export_as_model("detector")
    version.update(
        framework="ONNX",
        docker_image_name="pictrain",
        docker_tag="1",
        base_parameters={"epochs": 3},
    )
    assert [f.name for f in version.list_files()] == ["model-latest"]
    assert version.labels == {"0": "cat", "1": "dog"} and version.framework.value == "ONNX"
    assert emulator.state.model_versions[version.id].settings["docker_image"] == "pictrain"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (502, exceptions.BadGatewayError),
        (500, exceptions.InternalServerError),
        (429, exceptions.TooManyRequestError),
        (503, exceptions.PicselliaError),
        (400, exceptions.BadRequestError),
    ],
)
def test_status_faults_surface_as_sdk_exceptions(
    emulator: Emulator,
    client: picsellia.Client,
    seeded: SeededIds,
    status: int,
    error: type[Exception],
) -> None:
    experiment = client.get_experiment_by_id(seeded.experiment_id)
    emulator.faults.add("POST", "/api/experiment/*/logs", status=status, times=2)
    for _ in range(2):
        with pytest.raises(error):
            experiment.log("loss", 1.0, LogType.LINE)
    experiment.log("loss", 2.0, LogType.LINE)  # the rule ran out
    assert [r.status for r in emulator.requests("POST", "/api/experiment/*/logs")] == [
        status,
        status,
        201,
    ]
    assert emulator.state.experiments[seeded.experiment_id].logs["loss"].data == [2.0]


def test_retry_after_latency_and_regex_rules(emulator: Emulator) -> None:
    session = raw_session(emulator)
    emulator.faults.add("GET", re.compile(r"/ping$"), status=429, retry_after=1.5)
    reply = session.get(f"{emulator.url}/api/home/ping")
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "1.5"

    rule = emulator.faults.add("*", "*", latency=0.2, times=1)
    started = time.monotonic()
    assert session.get(f"{emulator.url}/api/home/ping").status_code == 200
    assert time.monotonic() - started >= 0.2 and rule.fired == 1 and rule.exhausted


def test_dropped_connections(
    emulator: Emulator, client: picsellia.Client, seeded: SeededIds, no_retry_wait: None
) -> None:
    emulator.faults.add("GET", "/api/home/ping", drop=True)
    with pytest.raises(requests.ConnectionError):
        raw_session(emulator).get(f"{emulator.url}/api/home/ping")

    emulator.faults.add("GET", "/api/organization/*/experiments/find", drop=True, times=1)
    found = client.get_experiment_by_id(seeded.experiment_id)  # the SDK retries a dropped call
    assert found.id == seeded.experiment_id
    assert [r.status for r in emulator.requests("GET", "*/experiments/find")] == [None, 200]

    emulator.faults.add("GET", "/api/experiment/*", drop=True, times=5)
    with pytest.raises(requests.ConnectionError):
        client.get_experiment_by_id(seeded.experiment_id).sync()


def test_probability_rules_follow_the_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        faults = Faults(seed)
        faults.add("*", "*", status=503, times=None, probability=0.5)
        return [faults.draw("GET", "/x") is not None for _ in range(40)]

    assert pattern(7) == pattern(7)
    assert 5 < sum(pattern(7)) < 35


def test_bad_token_is_unauthorized_everywhere(emulator: Emulator, seeded: SeededIds) -> None:
    with pytest.raises(exceptions.PicselliaError, match="invalid or missing Bearer token"):
        picsellia.Client(
            api_token="wrong", organization_id=emulator.organization_id, host=emulator.url
        )
    client = emulator.client()
    emulator.state.token = "rotated"
    with pytest.raises(exceptions.UnauthorizedError):
        client.get_experiment_by_id(seeded.experiment_id)
    assert all(r.status == 401 for r in emulator.state.requests[-1:])


def test_unknown_route_is_loud_and_recorded(emulator: Emulator, client: picsellia.Client) -> None:
    with pytest.raises(exceptions.ResourceNotFoundError, match="EMULATOR: no route"):
        client.connection.get("/api/not/emulated")
    assert [(r.method, r.path) for r in emulator.state.unknown_routes] == [
        ("GET", "/api/not/emulated")
    ]
    emulator.state.unknown_routes.clear()  # the fixture fails the test on leftovers


def test_204_carries_no_body(
    emulator: Emulator, client: picsellia.Client, seeded: SeededIds
) -> None:
    log = client.get_experiment_by_id(seeded.experiment_id).get_log("parameters")
    connection = http.client.HTTPConnection(emulator.url.removeprefix("http://"))
    headers = {"Authorization": f"Bearer {emulator.token}"}
    connection.request("DELETE", f"/api/log/{log.id}", headers=headers)
    reply = connection.getresponse()
    assert reply.status == 204 and reply.getheader("Content-Length") is None and reply.read() == b""
    connection.close()


def test_stop_leaves_no_thread_or_port() -> None:
    before = set(threading.enumerate())
    emulator = Emulator.start()
    session = raw_session(emulator)
    for _ in range(3):  # keep-alive connections stay open in handler threads
        session.get(f"{emulator.url}/api/home/ping")
    emulator.stop()
    assert set(threading.enumerate()) <= before
    with pytest.raises(requests.ConnectionError):
        session.get(f"{emulator.url}/api/home/ping")


def test_cli_seeds_a_folder_and_prints_the_job_variables(tmp_path: Path) -> None:
    dataset = write_sample_dataset(tmp_path / "dataset")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", "0", "--seed", str(dataset)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert process.stdout is not None
        env = {}
        for line in process.stdout:
            if line.startswith("# Ctrl-C"):
                break
            if line.startswith("export "):
                name, value = line.removeprefix("export ").strip().split("=", 1)
                env[name] = value
        assert {"api_token", "host", "organization_id", "experiment_id", "job_id"} <= set(env)
        client = picsellia.Client(
            api_token=env["api_token"],
            organization_id=env["organization_id"],
            host=env["host"],
            session=raw_session(),
        )
        experiment = client.get_experiment_by_id(env["experiment_id"])
        assert experiment.get_log("parameters").data == {"epochs": 2, "image_size": 32}
    finally:
        process.send_signal(2)
        assert process.wait(timeout=120) == 0  # a loaded CI machine: not a timing test
