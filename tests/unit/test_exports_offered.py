"""What export_formats offers: one list in pictrain.exportformats, the same in docs/exports.md;
a request this machine cannot make fails before anything is downloaded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pictrain.config import ModelConfig
from pictrain.exportformats import (
    FORMATS,
    NOT_OFFERED,
    ExportSpec,
    is_export_artifact,
    parse_spec,
    requested,
    unavailable,
)
from pictrain.job import Job
from pictrain.platform.local import LocalBackend

DOC = Path(__file__).parents[2] / "docs" / "exports.md"


def _section(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.split(f"<!-- exports:{name} -->\n", 1)[1].split(f"<!-- /exports:{name} -->", 1)[0]


def test_the_doc_lists_the_formats_offered_as_the_code_does():
    rows = [
        f"| `{f.name}` | "
        + ", ".join(p + (" (GPU)" if where == "gpu" else "") for p, where in f.precisions.items())
        + f" | {f.runtime} |"
        for f in FORMATS.values()
    ]
    header = "| format | precisions | runtime |\n|---|---|---|\n"
    assert _section("offered") == header + "\n".join(rows) + "\n"


def test_the_doc_lists_the_formats_not_offered_with_the_codes_reasons():
    rows = [f"| `{name}` | {why} |" for name, why in NOT_OFFERED.items()]
    header = "| format | why not |\n|---|---|\n"
    assert _section("not-offered") == header + "\n".join(rows) + "\n"
    assert not set(NOT_OFFERED) & set(FORMATS)


def test_every_ultralytics_format_is_offered_or_said_why_not():
    from ultralytics.engine.exporter import export_formats

    theirs = set(export_formats()["Argument"][1:]) | {"tflite"}
    assert theirs == set(FORMATS) | set(NOT_OFFERED)


def test_artifact_names():
    assert [s.artifact for s in requested(["openvino:int8", "onnx:fp16", "onnx", "engine"])] == [
        "model-latest",
        "model-openvino-int8",
        "model-onnx-fp16",
        "model-engine",
    ]
    assert all(is_export_artifact(s.artifact) for s in requested(["torchscript"]))
    assert not is_export_artifact("best-model") and not is_export_artifact("config")


@pytest.mark.parametrize(
    ("specs", "has_gpu", "reason"),
    [
        (["engine:fp16"], False, "export_formats engine:fp16 need a GPU, and this job runs on"),
        (["torchscript:fp16"], False, "export_formats torchscript:fp16 need a GPU"),
        (["openvino:int8", "torchscript"], False, None),
    ],
)
def test_what_this_machine_cannot_make(specs, has_gpu, reason):
    said = unavailable(requested(specs), has_gpu)
    assert said == reason or (reason and said.startswith(reason))


def test_engine_without_tensorrt_is_refused_on_a_gpu_too():
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    said = unavailable([parse_spec("engine:int8")], has_gpu=True)
    assert said == (
        "export_formats engine:int8 need TensorRT, which this image does not have (docs/exports.md)"
    )


def test_a_gpu_export_on_a_cpu_job_fails_before_any_download(tmp_path):
    data = tmp_path / "data"
    (data / "train" / "images").mkdir(parents=True)
    (data / "parameters.json").write_text(json.dumps({"export_formats": ["engine:fp16"]}))
    run_dir = tmp_path / "run"
    config = ModelConfig(task="detect", model="yolov8n", defaults={"device": "cpu"})
    code = Job(LocalBackend(data, run_dir), run_dir, config).run()
    status = json.loads((run_dir / "status.json").read_text())
    assert code == 2 and status["status"] == "failed"
    assert re.match(r"export_formats engine:fp16 need a GPU", status["reason"])
    assert not (run_dir / "dataset").exists() and not (run_dir / "downloads").exists()


def test_specs_sort_and_print_as_written():
    assert (
        str(ExportSpec("openvino", "int8")) == "openvino:int8" and str(ExportSpec("onnx")) == "onnx"
    )
