"""One export of the trained weights, as ultralytics makes it, into one storable file.

Every format gets the settings of `model-latest.onnx`: static 1x3xNxN, batch 1, and the same
head: the raw one (NMS outside the graph), or, for a model with an NMS-free head (YOLO26), that
head (`pictrain.train.models.head_arguments`, docs/evaluation.md), so one decoder reads them all
(`pictrain.evaluate.onnx_model`). Every file carries pictrain's metadata keys beside
ultralytics' own (`pictrain.exports.metadata`), `outputs` saying which head. A format that
writes a folder (OpenVINO) is stored zipped, its files at the root.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from pictrain import safeload
from pictrain.exportformats import QUANTIZE, ExportSpec
from pictrain.exports import metadata
from pictrain.exports.calibration import CALIBRATION_SPLIT

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
    operating_point: dict[str, Any] | None = None,
) -> Path:
    """Export `weights` as `spec` to `out_dir/<artifact><suffix>` (`.zip` for a folder) and
    return that path. INT8 needs `calibration` (`pictrain.exports.calibration`); GPU formats
    build on `device`; every file carries pictrain's metadata (`pictrain.exports.metadata`): a
    pose model's point layout, `skeleton`, and the `operating_point` when given. Raises
    whatever ultralytics raises when the format cannot be made."""
    from ultralytics import YOLO

    from pictrain.train.models import head_arguments

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{spec.artifact}-", dir=out_dir) as tmp:
        # ultralytics writes the export beside the weights, named after them.
        source = Path(tmp) / f"{spec.artifact}.pt"
        shutil.copyfile(weights, source)
        model = safeload.model(YOLO, source, str(weights))
        selected = head_arguments(model)
        arguments = _arguments(spec, image_size, calibration, device)
        made = Path(model.export(**arguments, **selected))
        head = type(model.model.model[-1]).__name__  # the output layer, as ultralytics names it
        keys = metadata.ours(
            task, image_size, labelmap, skeleton, head, bool(selected), operating_point
        )
        metadata.add(made, spec.format, keys)
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


def _zipped(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return dest
