"""The export formats a job offers, the ones it does not and why: one list, read by the
parameter check, the exporter, the runtimes and docs/exports.md (a test keeps them equal).

A request is `<format>` or `<format>:<precision>` (`fp32` when unsaid). Each export is stored as
the artifact `model-<format>[-<precision>]` (no suffix for fp32); the ONNX fp32 file is always
made and stored as `model-latest`, what deployments load.

Below the parameters (which check requests with it) and the platform layer (which stores under
its names), so it imports neither: no folder loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# The deployable ONNX: what Picsellia's deployment and pre-annotation load; every other export
# is stored as `EXPORT_ARTIFACT_PREFIX<format>[-<precision>]`.
MODEL_ARTIFACT = "model-latest"
EXPORT_ARTIFACT_PREFIX = "model-"

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
DEFAULT_PRECISION: Precision = "fp32"
# ultralytics' `quantize` value per precision (None: its default, fp32).
QUANTIZE: dict[Precision, int | None] = {"fp32": None, "fp16": 16, "int8": 8}
# Where a precision runs: everywhere, or on an NVIDIA GPU only.
Where = Literal["any", "gpu"]


@dataclass(frozen=True)
class ExportFormat:
    name: str  # the parameter's spelling = ultralytics' `format`
    title: str
    precisions: dict[Precision, Where]
    folder: bool  # ultralytics writes a folder: stored zipped
    runtime: str  # what runs it, and where, for docs/exports.md


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "onnx", "ONNX", {"fp32": "any", "fp16": "any", "int8": "any"}, False, "onnxruntime, CPU"
        ),
        ExportFormat(
            "openvino",
            "OpenVINO IR",
            {"fp32": "any", "fp16": "any", "int8": "any"},
            True,
            "OpenVINO, CPU (INT8: NNCF post-training quantization)",
        ),
        ExportFormat(
            "torchscript",
            "TorchScript",
            {"fp32": "any", "fp16": "gpu"},
            False,
            "torch.jit, on the job's GPU when it has one, else the CPU",
        ),
        ExportFormat(
            "engine",
            "TensorRT engine",
            {"fp32": "gpu", "fp16": "gpu", "int8": "gpu"},
            False,
            "TensorRT, on the GPU model it was built on",
        ),
    )
}

# ultralytics exports these too; why a job does not offer them (docs/exports.md lists them).
# "Not yet": installable from PyPI, but a runtime in pictrain.evaluate.runtimes and a check of
# its scores are still to write.
_MACOS = "its runtime predicts on macOS only: a Linux job cannot score the file"
_NOT_YET = "not yet: installs from PyPI ({}), its runtime and scoring are still to write"
_HARDWARE = "compiles for one vendor's accelerator, with its own toolchain ({})"
_TENSORFLOW = (
    "ultralytics converts through TensorFlow (onnx2tf, tf_keras, pinned versions), a second "
    "framework of its own in the image"
)
NOT_OFFERED: dict[str, str] = {
    "coreml": f"{_MACOS}; coremltools also needs numpy <= 2.3.5, older than the lock's",
    "coreai": _MACOS,
    "tflite": "ultralytics 8.4 exports litert instead",
    "litert": _NOT_YET.format("litert-torch, ai-edge-litert"),
    "ncnn": _NOT_YET.format("ncnn, pnnx 20260526 as ultralytics pins it"),
    "mnn": _NOT_YET.format("MNN"),
    "paddle": _NOT_YET.format("paddlepaddle < 3.3, x2paddle"),
    "saved_model": _TENSORFLOW,
    "pb": _TENSORFLOW,
    "edgetpu": f"{_TENSORFLOW}; plus Google's edgetpu_compiler, a Debian package off PyPI",
    "executorch": "needs torch >= 2.12; the cu128 images have torch 2.10",
    "imx": _HARDWARE.format("Sony's, needs torch < 2.12 and pydantic < 2.12"),
    "rknn": _HARDWARE.format("Rockchip's rknn-toolkit2, needs torch 2.4"),
    "axelera": _HARDWARE.format("Axelera's, from its own package index"),
    "deepx": _HARDWARE.format("DEEPX's"),
    "qnn": _HARDWARE.format("Qualcomm's"),
    "hailo": _HARDWARE.format("Hailo's"),
    "ascend": _HARDWARE.format("Huawei's CANN"),
    "xilinx": _HARDWARE.format("AMD's Vitis AI"),
}


@dataclass(frozen=True, order=True)
class ExportSpec:
    format: str
    precision: Precision = DEFAULT_PRECISION

    @property
    def kind(self) -> ExportFormat:
        return FORMATS[self.format]

    @property
    def gpu_only(self) -> bool:
        return self.kind.precisions[self.precision] == "gpu"

    @property
    def is_latest(self) -> bool:
        return (self.format, self.precision) == ("onnx", DEFAULT_PRECISION)

    @property
    def artifact(self) -> str:
        if self.is_latest:
            return MODEL_ARTIFACT
        tail = "" if self.precision == DEFAULT_PRECISION else f"-{self.precision}"
        return f"{EXPORT_ARTIFACT_PREFIX}{self.format}{tail}"

    def __str__(self) -> str:
        tail = "" if self.precision == DEFAULT_PRECISION else f":{self.precision}"
        return f"{self.format}{tail}"


LATEST = ExportSpec("onnx")
DEFAULT_EXPORTS = (str(LATEST),)  # the parameter's default


def offered() -> list[str]:
    """Every accepted request, `format` for fp32: what an error lists."""
    return [
        str(ExportSpec(f.name, p))  # type: ignore[arg-type]
        for f in FORMATS.values()
        for p in f.precisions
    ]


def parse_spec(text: str) -> ExportSpec:
    """`openvino:int8` -> ExportSpec; ValueError naming what is offered."""
    name, _, precision = text.strip().lower().partition(":")
    precision = precision.strip() or DEFAULT_PRECISION
    kind = FORMATS.get(name.strip())
    if kind is None:
        why = f" ({NOT_OFFERED[name]})" if name in NOT_OFFERED else ""
        raise ValueError(f"{text.strip()!r} is not an export this image offers{why}")
    if precision not in kind.precisions:
        raise ValueError(
            f"{kind.name} is offered in {', '.join(kind.precisions)}, not {precision!r}"
        )
    return ExportSpec(kind.name, precision)  # type: ignore[arg-type]


def requested(specs: list[str]) -> list[ExportSpec]:
    """The exports a job makes: model-latest first, then the others asked for, each once."""
    parsed = [LATEST, *(parse_spec(text) for text in specs)]
    return list(dict.fromkeys(parsed))


def is_export_artifact(name: str) -> bool:
    """An artifact holding an export (model-latest included), by its name."""
    return name.startswith(EXPORT_ARTIFACT_PREFIX) and name[len(EXPORT_ARTIFACT_PREFIX) :] != ""


def unavailable(specs: list[ExportSpec], has_gpu: bool) -> str | None:
    """Why some of `specs` cannot be made on this machine (no GPU, no TensorRT), or None:
    said before anything is downloaded, not after the training."""
    import importlib.util

    gpu = [str(s) for s in specs if s.gpu_only]
    if gpu and not has_gpu:
        return f"export_formats {', '.join(gpu)} need a GPU, and this job runs on the CPU"
    engines = [str(s) for s in specs if s.format == "engine"]
    if engines and importlib.util.find_spec("tensorrt") is None:
        return (
            f"export_formats {', '.join(engines)} need TensorRT, which this image does not "
            "have (docs/exports.md)"
        )
    return None
