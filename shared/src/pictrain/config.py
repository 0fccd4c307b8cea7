"""What an image is (images/<name>/model.toml), and what each task is: every fact that differs
between tasks, in one table (`TASK_SPECS`).

A new task is a `TaskSpec` here plus its entry in each table of functions keyed by task (the
converter, the synthetic data, the trainer, the ONNX decoder, the evaluation payload);
tests/unit/test_tasks.py names any table that lacks it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from pictrain.errors import UserError

Task = Literal["detect", "segment", "classify", "pose", "obb"]
TASKS: tuple[Task, ...] = get_args(Task)
# What the converter keeps of each COCO annotation beyond its box and category.
CocoField = Literal["segmentation", "keypoints"]
# COCO's evaluation kinds (pycocotools' iouType), and the suffix of their metrics' names, as
# ultralytics' curves carry them: (B) box metrics, (M) mask metrics, (P) keypoint metrics;
# "obb" is ours (the box protocol with the rotated IoU: `pictrain.evaluate.rotated`), and
# ultralytics calls oriented-box metrics box metrics.
IouType = Literal["bbox", "segm", "keypoints", "obb"]
IOU_SUFFIX: dict[IouType, str] = {"bbox": "(B)", "segm": "(M)", "keypoints": "(P)", "obb": "(B)"}


@dataclass(frozen=True)
class TaskSpec:
    """The facts of one task that the pipeline reads, instead of testing the task's name."""

    name: Task
    image_suffix: str  # image folders are `<family>-<suffix>` (yolov8-detection)
    default_model: str  # trained by `--task` without a model.toml
    model_examples: str  # named in errors about `model`
    # Picsellia dataset types it trains on; the first is its model versions' inference type.
    dataset_types: tuple[str, ...]
    unit: str  # what a conversion writes, plural: "boxes"
    per_image: bool  # one class per image, no boxes: ultralytics' class-folder layout
    coco_fields: frozenset[CocoField]
    scored: tuple[IouType, ...]  # COCOeval kinds of the test evaluation (none: classification)
    # The kind the operating point matches predictions to truths by (IoU 0.5): the task's own
    # shape; pose by its boxes (an object found, whatever its points). None: classification.
    operating_iou: IouType | None
    gate_metric: str  # what the deploy-parity gate compares, as the evaluation names it
    evaluation_shape: str  # the SDK's EvaluationFormat field its predictions are sent as

    @property
    def headline(self) -> tuple[str, ...]:
        """The test metrics a newcomer looks at first (the demo prints them)."""
        if not self.scored:
            return (self.gate_metric,)
        return tuple(f"{m}{IOU_SUFFIX[t]}" for t in self.scored for m in ("mAP50", "mAP50-95"))


_SPECS = (
    TaskSpec(
        name="detect",
        image_suffix="detection",
        default_model="yolov8n",
        model_examples="yolov8n, yolov8s, yolo11n, yolo26n, rtdetr-l",
        dataset_types=("OBJECT_DETECTION",),
        unit="boxes",
        per_image=False,
        coco_fields=frozenset(),
        scored=("bbox",),
        operating_iou="bbox",
        gate_metric="mAP50-95(B)",
        evaluation_shape="rectangles",
    ),
    TaskSpec(
        name="segment",
        image_suffix="segmentation",
        default_model="yolov8n-seg",
        model_examples="yolov8n-seg, yolo11s-seg, yolo26n-seg",
        dataset_types=("SEGMENTATION",),
        unit="polygons",
        per_image=False,
        coco_fields=frozenset({"segmentation"}),
        scored=("bbox", "segm"),
        operating_iou="segm",
        gate_metric="mAP50-95(M)",
        evaluation_shape="polygons",
    ),
    TaskSpec(
        name="classify",
        image_suffix="classification",
        default_model="yolov8n-cls",
        model_examples="yolov8n-cls, yolo11s-cls, yolo26n-cls",
        dataset_types=("CLASSIFICATION",),
        unit="labelled images",
        per_image=True,
        coco_fields=frozenset(),
        scored=(),
        operating_iou=None,
        gate_metric="accuracy_top1",
        evaluation_shape="classifications",
    ),
    TaskSpec(
        name="pose",
        image_suffix="pose",
        default_model="yolov8n-pose",
        model_examples="yolov8n-pose, yolo11s-pose, yolo26n-pose",
        # KEYPOINT versions hold keypoints; MULTI ones keypoints and the rectangles they sit in.
        dataset_types=("KEYPOINT", "MULTI"),
        unit="objects",
        per_image=False,
        coco_fields=frozenset({"keypoints"}),
        scored=("bbox", "keypoints"),
        operating_iou="bbox",
        gate_metric="mAP50-95(P)",
        evaluation_shape="keypoints",
    ),
    TaskSpec(
        name="obb",
        image_suffix="obb",
        default_model="yolov8n-obb",
        model_examples="yolov8n-obb, yolo11s-obb, yolo26n-obb",
        # outlines become their minimum-area rectangles; boxes are taken at angle 0. Its models
        # are SEGMENTATION ones: their evaluations are 4-point polygons.
        dataset_types=("SEGMENTATION", "OBJECT_DETECTION"),
        unit="oriented boxes",
        per_image=False,
        coco_fields=frozenset({"segmentation"}),
        scored=("obb",),
        operating_iou="obb",
        gate_metric="mAP50-95(B)",
        evaluation_shape="polygons",
    ),
)
TASK_SPECS: dict[Task, TaskSpec] = {spec.name: spec for spec in _SPECS}
DEFAULT_MODELS: dict[Task, str] = {task: spec.default_model for task, spec in TASK_SPECS.items()}


def task_spec(task: str) -> TaskSpec:
    return TASK_SPECS[task]  # type: ignore[index]


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task = "detect"
    model: str = ""
    defaults: dict[str, Any] = {}
    # The image's model.toml; None for a bare local run, whose task `--task` chose.
    _file: Path | None = PrivateAttr(default=None)

    @property
    def file(self) -> Path | None:
        return self._file

    @model_validator(mode="before")
    @classmethod
    def _default_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model"):
            task = data.get("task", "detect")
            return {**data, "model": DEFAULT_MODELS.get(task, "")}
        return data

    @property
    def spec(self) -> TaskSpec:
        return TASK_SPECS[self.task]


def load_model_config(path: Path | None, task: Task | None = None) -> ModelConfig:
    """The image's config; for bare local runs, the default model of `task` (detection)."""
    if path is None:
        return ModelConfig.model_validate({"task": task or "detect"})
    if task is not None:
        raise UserError(f"--task {task} and a model config ({path}) both given: pick one")
    try:
        config = ModelConfig.model_validate(tomllib.loads(path.read_text()))
    except FileNotFoundError:
        raise UserError(f"model config {path} does not exist") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise UserError(f"model config {path} is invalid: {exc}") from None
    config._file = path
    return config
