"""Hand-made ONNX models: a 1x3xNxN input `images`, constant outputs, pictrain's metadata.

What a trained network would output is chosen by the test, so post-processing and the
deploy-parity gate are checked with no training and no export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_model(
    path: Path,
    outputs: list[np.ndarray],
    task: str,
    names: list[str],
    image_size: int,
    head: str = "Detect",
    extra: dict[str, str] | None = None,
    kind: str | None = None,
) -> Path:
    """Each output is its constant plus 0 x the mean of the input (so the input is used);
    `extra` metadata beside pictrain's. `kind`: the metadata key `outputs` (raw or end2end)
    that pictrain's exports carry; None leaves it out, as in a file exported by ultralytics
    alone (OnnxModel then reads the shapes)."""
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0)]
    nodes.append(helper.make_node("Mul", ["mean", "zero"], ["nothing"]))
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    graph_outputs = []
    for index, value in enumerate(outputs):
        name = f"output{index}"
        initializers.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, value.shape))
    graph = helper.make_graph(
        nodes,
        "stub",
        [
            helper.make_tensor_value_info(
                "images", TensorProto.FLOAT, [1, 3, image_size, image_size]
            )
        ],
        graph_outputs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    labelmap = {str(i): name for i, name in enumerate(names)}
    metadata = {"task": task, "image_size": str(image_size), "labelmap": json.dumps(labelmap)}
    if kind is not None:
        metadata["outputs"] = kind
    for key, value in {**metadata, "head": head, **(extra or {})}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path
