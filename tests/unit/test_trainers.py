"""Every model family trains with pictrain's trainer class, the one DDP workers rebuild."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n-seg", "yolov8n-cls", "rtdetr-l"])
def test_each_family_gets_our_subclass_of_its_ultralytics_trainer(name: str) -> None:
    from pictrain.train.models import model_family
    from pictrain.train.trainers import trainer_for

    model = model_family(name)(f"{name}.yaml")
    theirs = model.task_map[model.task]["trainer"]
    ours = trainer_for(model)
    assert issubclass(ours, theirs) and ours is not theirs
    assert ours.__module__ == "pictrain.train.trainers"  # importable by name in a worker
