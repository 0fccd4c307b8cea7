"""Weights files an attacker would store on an experiment or a model version: checkpoints whose
unpickling writes a marker file (what a real payload would do with the API token), and a
TorchScript export whose program writes one when run."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
from pathlib import Path
from typing import Any


class WritesMarker:
    """Unpickled, calls `Path.write_text` (builtins.getattr on pathlib.Path once pickled)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.write_text, (pathlib.Path(self.marker), "code ran"))


class RunsShell:
    """Unpickled, runs a shell command (posix.system once pickled)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"echo code ran > {self.marker}",))


PAYLOADS = (WritesMarker, RunsShell)


def plant_checkpoint(path: Path, marker: Path, payload: type = WritesMarker) -> Path:
    """A torch archive shaped like an ultralytics checkpoint, the payload as its model."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"model": payload(marker), "epoch": 1, "train_args": {"task": "detect"}}
    torch.save(checkpoint, path)
    return path


def plant_bare_pickle(path: Path, marker: Path) -> Path:
    """The same payload pickled by hand, no torch archive around it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"model": WritesMarker(marker)}))
    return path


def plant_torchscript(path: Path, marker: Path) -> Path:
    """A TorchScript file shaped like ultralytics' classification export (its metadata in
    `extra/config.txt`), whose program writes `marker` when run: `torch.from_file` with
    `shared=True` maps the file, creating it, and the fill writes through."""
    import torch

    class WritesWhenRun(torch.nn.Module):
        def __init__(self, marker: str) -> None:
            super().__init__()
            self.marker = marker

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            written = torch.from_file(self.marker, shared=True, size=8, dtype=torch.uint8)
            written.fill_(33)
            return torch.ones(1, 1) + 0 * written.float().sum() + 0 * x.sum()

    metadata = {"task": "classify", "names": {"0": "cat"}, "imgsz": [64, 64]}
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.jit.script(WritesWhenRun(str(marker)))
    torch.jit.save(program, str(path), _extra_files={"config.txt": json.dumps(metadata)})
    return path
