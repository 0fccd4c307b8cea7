"""Build the platform state a training job starts from: the data, the experiment, the job.

This is what a user does in the UI before launching a run: upload images, import COCO files
into one dataset version per split, attach them under aliases, log parameters, pick a base model.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.emulator.coco import DATASET_TYPES, shapes_from_annotation
from tests.emulator.state import (
    Asset,
    Data,
    Dataset,
    DatasetVersion,
    Experiment,
    Job,
    Label,
    Log,
    Model,
    ModelVersion,
    Project,
    State,
    StoredFile,
    new_id,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class SeededIds:
    organization_id: uuid.UUID
    project_id: uuid.UUID
    experiment_id: uuid.UUID
    dataset_id: uuid.UUID
    dataset_version_ids: dict[str, uuid.UUID]
    job_id: uuid.UUID | None
    model_version_id: uuid.UUID | None


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image  # only for images the COCO file gives no size for

    with Image.open(path) as image:
        return image.size


def _add_data(state: State, path: Path, size: tuple[int, int] | None) -> Data:
    data_id = new_id()
    width, height = size or _image_size(path)
    data = Data(
        filename=path.name,
        object_name=f"data/{data_id.hex}/{path.name}",
        content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        width=width,
        height=height,
        id=data_id,
    )
    state.storage.put(data.object_name, path.read_bytes())
    state.datas[data.id] = data
    return data


def add_dataset_version(
    state: State,
    dataset: Dataset,
    version_name: str,
    images_dir: Path,
    coco_path: Path,
    dataset_type: str,
) -> DatasetVersion:
    """One version from a folder of images and its COCO file, as the SDK's COCO import makes it:
    an image gets an annotation only when the file gives it shapes; images without any, and
    images of the folder the file omits, stay never-annotated assets. A `file_name` with
    folders (`left/cat.png`, `right/cat.png`) becomes an asset named by its last part, so two
    assets of one version can share a file name, as uploads from two folders do."""
    if dataset_type not in DATASET_TYPES:
        raise ValueError(f"dataset_type must be one of {DATASET_TYPES}, not {dataset_type!r}")
    document: dict[str, Any] = json.loads(Path(coco_path).read_text())
    version = DatasetVersion(dataset.id, dataset.name, version_name, dataset_type)
    labels = {c["id"]: Label(c["name"], skeleton=_skeleton(c)) for c in document["categories"]}
    version.labels = list(labels.values())
    shapes_by_image: dict[int, list[Any]] = {}
    for annotation in document.get("annotations", []):
        label = labels[annotation["category_id"]]
        shapes = shapes_from_annotation(annotation, dataset_type, label.id)
        shapes_by_image.setdefault(annotation["image_id"], []).extend(shapes)
    listed: set[Path] = set()
    for image in document.get("images", []):
        path = Path(images_dir) / image["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{coco_path} lists {image['file_name']}, not in {images_dir}")
        size = (image["width"], image["height"]) if image.get("width") else None
        data = _add_data(state, path, size)
        shapes = shapes_by_image.get(image["id"], [])
        version.assets.append(Asset(data.id, shapes, annotated=bool(shapes)))
        listed.add(path.resolve())
    for path in sorted(Path(images_dir).iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.resolve() not in listed:
            version.assets.append(Asset(_add_data(state, path, None).id))
    state.datasets[dataset.id] = dataset
    state.dataset_versions[version.id] = version
    return version


def _skeleton(category: dict[str, Any]) -> dict[str, Any] | None:
    """A category's `keypoints` and `skeleton` as the label's skeleton (what the SDK's COCO
    import sets, `_ensures_skeleton_set`)."""
    if category.get("keypoints") is None:
        return None
    return {"vertices": category["keypoints"], "edges": category.get("skeleton") or []}


def store_file(state: State, name: str, path: Path, kind: str) -> StoredFile:
    path = Path(path)
    stored = StoredFile(name, path.name, f"{kind}/{uuid.uuid4().hex}/{path.name}", large=False)
    state.storage.put(stored.object_name, path.read_bytes())
    return stored


def add_model_version(
    state: State,
    model_name: str,
    files: Mapping[str, Path],
    dataset_type: str,
    label_names: list[str],
    framework: str,
) -> ModelVersion:
    """The next version of model `model_name` (created when new), holding `files` (name ->
    local file)."""
    model = next((m for m in state.models.values() if m.name == model_name), Model(model_name))
    number = sum(v.model_id == model.id for v in state.model_versions.values())
    version = ModelVersion(
        model_id=model.id,
        name=f"{model_name}-{number}",
        version=number,
        type=dataset_type,
        framework=framework,
        labels={str(k): name for k, name in enumerate(label_names)},
    )
    version.files = {
        name: store_file(state, name, path, "model_file") for name, path in files.items()
    }
    state.models[model.id] = model
    state.model_versions[version.id] = version
    return version


def _base_model_version(
    state: State, files: Mapping[str, Path], dataset_type: str, labels: list[Label]
) -> ModelVersion:
    names = [label.name for label in labels]
    return add_model_version(state, "emulated-base-model", files, dataset_type, names, "PYTORCH")


def seed_experiment(
    state: State,
    *,
    splits: Mapping[str, tuple[Path, Path]],
    dataset_type: str = "OBJECT_DETECTION",
    parameters: Mapping[str, Any] | None = None,
    experiment_files: Mapping[str, Path] | None = None,
    base_model_files: Mapping[str, Path] | None = None,
    with_job: bool = True,
    project_name: str = "emulated-project",
    experiment_name: str = "emulated-experiment",
    dataset_name: str = "emulated-dataset",
) -> SeededIds:
    project = next((p for p in state.projects.values() if p.name == project_name), None)
    if project is None:
        project = Project(project_name)
        state.projects[project.id] = project
    experiment = Experiment(experiment_name, project.id)
    dataset = Dataset(dataset_name)
    for alias, (images_dir, coco_path) in splits.items():
        version = add_dataset_version(state, dataset, alias, images_dir, coco_path, dataset_type)
        experiment.datasets[alias] = version.id
    if parameters is not None:
        experiment.logs["parameters"] = Log("parameters", "TABLE", dict(parameters))
    for name, path in (experiment_files or {}).items():
        experiment.artifacts[name] = store_file(state, name, path, "artifact")
    model_version = None
    if base_model_files:
        first = state.dataset_versions[next(iter(experiment.datasets.values()))]
        model_version = _base_model_version(state, base_model_files, dataset_type, first.labels)
        experiment.base_model_version_id = model_version.id
    job = Job() if with_job else None
    if job is not None:
        state.jobs[job.id] = job
    state.experiments[experiment.id] = experiment
    return SeededIds(
        organization_id=state.organization.id,
        project_id=project.id,
        experiment_id=experiment.id,
        dataset_id=dataset.id,
        dataset_version_ids=dict(experiment.datasets),
        job_id=job.id if job else None,
        model_version_id=model_version.id if model_version else None,
    )
