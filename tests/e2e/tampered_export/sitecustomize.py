"""On PYTHONPATH, makes every pictrain process of a test write a tampered ONNX export: the real
export runs, then its graph is replaced by one that finds one square at the box `TAMPERED_BOX`
(`x,y,w,h` in input pixels) in every image, whatever the image. The deploy-parity gate must
catch an export that does not score as its weights. Python imports `sitecustomize` at start-up,
so this reaches the supervisor's worker too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pictrain import artifacts

_export = artifacts.export_onnx


def tampered_export(
    weights: Path, image_size: int, dest: Path, task: str, labelmap: dict[str, str], *rest: Any
) -> Path:
    import numpy as np

    from tests.unit.onnx_stub import constant_model

    _export(weights, image_size, dest, task, labelmap, *rest)
    names = [labelmap[str(i)] for i in range(len(labelmap))]
    x, y, w, h = (float(v) for v in os.environ["TAMPERED_BOX"].split(","))
    raw = np.zeros((1, 4 + len(names), 8), np.float32)  # one confident anchor of 8
    raw[0, :4, 0] = [x + w / 2, y + h / 2, w, h]
    raw[0, 4 + names.index("square"), 0] = 0.9
    return constant_model(dest, [raw], task, names, image_size)


artifacts.export_onnx = tampered_export
