"""What each export format adds: load the file, run one preprocessed image, return the head's
outputs, and where its metadata lives. Decoding the outputs is the same for every format
(`pictrain.evaluate.onnx_model.OnnxModel`): ultralytics exports them all from one traced graph.

Only the runtime a file needs is imported (onnxruntime for ONNX; OpenVINO; torch for TorchScript
and TensorRT), so serving an ONNX file needs no torch.
"""

from __future__ import annotations

import ast
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from pictrain import safeload
from pictrain.exportformats import FORMATS, ExportFormat

OPENVINO_METADATA = "metadata.yaml"  # ultralytics writes it beside the .xml
TORCHSCRIPT_METADATA = "config.txt"  # ultralytics' torch.jit extra file


class Runtime(Protocol):
    format: ExportFormat
    metadata: dict[str, Any]  # ultralytics' metadata and pictrain's keys, as stored

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """(1, 3, N, N) float32 in 0-1 -> the head's outputs, float32, in the graph's order."""
        ...


def open_runtime(path: Path) -> Runtime:
    """The runtime of `path`, by what it is: `.onnx`, `.torchscript`, `.engine`, an OpenVINO
    folder (`*.xml` inside) or that folder zipped (as stored). ValueError when none fits."""
    if path.is_file() and path.suffix.lower() == ".zip":
        return open_runtime(_unzipped(path))
    if path.is_dir():
        if next(path.glob("*.xml"), None) is not None:
            return OpenVinoRuntime(path)
        raise ValueError(f"{path} is a folder without an OpenVINO model (*.xml)")
    opener = _BY_SUFFIX.get(path.suffix.lower())
    if opener is None:
        raise ValueError(f"{path} is none of {', '.join(sorted(_BY_SUFFIX))}, a folder or a .zip")
    return opener(path)


class OnnxRuntime:
    format = FORMATS["onnx"]

    def __init__(self, path: Path) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.metadata: dict[str, Any] = dict(self.session.get_modelmeta().custom_metadata_map)
        first = self.session.get_inputs()[0]
        self._input = first.name
        self._dtype = np.float16 if first.type == "tensor(float16)" else np.float32

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        outputs = self.session.run(None, {self._input: tensor.astype(self._dtype, copy=False)})
        return [np.asarray(output, dtype=np.float32) for output in outputs]


class OpenVinoRuntime:
    format = FORMATS["openvino"]

    def __init__(self, folder: Path) -> None:
        import openvino

        xml = next(folder.glob("*.xml"))
        core = openvino.Core()
        model = core.read_model(model=str(xml), weights=str(xml.with_suffix(".bin")))
        # LATENCY: one image at a time, as a deployment predicts (ultralytics does the same).
        self._compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        sidecar = folder / OPENVINO_METADATA
        self.metadata = yaml.safe_load(sidecar.read_text()) if sidecar.is_file() else {}

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        results = self._compiled(tensor)
        return [np.asarray(results[output], dtype=np.float32) for output in self._compiled.outputs]


class TorchScriptRuntime:
    """On the GPU when there is one (where the job's weights run too), else the CPU. A
    TorchScript file is a program: loaded only when it calls nothing but what ultralytics'
    exports call (`pictrain.safeload.torchscript`)."""

    format = FORMATS["torchscript"]

    def __init__(self, path: Path) -> None:
        import torch

        self._device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
        self.model = safeload.torchscript(path, self._device).eval()
        self.metadata = _zip_config(path)
        self._half = str(self.metadata.get("args", {}).get("quantize")) == "16"

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        import torch

        image = torch.from_numpy(tensor).to(self._device)
        with torch.inference_mode():
            outputs = self.model(image.half() if self._half else image)
        return _numpy(outputs)


class TensorRtRuntime:
    """A serialized engine after ultralytics' header (4-byte little-endian length, JSON); it runs
    on the GPU model it was built for, with the TensorRT version that built it."""

    format = FORMATS["engine"]

    def __init__(self, path: Path) -> None:
        import tensorrt
        import torch

        data = path.read_bytes()
        self.metadata, offset = engine_header(data)
        runtime = tensorrt.Runtime(tensorrt.Logger(tensorrt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(data[offset:])
        self._context = self._engine.create_execution_context()
        self._buffers: dict[str, Any] = {}
        self._outputs: list[str] = []
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            dtype = torch.from_numpy(
                np.empty(0, tensorrt.nptype(self._engine.get_tensor_dtype(name)))
            ).dtype
            shape = tuple(self._engine.get_tensor_shape(name))
            self._buffers[name] = torch.empty(shape, dtype=dtype, device="cuda:0")
            self._context.set_tensor_address(name, self._buffers[name].data_ptr())
            if self._engine.get_tensor_mode(name) == tensorrt.TensorIOMode.OUTPUT:
                self._outputs.append(name)
            else:
                self._input = name

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        import torch

        target = self._buffers[self._input]
        target.copy_(torch.from_numpy(tensor).to(target.dtype))
        stream = torch.cuda.current_stream()
        self._context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return [self._buffers[name].float().cpu().numpy() for name in self._outputs]


_BY_SUFFIX = {".onnx": OnnxRuntime, ".torchscript": TorchScriptRuntime, ".engine": TensorRtRuntime}


def _numpy(outputs: Any) -> list[np.ndarray]:
    """A module's tensors, nested tuples (and dicts, which ultralytics' heads return outside
    export mode) flattened in order."""
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, list | tuple):
        return [array for item in outputs for array in _numpy(item)]
    return [outputs.detach().float().cpu().numpy()]


def _zip_config(path: Path) -> dict[str, Any]:
    """The metadata ultralytics saves as torch.jit's extra file `config.txt`."""
    with zipfile.ZipFile(path) as archive:
        tail = f"extra/{TORCHSCRIPT_METADATA}"
        name = next((n for n in archive.namelist() if n.endswith(tail)), None)
        return json.loads(archive.read(name)) if name else {}


def engine_header(data: bytes) -> tuple[dict[str, Any], int]:
    """The metadata ultralytics writes before the serialized engine (4-byte little-endian
    length, then JSON) and where the engine starts."""
    length = int.from_bytes(data[:4], "little")
    try:
        return json.loads(data[4 : 4 + length].decode("utf-8")), 4 + length
    except (UnicodeDecodeError, ValueError):  # an engine without ultralytics' header
        return {}, 0


def _unzipped(path: Path) -> Path:
    """A stored folder export, extracted to a temporary folder (kept for the process's life).
    Members must stay inside it: the file may come from anywhere."""
    target = Path(tempfile.mkdtemp(prefix=f"pictrain-{path.stem}-"))
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            destination = (target / member).resolve()
            if not destination.is_relative_to(target.resolve()):
                raise ValueError(f"{path} holds a path outside its folder: {member}")
        archive.extractall(target)
    return target


def metadata_value(metadata: dict[str, Any], key: str) -> Any:
    """A metadata value as Python: ONNX stores every value as text (ultralytics writes
    dicts and lists with str(), pictrain's labelmap as JSON), the other formats as data."""
    value = metadata[key]
    if not isinstance(value, str) or key == "task" or key == "head":
        return value
    try:
        return json.loads(value)
    except ValueError:
        return ast.literal_eval(value)
