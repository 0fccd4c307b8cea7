"""`python -m scripts.bench` refuses a suite name it does not know, instead of running nothing
and writing an empty docs/benchmarks.md."""

from __future__ import annotations

import pytest

from scripts.bench.__main__ import _benchmarks, parse_args


def test_only_accepts_the_suite_names(tmp_path):
    every = _benchmarks(parse_args([]), tmp_path)
    some = _benchmarks(parse_args(["--only", "convert", "evaluate"]), tmp_path)
    assert 0 < len(some) < len(every)


def test_only_refuses_a_misspelt_suite(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--only", "convrt"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'convrt'" in capsys.readouterr().err


def test_the_exports_suite_makes_every_cpu_format_and_precision():
    from scripts.bench.exports import cpu_exports

    assert cpu_exports() == [
        "onnx",
        "onnx:fp16",
        "onnx:int8",
        "openvino",
        "openvino:fp16",
        "openvino:int8",
        "torchscript",
    ]
