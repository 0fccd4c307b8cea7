"""Fixtures of the unit tests that run the whole job with its ultralytics parts stubbed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.job_stubs import Stubs, write_square_dataset


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stubs:
    return Stubs(tmp_path, monkeypatch)


@pytest.fixture
def square_dataset(tmp_path: Path) -> Path:
    return write_square_dataset(tmp_path / "dataset")
