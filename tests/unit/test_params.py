"""Parameters: names and aliases, values coerced as Picsellia's engines do, ranges as
ultralytics', keys with no effect ignored with a reason, typos refused with "did you mean"."""

import json
from pathlib import Path

import pytest
from annotated_types import Ge, Gt, Le, Lt

from pictrain.config import load_model_config
from pictrain.errors import UserError
from pictrain.params import (
    IGNORED_TABLE,
    MAX_BATCH_SIZE,
    NO_EFFECT,
    NOT_OFFERED,
    UNKNOWN,
    Parameters,
    base_parameters,
    fit_batch,
    likely_typo,
    parse_parameters,
    ultralytics_settings,
)
from tests.picsellia_parameters import NO_EFFECT_KEYS, PICSELLIA_ENGINE_PARAMETERS

IMAGE_CONFIGS = sorted((Path(__file__).parents[2] / "images").glob("*/model.toml"))


def params_of(raw, defaults=None) -> Parameters:
    return parse_parameters(raw, defaults).params


# --- names -------------------------------------------------------------------------------------


def test_aliases_map_to_canonical_names():
    params = params_of(
        {"epoch": 3, "batch": 8, "img_size": 320, "learning_rate": 0.002, "use_cache": "disk"}
    )
    assert (params.epochs, params.batch_size, params.image_size, params.lr0, params.cache) == (
        3,
        8,
        320,
        0.002,
        "disk",
    )
    assert params_of({"imgsz": 416}).image_size == params_of({"input_shape": 416}).image_size


def test_experiment_overrides_image_defaults_and_defaulted_keys_are_listed():
    parsed = parse_parameters({"epochs": 2}, defaults={"epochs": 100, "imgsz": 320})
    assert parsed.params.epochs == 2
    assert parsed.params.image_size == 320
    assert "epochs" not in parsed.defaulted and "image_size" not in parsed.defaulted
    assert "lr0" in parsed.defaulted


def test_what_the_experiment_gave_is_listed_even_where_it_equals_a_default():
    """The job logs it: a value the user set to the default is still the user's."""
    parsed = parse_parameters(
        {"epochs": 100, "lr0": 0.01, "imgsz": 330}, defaults={"epochs": 50, "batch_size": 8}
    )
    assert parsed.given == ["epochs", "lr0", "image_size"]
    assert parsed.from_image == ["batch_size"]
    assert parsed.values(parsed.given) == "epochs=100, lr0=0.01, image_size=352"
    assert parse_parameters({}).values(parse_parameters({}).given) == "none"


def test_same_parameter_under_two_names_is_an_error():
    with pytest.raises(UserError, match=r"'epochs' is given twice in parameters \(as 'epochs'"):
        parse_parameters({"epochs": 1, "epoch": 2})


def test_ultralytics_overrides_use_its_names_and_every_one_is_an_ultralytics_setting():
    overrides = params_of({"batch_size": 4, "image_size": 64}).ultralytics_overrides()
    assert overrides["batch"] == 4 and overrides["imgsz"] == 64
    assert not {"batch_size", "image_size", "model", "conf_threshold"} & overrides.keys()
    assert overrides.keys() <= ultralytics_settings()


def test_defaults_pass_ultralytics_own_argument_check():
    from ultralytics.cfg import check_cfg

    check_cfg(params_of({}).ultralytics_overrides())  # raises on a type or range it refuses


# --- values, coerced as Picsellia's engines coerce them ----------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"epochs": "100.0"}, {"epochs": 100}),
        ({"epochs": "1e2"}, {"epochs": 100}),
        ({"epochs": 100.0}, {"epochs": 100}),
        ({"lr0": "0.002"}, {"lr0": 0.002}),
        ({"lr0": 1}, {"lr0": 1.0}),
        ({"cos_lr": "true", "rect": "YES", "amp": "0"}, {"cos_lr": True, "rect": True, "amp": 0}),
        ({"deterministic": "no", "overlap_mask": 0}, {"deterministic": False, "overlap_mask": 0}),
        ({"time": "None", "freeze": "null", "model": ""}, {"time": None, "freeze": None}),
        ({"time": "1.5"}, {"time": 1.5}),
        ({"optimizer": "adamw"}, {"optimizer": "AdamW"}),
        ({"optimizer": "RMSProp"}, {"optimizer": "RMSprop"}),
        ({"auto_augment": "None"}, {"auto_augment": None}),
        ({"amp": "BF16"}, {"amp": "bf16"}),
    ],
)
def test_values_are_coerced_as_picsellia_engines_do(raw, expected):
    dumped = params_of(raw).model_dump()
    assert {key: dumped[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("value", "cache"),
    [
        (True, "ram"),
        ("true", "ram"),
        ("RAM", "ram"),
        ("disk", "disk"),
        (False, False),
        ("no", False),
        ("None", False),
        (None, False),
    ],
)
def test_cache_is_ram_disk_or_off_and_true_means_ram(value, cache):
    assert params_of({"cache": value}).cache == cache


@pytest.mark.parametrize(
    ("value", "freeze"),
    [
        (10, 10),
        ("10", 10),
        ([0, 1], [0, 1]),
        ("[0, 1, 2]", [0, 1, 2]),
        ("3,4", [3, 4]),
        ("[5]", [5]),
        ("None", None),
    ],
)
def test_freeze_is_a_layer_count_or_a_list_of_layers(value, freeze):
    assert params_of({"freeze": value}).freeze == freeze


@pytest.mark.parametrize(
    ("value", "device"),
    [
        ("", ""),
        (None, ""),
        ("cpu", "cpu"),
        ("CPU", "cpu"),
        ("mps", "mps"),
        (0, "0"),
        ("0, 1", "0,1"),
        ("cuda:0", "0"),
        ("cuda:0,cuda:1", "0,1"),
        ([0, 1], "0,1"),
    ],
)
def test_device_format(value, device):
    assert params_of({"device": value}).device == device


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"epochs": True}, r"epochs: expected a number, got a bool \(got true\)"),
        ({"batch_size": False}, r"batch_size: expected a number, got a bool"),
        ({"lr0": True}, r"lr0: expected a number, got a bool"),
        ({"epochs": 100.5}, r"epochs: expected a whole number \(got 100.5\)"),
        ({"epochs": "100.5"}, r"epochs: expected a whole number"),
        ({"epochs": "ten"}, r"epochs: expected a number \(got \"ten\"\)"),
        ({"lr0": "nan"}, r"lr0: expected a finite number"),
        ({"cos_lr": "maybe"}, r"cos_lr: expected true or false"),
        ({"cos_lr": 2}, r"cos_lr: expected true or false"),
        ({"model": 8}, r"model: expected text"),
        ({"cache": "gpu"}, r"cache: expected ram, disk or false"),
        ({"amp": "fp8"}, r"amp: expected true, false, fp16, bf16 or fp32"),
        ({"freeze": -1}, r"freeze: expected layer counts or indices >= 0"),
        ({"device": "gpu"}, r"device: expected '' \(every GPU, else the CPU\), cpu, mps"),
        ({"device": "cuda"}, r"device: expected ''"),
        ({"device": "0,,1"}, r"device: expected ''"),
        ({"multi_scale": True}, r"multi_scale: expected a number, got a bool"),
        ({"imgsz": 8}, r"image_size \(as 'imgsz'\): Input should be greater than or equal to 32"),
        ({"optimizer": "Adagrad"}, r"optimizer: Input should be 'auto', 'SGD'"),
        ({"auto_augment": "trivial"}, r"auto_augment: Input should be 'randaugment'"),
        ({"batch_size": 0}, r"batch_size: 0 is no batch size"),
        ({"batch_size": MAX_BATCH_SIZE + 1}, r"batch_size: Input should be less than or equal"),
        ({"single_cls": "true"}, r"single_cls: true is not supported"),
        (
            {"export_format": "tflite"},
            r"export_formats \(as 'export_format'\): 'tflite' is not an export this image "
            r"offers \(.*\); offered: onnx, onnx:fp16, onnx:int8, openvino, ",
        ),
        ({"export_formats": ["openvino:int4"]}, r"openvino is offered in fp32, fp16, int8, not"),
        ({"export_formats": [3]}, r"export_formats: expected a list of formats"),
        ({"int8_calibration_images": 0}, r"int8_calibration_images: .*greater than or equal"),
        ({"prop_train_split": 1}, r"prop_train_split: expected a share of train kept"),
        ({"epochs": 0, "mosaic": 2}, r"epochs: .*greater than or equal to 1.*; mosaic: .*1"),
    ],
)
def test_bad_values_are_refused_with_one_clear_message(raw, message):
    with pytest.raises(UserError, match=message) as error:
        parse_parameters(raw)
    assert str(error.value).startswith("invalid parameters: ")


# Where a range here is narrower than what ultralytics' check_cfg lets through: values it takes
# without complaint that train nothing sensible, or that pictrain bounds itself.
NARROWER_THAN_ULTRALYTICS = {
    "time": "negative hours",
    "batch_size": "0 (-1 is AutoBatch) and more than MAX_BATCH_SIZE",
    "image_size": "below one stride, above 4096 (ultralytics checks no range)",
    "lr0": "0 trains nothing",
    "warmup_epochs": "negative",
    "box": "negative gain",
    "cls": "negative gain",
    "dfl": "negative gain",
    "pose": "negative gain",
    "kobj": "negative gain",
    "degrees": "beyond +/-180 (the Picsellia engine's range, a full turn either way)",
    "shear": "beyond +/-180 (the Picsellia engine's range)",
    "save_period": "below -1 (all mean off)",
    "workers": "negative",
    "close_mosaic": "negative",
}


def _bounds(field) -> list[tuple[object, object]]:
    """(a value just inside, a value just outside) for each numeric bound of a field."""
    step = 1 if field.annotation is int else 1e-6
    pairs = []
    for bound in field.metadata:
        if isinstance(bound, Ge):
            pairs.append((bound.ge, bound.ge - step))
        elif isinstance(bound, Gt):
            pairs.append((bound.gt + step, bound.gt))
        elif isinstance(bound, Le):
            pairs.append((bound.le, bound.le + step))
        elif isinstance(bound, Lt):
            pairs.append((bound.lt - step, bound.lt))
    return pairs


def test_ranges_are_ultralytics_own_unless_listed_as_narrower():
    from ultralytics.cfg import check_cfg

    names = {"batch_size": "batch", "image_size": "imgsz"}
    overrides = params_of({}).ultralytics_overrides()
    narrower = set()
    for field_name, field in Parameters.model_fields.items():
        key = names.get(field_name, field_name)
        if key not in overrides:
            continue  # pictrain's own
        for inside, outside in _bounds(field):
            value = field.annotation(inside) if field.annotation in (int, float) else inside
            params_of({field_name: value})
            check_cfg({key: value})  # never accept what ultralytics refuses
            with pytest.raises(UserError):
                params_of({field_name: outside})
            try:
                check_cfg({key: outside})
                narrower.add(field_name)
            except (TypeError, ValueError):
                pass
    assert narrower == set(NARROWER_THAN_ULTRALYTICS)


def test_image_size_is_rounded_up_to_the_multiple_ultralytics_trains_at():
    parsed = parse_parameters({"image_size": 48})
    assert parsed.params.image_size == 64
    assert parsed.notes == ["image_size 48 rounded up to 64, a multiple of 32"]
    assert parsed.params.ultralytics_overrides()["imgsz"] == 64
    assert parse_parameters({"image_size": 4095}).params.image_size == 4096
    assert parse_parameters({"image_size": 640}).notes == []


@pytest.mark.parametrize(
    ("batch", "fraction", "images", "expected"),
    [(64, 1.0, 10, 10), (4, 1.0, 10, 4), (10, 1.0, 10, 10), (-1, 1.0, 10, -1), (8, 0.5, 10, 5)],
)
def test_fit_batch_cuts_a_batch_larger_than_the_images_that_train(
    batch, fraction, images, expected
):
    params = params_of({"batch_size": batch, "fraction": fraction})
    fitted, note = fit_batch(params, images)
    assert fitted.batch_size == expected
    assert (note is None) == (expected == batch)
    if note:
        assert note == (
            f"batch_size {batch} is larger than the {expected} training images: "
            f"training with batch_size {expected}"
        )


# --- keys from Picsellia's engines and other images --------------------------------------------


def test_picsellia_engine_parameters_are_read_as_their_engine_reads_them():
    parsed = parse_parameters(PICSELLIA_ENGINE_PARAMETERS)
    params = parsed.params
    assert set(parsed.ignored) == NO_EFFECT_KEYS
    assert (params.epochs, params.batch_size, params.image_size, params.patience) == (
        10,
        8,
        640,
        100,
    )
    assert (params.device, params.cache, params.time, params.freeze) == ("0", False, None, None)
    assert (params.warmup_epochs, params.nbs, params.lrf) == (3.0, 64, 0.1)
    assert params.holdout_fraction == 0.1  # their prop_train_split 0.8: 80/10/10 from one version


@pytest.mark.parametrize(("ratio", "holdout"), [(0.8, 0.1), ("0.7", 0.15), (0.9, 0.05)])
def test_train_split_ratio_sets_the_holdout_of_each_cut_split(ratio, holdout):
    assert params_of({"train_set_split_ratio": ratio}).holdout_fraction == holdout
    assert params_of({"prop_train_split": ratio}).holdout_fraction == holdout


@pytest.mark.parametrize(
    "raw",
    [
        {"prop_train_split": 0.8, "train_set_split_ratio": 0.8},
        {"prop_train_split": 0.8, "holdout_fraction": 0.1},
    ],
)
def test_train_split_ratio_and_holdout_are_one_parameter(raw):
    with pytest.raises(UserError, match="'holdout_fraction' is given twice"):
        parse_parameters(raw)


def test_export_format_onnx_is_accepted_in_any_case():
    parsed = parse_parameters({"export_format": "ONNX"})
    assert parsed.ignored == [] and parsed.params.export_formats == ["onnx"]


@pytest.mark.parametrize(
    "raw",
    [
        ["onnx", "OpenVINO:INT8", "torchscript", "onnx:fp32", "openvino:int8"],
        "onnx, openvino:int8,torchscript",  # a platform form's text
        '["onnx", "openvino:int8", "torchscript"]',
    ],
)
def test_export_formats_are_normalised_each_once(raw):
    parsed = parse_parameters({"export_formats": raw}).params
    assert parsed.export_formats == ["onnx", "openvino:int8", "torchscript"]
    assert "export_formats" not in parsed.ultralytics_overrides()


def test_export_formats_and_picsellias_export_format_are_one_parameter():
    with pytest.raises(UserError, match="'export_formats' is given twice"):
        parse_parameters({"export_format": "onnx", "export_formats": ["openvino"]})


# The train arguments a user may reasonably set: each a typed parameter given to ultralytics.
USER_TRAIN_ARGUMENTS = [
    "cache",
    "rect",
    "freeze",
    "fraction",
    "dropout",
    "box",
    "cls",
    "dfl",
    "time",
    "single_cls",
    "multi_scale",
    "overlap_mask",
    "mask_ratio",
    "nbs",
    "warmup_momentum",
    "warmup_bias_lr",
    "deterministic",
    "erasing",
    "auto_augment",
    "cutmix",
]


@pytest.mark.parametrize("name", USER_TRAIN_ARGUMENTS)
def test_the_train_arguments_users_set_are_parameters(name):
    assert name in Parameters.model_fields
    assert name in params_of({}).ultralytics_overrides()


def test_label_smoothing_is_ignored_with_its_reason():
    """ultralytics 8.4 no longer has it: accepted from Picsellia's engines, said to do nothing."""
    parsed = parse_parameters({"label_smoothing": 0.1})
    assert parsed.ignored == ["label_smoothing"]
    assert parsed.ignored_table()["data"] == [["0.1", NO_EFFECT["label_smoothing"]]]


def test_ignored_keys_get_one_warning_line_and_a_table_with_their_reasons():
    parsed = parse_parameters({"epochs": 3, "plots": False, "iou": 0.5, "my_note": "v2"})
    assert parsed.ignored == ["plots", "iou", "my_note"]
    assert parsed.ignored_warning() == (
        f"ignored 3 parameter(s) that have no effect in this image (table {IGNORED_TABLE!r}): "
        "plots, iou, my_note"
    )
    assert parsed.ignored_table() == {
        "columns": ["value", "reason"],
        "rows": ["plots", "iou", "my_note"],
        "data": [["false", NO_EFFECT["plots"]], ["0.5", NOT_OFFERED], ["v2", UNKNOWN]],
    }
    assert parse_parameters({"epochs": 3}).ignored == []


@pytest.mark.parametrize(
    ("key", "suggested"),
    [
        ("epochss", "'epochs'"),
        ("epohcs", "'epochs'"),
        ("Epochs", "'epochs'"),
        ("bacth_size", "'batch_size'"),
        ("batch-size", "'batch_size'"),
        ("batchsize", "'batch_size'"),
        ("momentun", "'momentum'"),
        ("warmup_epoch", "'warmup_epochs'"),
        ("wieght_decay", "'weight_decay'"),
        ("mosiac", "'mosaic'"),
        ("imgsiz", "'img_size'"),
        ("lr_0", "'lr0'"),
        ("epocs", "'epochs'"),
        ("IMAGE_SIZE", "'image_size'"),
        ("LR0", "'lr0'"),
        ("prop_train_splits", "'prop_train_split'"),
    ],
)
def test_a_likely_typo_fails_with_did_you_mean(key, suggested):
    with pytest.raises(
        UserError, match=rf"^unknown parameter '{key}': did you mean {suggested}\?$"
    ):
        parse_parameters({key: 3})


@pytest.mark.parametrize(
    "key",
    [
        # other engines' names; short keys near short names; a different first letter
        *("lr", "lr_decay", "seeds", "tile", "step", "speed", "patch_size", "num_classes", "gpu"),
        *("epoch_count", "hsv_hue", "translation"),
        # ultralytics settings one edit from a parameter (nms: nbs, mode: model, rle: rect)
        *("nms", "mode", "conf", "iou", "rle"),
    ],
)
def test_keys_that_are_no_typo_are_ignored_not_refused(key):
    assert likely_typo(key) == []
    assert parse_parameters({key: 1}).ignored == [key]


def test_several_typos_are_named_in_one_message():
    with pytest.raises(UserError, match=r"'epochss'.*'epochs'\?; unknown parameter 'bacth'"):
        parse_parameters({"epochss": 1, "bacth": 2, "unrelated": 3})


# --- image defaults are ours: strict ----------------------------------------------------------


@pytest.mark.parametrize("key", ["nope", "plots", "prop_train_split", "epochss"])
def test_a_key_in_image_defaults_that_is_no_parameter_is_our_bug(key):
    with pytest.raises(UserError, match=rf"unknown image defaults '{key}': a bug in the image"):
        parse_parameters({}, defaults={key: 1})


# --- what a model version offers ---------------------------------------------------------------


@pytest.mark.parametrize("path", IMAGE_CONFIGS, ids=lambda p: p.parent.name)
def test_base_parameters_round_trip_for_every_image(path):
    defaults = load_model_config(path).defaults
    base = base_parameters(defaults)
    assert json.loads(json.dumps(base)) == base
    assert set(base) == set(Parameters.model_fields)
    parsed = parse_parameters(base, defaults)
    assert parsed.ignored == [] and parsed.notes == []
    assert parsed.params == params_of({}, defaults)
    for key, value in defaults.items():
        assert base[key] == value


def test_accepted_names_include_aliases_and_picsellia_keys():
    names = set(Parameters.accepted_names())
    assert {"epochs", "epoch", "imgsz", "img_size", "input_shape", "batch", "use_cache"} <= names
    assert {"prop_train_split", "train_set_split_ratio", "export_format"} <= names
    assert "export_formats" in names


# --- the documentation is rendered from the model ---------------------------------------------


def test_parameter_tables_in_readme_and_docs_are_current():
    from scripts.params_doc import README, REFERENCE, listed_names, render

    for path in (README, REFERENCE):
        text = path.read_text(encoding="utf-8")
        assert render(text) == text, f"{path.name} is stale: run python -m scripts.params_doc"
    assert len(listed_names(README.read_text(encoding="utf-8"))) >= 10  # README's short table


@pytest.mark.parametrize(("argv", "code"), [(["--help"], 0), (["--check"], 2)])
def test_the_renderer_writes_nothing_when_asked_for_help_or_a_flag_it_lacks(argv, code):
    from scripts.params_doc import README, REFERENCE, main

    before = {path: path.stat().st_mtime_ns for path in (README, REFERENCE)}
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == code
    assert {path: path.stat().st_mtime_ns for path in (README, REFERENCE)} == before


def test_readme_table_rows_must_be_parameters():
    from scripts.params_doc import render

    with pytest.raises(KeyError, match="epochz"):
        render("<!-- params:main -->\n| `epochz` |\n<!-- /params:main -->\n")


def test_reference_names_every_accepted_name_and_ignored_key():
    from scripts.params_doc import REFERENCE

    text = REFERENCE.read_text(encoding="utf-8")
    missing = [n for n in [*Parameters.accepted_names(), *NO_EFFECT] if f"`{n}`" not in text]
    assert not missing, f"missing from {REFERENCE.name}: {missing}"
