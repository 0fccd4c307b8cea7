"""INT8 calibration reads a seeded sample of the train split, never the test split."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pictrain.data.prepare import prepare_dataset
from pictrain.exports.calibration import CALIBRATION_SPLIT, calibration_data
from pictrain.platform.local import LocalBackend
from pictrain.synthetic import DATASET_MAKERS


def _prepared(task, tmp_path):
    DATASET_MAKERS[task](tmp_path / "data", n_images=40, image_size=32, seed=0)
    splits = LocalBackend(tmp_path / "data", tmp_path / "run").datasets(tmp_path)
    return prepare_dataset(task, splits, tmp_path / "dataset", seed=0)


def test_detection_calibrates_on_train_images_only(tmp_path):
    dataset = _prepared("detect", tmp_path)
    data, count = calibration_data("detect", dataset, 10, 0, tmp_path / "calibration")
    described = yaml.safe_load(data.read_text())
    listed = described[CALIBRATION_SPLIT]
    images = Path(listed).read_text().splitlines()
    assert count == len(images) == 10
    train = {p.resolve() for p in dataset.images_dir("train").iterdir()}
    test = {p.resolve() for p in dataset.images_dir("test").iterdir()}
    drawn = {Path(image) for image in images}
    assert drawn <= train and not drawn & test
    again, _ = calibration_data("detect", dataset, 10, 0, tmp_path / "again")
    relisted = Path(yaml.safe_load(again.read_text())[CALIBRATION_SPLIT])
    assert relisted.read_text() == Path(listed).read_text()  # seeded
    _, count = calibration_data("detect", dataset, 10_000, 0, tmp_path / "all")
    assert count == len(train)


@pytest.mark.parametrize("task", ["detect", "segment", "pose", "obb"])
def test_ultralytics_reads_the_calibration_data_of_every_task(task, tmp_path):
    """As its exporter does before calibrating: pose's data needs its kpt_shape."""
    from ultralytics.data.utils import check_det_dataset

    dataset = _prepared(task, tmp_path)
    data, count = calibration_data(task, dataset, 10, 0, tmp_path / "calibration")
    read = check_det_dataset(str(data), split=CALIBRATION_SPLIT)
    assert len(Path(read[CALIBRATION_SPLIT]).read_text().splitlines()) == count == 10
    trained = yaml.safe_load(dataset.train_data.read_text())
    assert read.get("kpt_shape") == trained.get("kpt_shape")
    assert "test" not in yaml.safe_load(data.read_text())


def test_classification_calibrates_on_train_images_only(tmp_path):
    dataset = _prepared("classify", tmp_path)
    root, count = calibration_data("classify", dataset, 8, 0, tmp_path / "calibration")
    linked = [p for p in (root / CALIBRATION_SPLIT).rglob("*") if p.is_file()]
    assert count == len(linked) == 8
    train = dataset.root / "train"
    for link in linked:
        target = link.resolve()
        assert target.is_relative_to(train.resolve()), target
        assert target.parent.name == link.parent.name  # in its own class's folder
    assert {p.name for p in root.iterdir()} == {CALIBRATION_SPLIT}
