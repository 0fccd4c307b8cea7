"""Session-wide test settings: ultralytics offline and confined to a temporary settings dir."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pictrain import offline

# As every pictrain command does, before anything imports ultralytics (test modules included):
# ultralytics reads its switches, weights_only loading among them, once, at import.
offline.configure_environment()

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


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without the interpreter's finalisation once pytest is done, so that its summary is
    the last line. torch's CUDA build imports Triton (`torch._dynamo`, through torchvision), and
    Triton's bindings print ~30 lines of "nanobind: leaked ..." at exit, after the summary."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(config.stash.get(_EXIT_STATUS, 0))


_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)
