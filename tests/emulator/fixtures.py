"""Pytest fixtures, registered once for every test by `tests/conftest.py`'s `pytest_plugins`.

Importing this module sets PICSELLIA_SDK_CUSTOM_LOGGING first: otherwise importing the SDK
reconfigures root logging for the whole test session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator.dataset_dir import read_dataset_dir, write_sample_dataset
from tests.emulator.emulator import Emulator, loopback_env
from tests.emulator.seeding import SeededIds

os.environ.setdefault("PICSELLIA_SDK_CUSTOM_LOGGING", "1")


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A running emulator, with loopback kept off any proxy. Strict: the test fails if the
    SDK hit a route the emulator lacks (clear `state.unknown_routes` when that is the point)
    or if a handler crashed."""
    for name, value in loopback_env().items():
        monkeypatch.setenv(name, value)
    with Emulator.start() as emu:
        yield emu
    assert not emu.state.server_errors, emu.state.server_errors[0]
    unknown = [f"{r.method} {r.path}" for r in emu.state.unknown_routes]
    assert not unknown, f"routes missing from the emulator: {unknown}"


@pytest.fixture
def sample_dataset(tmp_path: Path) -> Path:
    """A tiny train/val/test detection dataset folder in the `--seed DIR` layout."""
    return write_sample_dataset(tmp_path / "dataset")


@pytest.fixture
def seeded(emulator: Emulator, sample_dataset: Path) -> SeededIds:
    """An experiment seeded from `sample_dataset`, with parameters and a jobv2."""
    splits, parameters = read_dataset_dir(sample_dataset)
    return emulator.seed_experiment(splits, parameters=parameters)
