"""One export of the trained weights, as ultralytics makes it, into one storable file.

Every format gets the settings of `model-latest.onnx`: static 1x3xNxN, batch 1, and the same
head: the raw one (NMS outside the graph), or, for a model with an NMS-free head (YOLO26), that
head (`pictrain.train.models.head_arguments`, docs/evaluation.md), so one decoder reads them all
(`pictrain.evaluate.onnx_model`). ONNX files also carry pictrain's metadata keys, `outputs`
saying which head; the other formats carry ultralytics' own (`task`, `names`, `imgsz`), which
the runtimes read, and are told by their outputs' shape. A format that writes a folder
(OpenVINO) is stored zipped, its files at the root.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from pictrain.config import task_spec
from pictrain.exports.calibration import CALIBRATION_SPLIT
from pictrain.exports.formats import QUANTIZE, ExportSpec

ONNX_OPSET = 18


def export(
    weights: Path,
    spec: ExportSpec,
    image_size: int,
    out_dir: Path,
    task: str,
    labelmap: dict[str, str],
    calibration: Path | None = None,
    device: str = "cpu",
    skeleton: dict[str, Any] | None = None,
) -> Path:
    """Export `weights` as `spec` to `out_dir/<artifact><suffix>` (`.zip` for a folder) and
    return that path. INT8 needs `calibration` (`pictrain.exports.calibration`); GPU formats
    build on `device`; a pose model's ONNX file carries its point layout, `skeleton`. Raises
    whatever ultralytics raises when the format cannot be made."""
    from ultralytics import YOLO

    from pictrain.train.models import head_arguments

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{spec.artifact}-", dir=out_dir) as tmp:
        # ultralytics writes the export beside the weights, named after them.
        source = Path(tmp) / f"{spec.artifact}.pt"
        shutil.copyfile(weights, source)
        model = YOLO(str(source))
        selected = head_arguments(model)
        arguments = _arguments(spec, image_size, calibration, device)
        made = Path(model.export(**arguments, **selected))
        if spec.format == "onnx":
            _add_metadata(made, task, image_size, labelmap, skeleton, nms_free=bool(selected))
        if made.is_dir():
            return _zipped(made, out_dir / f"{spec.artifact}.zip")
        dest = out_dir / f"{spec.artifact}{made.suffix}"
        made.replace(dest)
        return dest


def _arguments(
    spec: ExportSpec, image_size: int, calibration: Path | None, device: str
) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "format": spec.format,
        "imgsz": image_size,
        "dynamic": False,
        "batch": 1,
    }
    if spec.format in ("onnx", "engine"):  # TensorRT builds from the ONNX graph
        arguments |= {"opset": ONNX_OPSET, "simplify": True}
    if (quantize := QUANTIZE[spec.precision]) is not None:
        arguments["quantize"] = quantize
    if spec.precision == "int8":
        if calibration is None:
            raise ValueError(f"{spec} needs calibration images")
        arguments |= {"data": str(calibration), "split": CALIBRATION_SPLIT}
    if spec.gpu_only:
        arguments["device"] = device
    return arguments


def _add_metadata(
    path: Path,
    task: str,
    image_size: int,
    labelmap: dict[str, str],
    skeleton: dict[str, Any] | None,
    nms_free: bool,
) -> None:
    """What a consumer needs to read the outputs, beside what ultralytics writes: `task`,
    `image_size`, `labelmap` (JSON, index -> name, the order of the class outputs), for pose
    `skeleton` (JSON, the points' names and edges: `PoseLayout.skeleton`) and, but for
    classification, `outputs`: `raw` (NMS to run), `end2end` (the rows are the detections) or
    `queries` (RT-DETR's), as `pictrain.evaluate.onnx_model` reads them."""
    import onnx

    from pictrain.evaluate.onnx_model import (
        END2END,
        IMAGE_SIZE_KEY,
        LABELMAP_KEY,
        OUTPUTS_KEY,
        QUERIES,
        RAW,
        RTDETR_HEAD,
        SKELETON_KEY,
        TASK_KEY,
    )

    model = onnx.load(str(path))
    ours = {TASK_KEY: task, IMAGE_SIZE_KEY: str(image_size), LABELMAP_KEY: json.dumps(labelmap)}
    if skeleton is not None:
        ours[SKELETON_KEY] = json.dumps(skeleton)
    if not task_spec(task).per_image:
        rtdetr = any(p.key == "head" and p.value == RTDETR_HEAD for p in model.metadata_props)
        ours[OUTPUTS_KEY] = QUERIES if rtdetr else END2END if nms_free else RAW
    kept = [p for p in model.metadata_props if p.key not in ours]
    del model.metadata_props[:]
    for key, value in [*((p.key, p.value) for p in kept), *ours.items()]:
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def _zipped(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return dest
