"""The emulator's workflow routes against the real SDK: what it refuses, as strictly as the
platform might (tests/emulator/README.md, "Workflow routes")."""

from __future__ import annotations

import uuid
from pathlib import Path

import picsellia
import pytest
import requests
from picsellia import exceptions

from tests.emulator import Emulator
from tests.emulator.coco import export
from tests.emulator.dataset_dir import png_bytes


@pytest.fixture
def client(emulator: Emulator) -> picsellia.Client:
    return emulator.client()


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    paths = []
    for k in range(3):
        path = tmp_path / f"img{k}.png"
        path.write_bytes(png_bytes(16, 12, (10 * k, 0, 0)))
        paths.append(path)
    return paths


def test_data_uploaded_with_tags_are_found_by_tag_query_and_file_name(
    client: picsellia.Client, images: list[Path]
) -> None:
    lake = client.get_datalake()
    lake.upload_data([str(p) for p in images[:2]], tags=["a", "train"])
    lake.upload_data(str(images[2]), tags=["a"])
    assert {d.filename for d in lake.list_data(tags=["a", "train"], intersect_tags=True)} == {
        "img0.png",
        "img1.png",
    }
    assert len(lake.list_data(tags=["train", "a"])) == 3  # any of
    found = lake.list_data(filenames=["img2.png", "img0.png"], tags=["train"], intersect_tags=True)
    assert [d.filename for d in found] == ["img0.png"]
    with pytest.raises(exceptions.NoDataError):
        lake.list_data(tags=["nothing"])
    assert lake.get_data_tag("a").name == "a"
    with pytest.raises(exceptions.ResourceConflictError):
        lake.create_data_tag("a")


def test_other_query_languages_are_refused_not_guessed(client: picsellia.Client) -> None:
    with pytest.raises(exceptions.BadRequestError, match="not emulated"):
        client.get_datalake().list_data(q="metadata.width > 10")


def test_dataset_versions_refuse_twins_and_data_added_twice(
    client: picsellia.Client, images: list[Path]
) -> None:
    data = client.get_datalake().upload_data([str(p) for p in images], tags=["x"])
    dataset = client.create_dataset("ds")
    with pytest.raises(exceptions.ResourceConflictError):
        client.create_dataset("ds")
    version = dataset.create_version("train", type="OBJECT_DETECTION")
    with pytest.raises(exceptions.ResourceConflictError):
        dataset.create_version("train")
    version.add_data(data)
    assert len(version.list_assets()) == 3
    with pytest.raises(exceptions.ResourceConflictError):
        version.add_data(data)
    assert dataset.get_version("train").id == version.id


def test_coco_import_replaces_and_refuses_shapes_of_another_type(
    emulator: Emulator, client: picsellia.Client, images: list[Path], tmp_path: Path
) -> None:
    data = client.get_datalake().upload_data([str(p) for p in images], tags=["x"])
    version = client.create_dataset("ds").create_version("v", type="OBJECT_DETECTION")
    version.add_data(data)
    coco = tmp_path / "coco.json"
    coco.write_text(
        '{"images": [{"id": 1, "file_name": "img0.png", "width": 16, "height": 12}],'
        '"categories": [{"id": 7, "name": "cat", "supercategory": "animal"}],'
        '"annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}]}'
    )
    for _ in range(2):
        version.import_annotations_coco_file(str(coco))
    state = emulator.state.dataset_versions[version.id]
    shapes = {emulator.state.datas[a.data_id].filename: len(a.shapes) for a in state.assets}
    assert shapes == {"img0.png": 1, "img1.png": 0, "img2.png": 0}
    exported = export(emulator.state, state, "FILENAME", state.assets)  # what the job downloads
    assert [image["file_name"] for image in exported["images"]] == ["img0.png"]
    assert [label.name for label in state.labels] == ["cat"]
    assert state.labels[0].group_id == state.label_groups[0].id  # from supercategory
    with pytest.raises(exceptions.BadRequestError):
        version.set_type("CLASSIFICATION")


def _published_version(emulator: Emulator, tmp_path: Path, with_onnx: bool) -> str:
    """A model version holding a model-latest file (or a .pt only), by seeding."""
    from tests.emulator.seeding import store_file
    from tests.emulator.state import Model, ModelVersion

    path = tmp_path / ("model.onnx" if with_onnx else "weights.pt")
    path.write_bytes(b"not really a model")
    state = emulator.state
    with state.lock:
        model = Model("m")
        version = ModelVersion(model.id, "m-0", 0, type="OBJECT_DETECTION", labels={"0": "cat"})
        version.files["model-latest"] = store_file(state, "model-latest", path, "model_file")
        state.models[model.id] = model
        state.model_versions[version.id] = version
    return str(version.id)


def test_deploying_needs_an_onnx_model_latest(
    emulator: Emulator, client: picsellia.Client, tmp_path: Path
) -> None:
    version = client.get_model_version_by_id(_published_version(emulator, tmp_path, False))
    with pytest.raises(exceptions.BadRequestError, match="model-latest"):
        version.deploy(name="d")


def test_a_serving_token_opens_the_serving_of_its_deployment_only(
    emulator: Emulator, client: picsellia.Client, tmp_path: Path
) -> None:
    version = client.get_model_version_by_id(_published_version(emulator, tmp_path, True))
    deployment = version.deploy(name="d", min_threshold=0.5)
    assert client.get_deployment("d").get_model_version().id == version.id
    with pytest.raises(exceptions.ResourceConflictError):
        version.deploy(name="d")
    session = requests.Session()
    session.trust_env = False
    login = session.post(
        f"{emulator.url}/api/login",
        json={"api_token": emulator.token, "deployment_id": str(deployment.id)},
    )
    token = login.json()["jwt"]
    platform_route = session.get(
        f"{emulator.url}/api/deployment/{deployment.id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert platform_route.status_code == 401
    refused = session.post(f"{emulator.url}/api/login", json={"api_token": "wrong"})
    assert refused.status_code == 401
    with pytest.raises(exceptions.PicselliaError, match="onnxruntime"):
        deployment.predict(str(tmp_path / "model.onnx"))  # not an ONNX model: a clear 400


def test_pipelines_refuse_what_is_not_set_up_and_repeated_set_ups(
    emulator: Emulator, client: picsellia.Client, tmp_path: Path
) -> None:
    version = client.get_model_version_by_id(_published_version(emulator, tmp_path, True))
    deployment = version.deploy(name="d")
    project = client.create_project("p")
    with pytest.raises(exceptions.BadRequestError, match="feedback loop"):
        deployment.setup_continuous_training(
            project, trigger="FEEDBACK_LOOP", threshold=10, experiment_parameters={"epochs": 1}
        )
    deployment.setup_feedback_loop()
    with pytest.raises(exceptions.ResourceConflictError):
        deployment.setup_feedback_loop()
    with pytest.raises(exceptions.BadRequestError, match="continuous training"):
        deployment.setup_continuous_deployment("DEPLOY_SHADOW")
    deployment.setup_continuous_training(
        project, trigger="FEEDBACK_LOOP", threshold=10, experiment_parameters={"epochs": 1}
    )
    deployment.setup_continuous_deployment("DEPLOY_SHADOW")
    held = emulator.state.deployments[deployment.id]
    assert held.continuous_training.threshold == 10
    assert held.continuous_deployment == "DEPLOY_SHADOW"


def test_a_launch_runs_the_base_versions_image_once_at_a_time(
    emulator: Emulator, client: picsellia.Client
) -> None:
    model = client.create_model("img")
    version = model.create_version(name="1.0", type="OBJECT_DETECTION", framework="PYTORCH")
    project = client.create_project("p")
    bare = project.create_experiment("bare", base_model_version=version)
    with pytest.raises(exceptions.BadRequestError, match="docker image"):
        bare.launch()
    version.update(docker_image_name="reg/img", docker_tag="1.0", base_parameters={"epochs": 3})
    experiment = project.create_experiment("e", base_model_version=version)
    assert experiment.get_log("parameters").data == {"epochs": 3}  # the version's, none given
    job = experiment.launch(gpus=2)
    with pytest.raises(exceptions.ResourceConflictError):
        experiment.launch()
    (launched,) = emulator.launched_jobs(experiment.id)
    assert launched.id == job.id
    assert (launched.launch.docker_image, launched.launch.docker_tag) == ("reg/img", "1.0")
    assert launched.launch.gpus == 2
    assert emulator.launch_env(launched)["experiment_id"] == str(experiment.id)
    with pytest.raises(exceptions.ResourceConflictError):
        project.create_experiment("e")


def test_training_data_and_reviews_are_refused_until_set_up(
    emulator: Emulator, client: picsellia.Client, tmp_path: Path, images: list[Path]
) -> None:
    from tests.emulator.state import Prediction

    version = client.get_model_version_by_id(_published_version(emulator, tmp_path, True))
    deployment = version.deploy(name="d")
    with pytest.raises(exceptions.BadRequestError, match="no training data"):
        deployment.check_training_data_metrics_status()
    data = client.get_datalake().upload_data(str(images[0]), tags=["x"])
    dataset = client.create_dataset("ds")
    labels = dataset.create_version("c", type="CLASSIFICATION")
    with pytest.raises(exceptions.BadRequestError, match="CLASSIFICATION version"):
        deployment.set_training_data(labels)
    train = dataset.create_version("train", type="OBJECT_DETECTION")
    deployment.set_training_data(train)
    assert deployment.check_training_data_metrics_status() == "DONE"
    held = emulator.state.deployments[deployment.id]
    held.predictions.append(Prediction("img0.png", True, {}, data.id))
    with pytest.raises(ValueError, match="no feedback loop version"):
        emulator.submit_review(deployment.id, data.id, [("cat", (1, 1, 4, 4))])
    deployment.setup_feedback_loop()
    deployment.attach_dataset_version_to_feedback_loop(train)
    assert emulator.submit_review(deployment.id, data.id, [("cat", (1, 1, 4, 4))]) is None
    (asset,) = emulator.state.dataset_versions[train.id].assets
    assert asset.data_id == data.id and asset.annotated and len(asset.shapes) == 1
    with pytest.raises(ValueError, match="cannot be submitted again"):
        emulator.submit_review(deployment.id, data.id, [])
    with pytest.raises(ValueError, match="no monitored prediction"):
        emulator.submit_review(deployment.id, uuid.uuid4(), [])
