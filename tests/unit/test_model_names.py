"""`model` is checked against the task before any download, with a way out when it mismatches."""

from pathlib import Path

import pytest

from pictrain.config import load_model_config
from pictrain.errors import UserError
from pictrain.train.models import check_model_name

IMAGE = Path(__file__).parents[2] / "images" / "yolov8-detection" / "model.toml"


def test_a_model_of_another_task_in_an_image_names_the_image_task():
    with pytest.raises(UserError, match="is a segment model; this image trains detect models"):
        check_model_name("detect", "yolov8n-seg", image=True)


def test_a_model_of_another_task_in_a_bare_local_run_says_which_task_flag_trains_it():
    """A newcomer's local segmentation run: without an image, the task is --task's."""
    expected = "this run trains detect models: run it with --task segment"
    with pytest.raises(UserError, match=expected):
        check_model_name("detect", "yolov8n-seg", image=False)


def test_a_config_knows_whether_an_image_file_made_it():
    assert load_model_config(IMAGE).file == IMAGE
    assert load_model_config(None, "segment").file is None
