"""Build the model to train: from starting weights when there are some, else from its config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pictrain.errors import UserError


def build_model(name: str, weights: Path | None) -> Any:
    """A YOLO model; `name` is an architecture (yolov8n, yolo11s...), never a hub download."""
    from ultralytics import YOLO

    if weights is not None:
        try:
            return YOLO(str(weights))
        except Exception as exc:
            raise UserError(f"starting weights {weights.name} cannot be loaded: {exc}") from None
    if name.endswith((".pt", ".pth", ".onnx")):
        raise UserError(
            f"model {name!r} names a weights file; `model` is an architecture such as yolov8n, "
            "and starting weights come from the experiment's files (pretrained-weights) or its "
            "base model version"
        )
    try:
        return YOLO(f"{name}.yaml")
    except FileNotFoundError:
        raise UserError(
            f"unknown model {name!r}: expected an ultralytics architecture such as "
            "yolov8n, yolov8s, yolo11n, yolo11m"
        ) from None
