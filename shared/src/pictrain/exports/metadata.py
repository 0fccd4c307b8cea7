"""pictrain's keys in every export, beside ultralytics' own, each format where it keeps them:
ONNX `metadata_props` (text: JSON), OpenVINO's `metadata.yaml`, TorchScript's extra file
`config.txt` (JSON), the JSON header of a TensorRT engine. So every file says what
`pictrain.evaluate.onnx_model.OnnxModel` needs to read it as `model-latest.onnx` is read: the
kind of outputs, a pose model's point layout, the operating point `pictrain predict` keeps
predictions at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pictrain.config import task_spec
from pictrain.evaluate.onnx_model import (
    END2END,
    IMAGE_SIZE_KEY,
    LABELMAP_KEY,
    OPERATING_POINT_KEY,
    OUTPUTS_KEY,
    QUERIES,
    RAW,
    RTDETR_HEAD,
    SKELETON_KEY,
    TASK_KEY,
)
from pictrain.evaluate.runtimes import OPENVINO_METADATA, TORCHSCRIPT_METADATA, engine_header


def ours(
    task: str,
    image_size: int,
    labelmap: dict[str, str],
    skeleton: dict[str, Any] | None,
    head: str,
    nms_free: bool,
    operating_point: dict[str, Any] | None,
) -> dict[str, Any]:
    """`task`, `image_size`, `labelmap` (index -> name, the order of the class outputs), for
    pose `skeleton` (the points' names and edges: `PoseLayout.skeleton`) and, but for
    classification, `outputs`: `raw` (NMS to run), `end2end` (the rows are the detections) or
    `queries` (RT-DETR's, by ultralytics' `head`); `operating_point`, the thresholds to keep
    predictions at, when given."""
    keys: dict[str, Any] = {TASK_KEY: task, IMAGE_SIZE_KEY: image_size, LABELMAP_KEY: labelmap}
    if skeleton is not None:
        keys[SKELETON_KEY] = skeleton
    if not task_spec(task).per_image:
        keys[OUTPUTS_KEY] = QUERIES if head == RTDETR_HEAD else END2END if nms_free else RAW
    if operating_point is not None:
        keys[OPERATING_POINT_KEY] = operating_point
    return keys


def add(path: Path, format: str, keys: dict[str, Any]) -> None:
    """Write `keys` into the export at `path` (a file, or OpenVINO's folder), over any of the
    same name."""
    _WRITERS[format](path, keys)


def _onnx(path: Path, keys: dict[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in keys.items()}
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in text]
    del model.metadata_props[:]
    for key, value in [*kept, *text.items()]:
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def _openvino(folder: Path, keys: dict[str, Any]) -> None:
    sidecar = folder / OPENVINO_METADATA
    merged = {**(yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}), **keys}
    sidecar.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True), "utf-8")


def _torchscript(path: Path, keys: dict[str, Any]) -> None:
    """Saved again with the merged file (ultralytics saves it `torch.jit.save` too)."""
    import torch

    files = {TORCHSCRIPT_METADATA: ""}
    module = torch.jit.load(str(path), _extra_files=files)  # on the device it was traced on
    merged = {**json.loads(files[TORCHSCRIPT_METADATA] or "{}"), **keys}
    torch.jit.save(module, str(path), _extra_files={TORCHSCRIPT_METADATA: json.dumps(merged)})


def _engine(path: Path, keys: dict[str, Any]) -> None:
    """The header ultralytics writes before the serialized engine: 4-byte little-endian length,
    then JSON."""
    data = path.read_bytes()
    header, offset = engine_header(data)
    text = json.dumps({**header, **keys}).encode("utf-8")
    path.write_bytes(len(text).to_bytes(4, "little", signed=True) + text + data[offset:])


_WRITERS: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "onnx": _onnx,
    "openvino": _openvino,
    "torchscript": _torchscript,
    "engine": _engine,
}
