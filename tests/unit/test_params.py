import pytest

from pictrain.errors import UserError
from pictrain.params import Parameters, parse_parameters


def test_aliases_map_to_canonical_names():
    params, _ = parse_parameters(
        {"epoch": 3, "batch": 8, "imgsz": 320, "learning_rate": 0.002, "seed": 7}
    )
    assert (params.epochs, params.batch_size, params.image_size, params.lr0, params.seed) == (
        3,
        8,
        320,
        0.002,
        7,
    )


def test_input_shape_alias_and_string_numbers_from_the_ui():
    params, _ = parse_parameters({"input_shape": "416", "epochs": "5", "cos_lr": "true"})
    assert (params.image_size, params.epochs, params.cos_lr) == (416, 5, True)


def test_experiment_overrides_image_defaults_and_defaulted_keys_are_listed():
    params, defaulted = parse_parameters({"epochs": 2}, defaults={"epochs": 100, "imgsz": 320})
    assert params.epochs == 2
    assert params.image_size == 320
    assert "epochs" not in defaulted and "image_size" not in defaulted
    assert "lr0" in defaulted


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(UserError) as error:
        parse_parameters({"epochz": 3})
    message = str(error.value)
    assert "'epochz'" in message
    assert "epochs" in message and "image_size" in message and "learning_rate" in message


def test_bad_type_is_one_clear_message():
    with pytest.raises(UserError, match=r"epochs: .*integer.*'ten'"):
        parse_parameters({"epochs": "ten"})


@pytest.mark.parametrize(
    "raw", [{"epochs": 0}, {"image_size": 8}, {"optimizer": "Adagrad"}, {"mosaic": 2}]
)
def test_out_of_range_values_are_rejected(raw):
    with pytest.raises(UserError, match="invalid parameters"):
        parse_parameters(raw)


def test_same_parameter_under_two_names_is_an_error():
    with pytest.raises(UserError, match="given twice"):
        parse_parameters({"epochs": 1, "epoch": 2})


def test_unknown_key_in_image_defaults_is_reported_as_such():
    with pytest.raises(UserError, match="unknown image defaults"):
        parse_parameters({}, defaults={"nope": 1})


def test_ultralytics_overrides_use_its_names():
    params, _ = parse_parameters({"batch_size": 4, "image_size": 64})
    overrides = params.ultralytics_overrides()
    assert overrides["batch"] == 4 and overrides["imgsz"] == 64
    assert not {"batch_size", "image_size", "model", "conf_threshold"} & overrides.keys()


def test_accepted_names_include_aliases():
    names = Parameters.accepted_names()
    assert {"epochs", "epoch", "imgsz", "input_shape", "batch"} <= set(names)


def test_readme_documents_every_parameter():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [name for name in Parameters.accepted_names() if f"`{name}`" not in readme]
    assert not missing, f"parameters missing from README.md: {missing}"
