"""Which model to train: an ultralytics architecture, from starting weights or from its config."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pictrain import safeload
from pictrain.config import task_spec
from pictrain.errors import UserError


def check_model_name(task: str, name: str, *, image: bool = True) -> None:
    """Fail before any download when `name` is no architecture of this image's task (of the
    `--task` a bare local run was given, when no `image`)."""
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    examples = task_spec(task).model_examples
    if name.endswith((".pt", ".pth", ".onnx")):
        raise UserError(
            f"model {name!r} names a weights file; `model` is an architecture such as "
            f"{examples.split(',')[0]}, and starting weights come from the experiment's "
            "files (pretrained-weights), its base model version or the image's own "
            "pretrained weights for that architecture"
        )
    try:
        config = yaml_model_load(f"{name}.yaml")
    except FileNotFoundError:
        raise UserError(f"unknown model {name!r}; {task} models are e.g. {examples}") from None
    # guess_model_task does not recognise RT-DETR's decoder head; RT-DETR only detects.
    model_task = guess_model_task(config) or ("detect" if name.startswith("rtdetr") else None)
    if model_task != task and not image:
        raise UserError(
            f"model {name!r} is a {model_task} model and this run trains {task} models: "
            f"run it with --task {model_task}"
        )
    if model_task != task:
        raise UserError(
            f"model {name!r} is a {model_task} model; this image trains {task} models "
            f"(e.g. {examples})"
        )


def model_family(name: str) -> Any:
    """RT-DETR has its own ultralytics class; every YOLO generation shares one."""
    from ultralytics import RTDETR, YOLO

    return RTDETR if name.startswith("rtdetr") else YOLO


def check_starting_weights(weights: Path) -> None:
    """Refuse starting weights that would run code or cannot be read, before the dataset is
    downloaded (one restricted load more than training needs, once per job)."""
    with _starting_weights(weights) as what:
        safeload.load(weights, what)


def head_arguments(model: Any) -> dict[str, Any]:
    """ultralytics' arguments that select the head a model trains, predicts and exports with.

    YOLO26's head (and YOLOv10's) has a one-to-one branch beside the one-to-many one: NMS-free,
    its rows are the detections. ultralytics uses the one-to-many branch unless told `nms=False`,
    in validation (hence the choice of best.pt), prediction and export alike; pictrain always
    tells it, so the weights are chosen, scored and deployed on the same, NMS-free, branch
    (docs/evaluation.md). `model`: an ultralytics `YOLO` (or `RTDETR`).
    """
    head = model.model.model[-1]
    return {"nms": False} if getattr(head, "one2one_cv2", None) is not None else {}


def build_model(task: str, name: str, weights: Path | None) -> Any:
    family = model_family(name)
    if weights is None:
        return family(f"{name}.yaml")
    with _starting_weights(weights) as what:
        model = safeload.model(family, weights, what)
    if model.task != task:
        raise UserError(f"starting weights {weights.name} are a {model.task} model, not {task}")
    return model


@contextlib.contextmanager
def _starting_weights(weights: Path) -> Iterator[str]:
    """How errors name them; unreadable ones are the user's to fix too."""
    try:
        yield f"starting weights {weights}"
    except safeload.UnreadableWeights as exc:
        raise UserError(str(exc)) from None
