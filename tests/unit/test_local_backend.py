"""The local backend: what a rerun under the same name leaves in metrics.jsonl; its inputs."""

import json
import math

import pytest

from pictrain.errors import UserError
from pictrain.platform.local import LocalBackend


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_rerun_under_the_same_name_replaces_curves_and_final_values(tmp_path):
    (tmp_path / "data").mkdir()
    run_dir = tmp_path / "runs" / "same"
    first = LocalBackend(tmp_path / "data", run_dir)
    for step in (1, 2, 3):
        first.log_series("train/box_loss", step, float(step))
    first.log_value("test/mAP50", 0.1)

    again = LocalBackend(tmp_path / "data", run_dir)
    again.log_series("train/box_loss", 1, 10.0)
    again.log_value("test/mAP50", 0.2)

    assert _records(run_dir) == [
        {"name": "train/box_loss", "step": 1, "value": 10.0},
        {"name": "test/mAP50", "step": None, "value": 0.2},
    ]


def test_resumed_curve_keeps_the_points_before_its_first_step(tmp_path):
    (tmp_path / "data").mkdir()
    run_dir = tmp_path / "runs" / "resumed"
    first = LocalBackend(tmp_path / "data", run_dir)
    for step in (1, 2, 3):
        first.log_series("lr/pg0", step, float(step))
    LocalBackend(tmp_path / "data", run_dir).log_series("lr/pg0", 3, 30.0)
    assert [(r["step"], r["value"]) for r in _records(run_dir)] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_parameters_file_that_is_not_utf8_is_a_user_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "parameters.json").write_bytes(b'{"epochs": "\xff\xfe10"}')
    backend = LocalBackend(tmp_path / "data", tmp_path / "runs" / "x")
    with pytest.raises(UserError, match=r"parameters.json is not UTF-8 text \(byte 12"):
        backend.parameters()


def test_two_parameter_files_are_a_user_error(tmp_path):
    """Training with one and ignoring the other would be a guess the user never sees."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "parameters.json").write_text('{"epochs": 3}')
    (tmp_path / "data" / "parameters.yaml").write_text("epochs: 30\n")
    backend = LocalBackend(tmp_path / "data", tmp_path / "runs" / "x")
    with pytest.raises(
        UserError, match=r"parameters.json and parameters.yaml are both in .*: keep"
    ):
        backend.parameters()


def test_the_one_parameter_file_is_read_whatever_its_kind(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "parameters.yml").write_text("epochs: 30\n")
    assert LocalBackend(tmp_path / "data", tmp_path / "runs" / "x").parameters() == {"epochs": 30}


def test_non_finite_values_are_not_written(tmp_path):
    (tmp_path / "data").mkdir()
    backend = LocalBackend(tmp_path / "data", tmp_path / "run")
    backend.log_series("train/box_loss", 1, math.nan)
    backend.log_series("train/box_loss", 2, 2.0)
    backend.log_value("test/mAP50", math.inf)
    assert _records(tmp_path / "run") == [{"name": "train/box_loss", "step": 2, "value": 2.0}]


@pytest.mark.parametrize("content", [[], ["images/", "parameters.json"], ["val/"]])
def test_a_folder_without_train_names_what_is_missing_and_what_is_there(tmp_path, content):
    data = tmp_path / "data"
    data.mkdir()
    for entry in content:
        if entry.endswith("/"):
            (data / entry / "images").mkdir(parents=True)
            (data / entry / "annotations.json").write_text("{}")
        else:
            (data / entry).write_text("{}")
    with pytest.raises(UserError) as error:
        LocalBackend(data, tmp_path / "run").datasets(tmp_path / "downloads")
    message = str(error.value)
    assert f"{data} has no train/ folder" in message
    assert "train/images/ + train/annotations.json" in message
    assert f"(found: {', '.join(content) or 'nothing'})" in message
