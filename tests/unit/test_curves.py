"""Curves on a real SDK experiment (emulator): a NaN or infinite point is never sent, and the
curve still holds at most one point per epoch through retries and resumes."""

from __future__ import annotations

import logging
import math

import pytest

from pictrain.platform.curves import CurveWriter
from tests.emulator import Emulator, SeededIds

LOSS = "train/box_loss"


@pytest.fixture
def experiment(emulator: Emulator, seeded: SeededIds):
    return emulator.client().get_experiment_by_id(seeded.experiment_id)


def stored(emulator: Emulator, seeded: SeededIds, name: str = LOSS):
    return emulator.state.experiments[seeded.experiment_id].logs[name].data


def test_a_non_finite_point_is_skipped_with_one_warning(
    emulator: Emulator, seeded: SeededIds, experiment, caplog: pytest.LogCaptureFixture
) -> None:
    writer = CurveWriter(experiment)
    with caplog.at_level(logging.WARNING):
        for step, value in enumerate([1.0, math.nan, math.inf, 4.0], start=1):
            writer.append(LOSS, step, value)
    assert stored(emulator, seeded) == [1.0, 4.0]  # never null
    assert sum(LOSS in record.message for record in caplog.records) == 1
    table = stored(emulator, seeded, "non-finite metrics")
    assert (table["rows"], table["data"]) == ([LOSS], [["2, 3"]])


def test_a_retried_point_after_a_skip_is_not_sent_twice(
    emulator: Emulator, seeded: SeededIds, experiment
) -> None:
    writer = CurveWriter(experiment)
    for step, value in enumerate([1.0, math.nan, 3.0], start=1):
        writer.append(LOSS, step, value)
    writer.append(LOSS, 3, 3.0)  # the first post landed, its reply was lost: the sender retries
    assert stored(emulator, seeded) == [1.0, 3.0]


def test_a_resume_trims_by_epoch_across_skipped_points(
    emulator: Emulator, seeded: SeededIds, experiment
) -> None:
    """The earlier attempt skipped epoch 2 and logged up to 4; resumed from epoch 3, a new
    process keeps epoch 1 only (one point), not the first two points."""
    first = CurveWriter(experiment)
    for step, value in enumerate([1.0, math.nan, 3.0, 4.0], start=1):
        first.append(LOSS, step, value)
    resumed = CurveWriter(experiment)
    resumed.append(LOSS, 3, 30.0)
    resumed.append(LOSS, 4, 40.0)
    assert stored(emulator, seeded) == [1.0, 30.0, 40.0]
    table = stored(emulator, seeded, "non-finite metrics")
    assert table["data"] == [["2"]]


def test_skips_after_the_resume_point_are_decided_anew(
    emulator: Emulator, seeded: SeededIds, experiment
) -> None:
    first = CurveWriter(experiment)
    for step, value in enumerate([1.0, 2.0, math.nan], start=1):
        first.append(LOSS, step, value)
    resumed = CurveWriter(experiment)
    resumed.append(LOSS, 3, 3.0)
    assert stored(emulator, seeded) == [1.0, 2.0, 3.0]
    assert stored(emulator, seeded, "non-finite metrics")["rows"] == []


def test_a_non_finite_final_value_is_not_sent(emulator: Emulator, seeded: SeededIds) -> None:
    from pictrain.platform.env import PicselliaContext
    from pictrain.platform.picsellia import PicselliaBackend

    backend = PicselliaBackend(PicselliaContext.model_validate(emulator.job_env(seeded)), "detect")
    backend.log_value("test/mAP50", math.nan)
    backend.log_value("test/mAP75", 0.5)
    backend.flush()
    backend.close()
    logs = emulator.state.experiments[seeded.experiment_id].logs
    assert "test/mAP50" not in logs and logs["test/mAP75"].data == 0.5
