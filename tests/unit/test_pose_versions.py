"""KEYPOINT and MULTI versions as a pose job fetches and converts them (the real SDK against the
emulator, no training): the skeletons come with the export, Picsellia's hull boxes are fixed,
a MULTI version's rectangles become the boxes, and a version of another type is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.emulator import Emulator

pytest_plugins = ["tests.emulator.fixtures"]

from pictrain.data.prepare import prepare_dataset  # noqa: E402  (after the SDK logging switch)
from pictrain.errors import UserError  # noqa: E402
from pictrain.platform.env import PicselliaContext  # noqa: E402
from pictrain.platform.picsellia import PicselliaBackend  # noqa: E402
from pictrain.platform.retry import RetryPolicy  # noqa: E402
from pictrain.synthetic import POSE_POINTS, make_pose_dataset  # noqa: E402


def pose_splits(folder: Path, rectangles: bool = False) -> dict[str, tuple[Path, Path]]:
    """A small synthetic pose dataset; with `rectangles`, each object's shape box is there
    too, as a rectangle of its label (a MULTI version)."""
    files = make_pose_dataset(folder, 12, 64, seed=0, splits={"train": 6, "val": 3, "test": 3})
    for coco_file in files.values():
        document = json.loads(coco_file.read_text())
        if rectangles:
            boxes = [
                {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": _around(a)}
                for a in document["annotations"]
            ]
            document["annotations"] += boxes
            for k, annotation in enumerate(document["annotations"], 1):
                annotation["id"] = k
        coco_file.write_text(json.dumps(document))
    return {name: (coco.parent / "images", coco) for name, coco in files.items()}


def _around(annotation: dict) -> list[int]:
    """A box 2 px larger than the points' hull on each side."""
    x, y, w, h = annotation["bbox"]
    return [round(x) - 2, round(y) - 2, round(w) + 4, round(h) + 4]


def fetched(emulator: Emulator, splits, dataset_type: str, tmp_path: Path, task: str = "pose"):
    ids = emulator.seed_experiment(splits, dataset_type=dataset_type)
    context = PicselliaContext.model_validate(emulator.job_env(ids))
    backend = PicselliaBackend(context, task, RetryPolicy(base_delay=0.01))
    try:
        return backend.datasets(tmp_path / "downloads")
    finally:
        backend.close()


def test_a_keypoint_version_is_fetched_with_its_skeletons_and_converted(
    emulator: Emulator, tmp_path: Path
) -> None:
    splits = fetched(emulator, pose_splits(tmp_path / "data"), "KEYPOINT", tmp_path)
    coco = json.loads(splits["train"].coco_file.read_text())
    assert all(c["keypoints"] == list(POSE_POINTS) for c in coco["categories"])
    dataset = prepare_dataset("pose", splits, tmp_path / "dataset", seed=0)
    assert dataset.keypoints is not None and dataset.keypoints.names == POSE_POINTS
    train = dataset.summaries["train"]
    objects = sum(1 for a in coco["annotations"] if a.get("keypoints"))
    assert train.labels_written == train.boxes_from_points == train.areas_recomputed == objects


def test_a_multi_version_takes_its_rectangles_as_the_boxes(
    emulator: Emulator, tmp_path: Path
) -> None:
    splits = fetched(emulator, pose_splits(tmp_path / "data", True), "MULTI", tmp_path)
    dataset = prepare_dataset("pose", splits, tmp_path / "dataset", seed=0)
    for summary in dataset.summaries.values():
        assert summary.labels_written == summary.boxes_from_rectangles > 0
        assert summary.boxes_from_points == summary.boxes_without_keypoints == 0


def test_a_detection_version_is_refused_by_a_pose_image(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path
) -> None:
    from tests.emulator.dataset_dir import read_dataset_dir

    splits, _ = read_dataset_dir(sample_dataset)
    with pytest.raises(UserError) as refused:
        fetched(emulator, splits, "OBJECT_DETECTION", tmp_path)
    assert str(refused.value) == (
        "the dataset version attached as 'test' is a OBJECT_DETECTION dataset; this image "
        "trains pose and needs KEYPOINT or MULTI datasets"
    )
    assert not (tmp_path / "downloads").exists()  # refused before any download
