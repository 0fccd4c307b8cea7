"""Every task is wired everywhere: each table of functions keyed by task has every task of
`pictrain.config.TASK_SPECS`, so adding a task is a spec plus the entries this test names."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.emulator.fixtures"]  # sets the SDK's logging switch before its import

from picsellia.types.enums import InferenceType  # noqa: E402
from picsellia.types.payload import EvaluationFormat  # noqa: E402

from pictrain.config import DEFAULT_MODELS, IOU_SUFFIX, TASK_SPECS, TASKS  # noqa: E402
from pictrain.data.prepare import CONVERTERS  # noqa: E402
from pictrain.evaluate.onnx_model import EXTRAS  # noqa: E402
from pictrain.evaluate.predict import SHAPE_OF  # noqa: E402
from pictrain.platform.evaluations import FORMATS  # noqa: E402
from pictrain.synthetic import DATASET_MAKERS  # noqa: E402
from pictrain.train.models import check_model_name  # noqa: E402
from pictrain.workflow.predict import KEY_OF_SHAPE, TASK_OF_TYPE  # noqa: E402
from tests.emulator.coco import DATASET_TYPES  # noqa: E402


def test_the_task_literal_is_the_table():
    assert set(TASKS) == set(TASK_SPECS)
    assert all(spec.name == task for task, spec in TASK_SPECS.items())


@pytest.mark.parametrize("task", TASKS)
def test_every_table_keyed_by_task_has_it(task):
    assert task in CONVERTERS
    assert task in DATASET_MAKERS


@pytest.mark.parametrize("task", TASKS)
def test_its_spec_names_what_exists(task):
    spec = TASK_SPECS[task]
    check_model_name(task, DEFAULT_MODELS[task])
    for example in spec.model_examples.split(", "):
        check_model_name(task, example)
    for kind in spec.dataset_types:
        InferenceType(kind)  # a Picsellia dataset type
        assert kind in DATASET_TYPES, f"the emulator does not hold {kind} versions"
    assert spec.evaluation_shape in EvaluationFormat.model_fields
    assert spec.evaluation_shape in FORMATS and spec.evaluation_shape in KEY_OF_SHAPE
    assert set(spec.scored) <= set(IOU_SUFFIX)
    if spec.scored:  # scored as instances: made into evaluations from them
        assert spec.evaluation_shape in SHAPE_OF


def test_a_deployment_type_names_one_task():
    """The first task whose models have that type (oriented boxes' are SEGMENTATION, read as
    segmentation: a served polygon is a polygon)."""
    for kind, task in TASK_OF_TYPE.items():
        claiming = [t for t, spec in TASK_SPECS.items() if spec.dataset_types[0] == kind]
        assert task == claiming[0]
    assert set(TASK_OF_TYPE) == {spec.dataset_types[0] for spec in TASK_SPECS.values()}


def test_decoders_are_of_tasks():
    assert set(EXTRAS) <= set(TASKS)


def test_each_task_has_our_trainer():
    """ultralytics' trainer of every task is replaced by the job's (`trainer_for`)."""
    from ultralytics import YOLO

    from pictrain.train.trainers import trainer_for

    for task in TASKS:
        model = YOLO(f"{DEFAULT_MODELS[task]}.yaml")
        assert trainer_for(model).__module__ == "pictrain.train.trainers"
