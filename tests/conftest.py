"""Session-wide test settings: ultralytics offline and confined to a temporary settings dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# torch (>= 2.10, CUDA builds) registers Triton kernels for some GPU ops, which imports Triton even
# on a CPU; Triton's bindings then print ~30 lines of "nanobind: leaked ..." when the interpreter
# exits, after pytest's summary. The tests run on the CPU, where those kernels never run: off.
os.environ.setdefault("TORCH_DISABLE_NATIVE_JIT", "1")

# The emulator's fixtures, and `project`: the workflow tests' project file, on both servers.
pytest_plugins = ["tests.emulator.fixtures", "tests.unit.workflow_project"]


@pytest.fixture(scope="session", autouse=True)
def ultralytics_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep ultralytics (in-process and in the jobs tests start) off the network and out of
    the user's ~/.config."""
    config_dir = tmp_path_factory.mktemp("ultralytics")
    saved = {k: os.environ.get(k) for k in ("YOLO_CONFIG_DIR", "YOLO_OFFLINE")}
    os.environ.update(YOLO_CONFIG_DIR=str(config_dir), YOLO_OFFLINE="1")
    yield config_dir
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
