"""Hyperparameters: the names users already type, validated before anything is downloaded.

An experiment inherits the parameters of the model version it was created from, and Picsellia's
own images fill those with their engines' keys. So keys are read as those engines read them
(aliases, "true" / "100.0" / "None" strings), a key that configures nothing here is ignored with
a reason the experiment shows, and a key one slip away from a known name fails as a typo.
Reference: docs/parameters.md (checked against this module by a test).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from pictrain.errors import UserError
from pictrain.exportformats import DEFAULT_EXPORTS, offered, parse_spec
from pictrain.starting import PRETRAINED_ARTIFACT

# ultralytics trains at a multiple of max(model stride, 32) (`check_imgsz`, rounding up).
IMAGE_SIZE_MULTIPLE = 32
# No GPU trains a useful step on more images than this; a larger value is a typo or a unit
# mix-up, and ultralytics would scale weight decay by batch / nbs (x1,500 in a reported run).
MAX_BATCH_SIZE = 4096
DEFAULT_HOLDOUT_FRACTION = 0.1
DEFAULT_BOX_PADDING = 0.1  # pose: of a keypoints' hull box, on each side (data/keypoints.py)
IGNORED_TABLE = "ignored parameters"  # the TABLE log listing keys that had no effect

_TRUE, _FALSE, _NULL = {"true", "yes", "1"}, {"false", "no", "0"}, {"none", "null", ""}


# --- coercion, as Picsellia's engines read values (core/parameters/base_parameters.py) ---------


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str) and str(value).strip().lower() in _TRUE | _FALSE:
        return str(value).strip().lower() in _TRUE
    raise ValueError("expected true or false (also yes/no, 1/0)")


def _number(value: Any) -> int | float:
    """A JSON bool is no number here, though Python says it is (`epochs: true` is no 1)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a bool")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("expected a number") from None
    if not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def _int(value: Any) -> int:
    number = _number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError("expected a whole number")
        return int(number)
    return number


def _float(value: Any) -> float:
    return float(_number(value))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value.strip()


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """None, or "None" / "null" / "" as the engines' forms send an empty optional value."""
    return lambda value: (
        None
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULL)
        else parse(value)
    )


def _choice(options: tuple[str, ...]) -> Callable[[Any], Any]:
    """Case-insensitive, to the spelling ultralytics uses; anything else fails as not listed."""
    by_lower = {option.lower(): option for option in options}
    return lambda value: (
        by_lower.get(value.strip().lower(), value) if isinstance(value, str) else value
    )


def _cache(value: Any) -> Any:
    """`true` caches in RAM, as ultralytics reads it; Picsellia's engines send a bool."""
    if isinstance(value, str) and value.strip().lower() in {"ram", "disk"}:
        return value.strip().lower()
    if value is None or (isinstance(value, str) and value.strip().lower() in _NULL):
        return False
    try:
        return "ram" if _bool(value) else False
    except ValueError:
        raise ValueError("expected ram, disk or false (true means ram)") from None


def _pretrained(value: Any) -> bool:
    """ultralytics also takes a weights path here; this job's starting weights are files the
    experiment brings, so a path is refused with where it belongs."""
    try:
        return _bool(value)
    except ValueError:
        raise ValueError(
            f"expected true or false; a weights file goes on the experiment as "
            f"{PRETRAINED_ARTIFACT} (locally, {PRETRAINED_ARTIFACT}.pt in the dataset folder)"
        ) from None


def _amp(value: Any) -> bool | str:
    if isinstance(value, str) and value.strip().lower() in {"fp16", "bf16", "fp32"}:
        return value.strip().lower()
    try:
        return _bool(value)
    except ValueError:
        raise ValueError("expected true, false, fp16, bf16 or fp32") from None


def _freeze(value: Any) -> int | list[int]:
    """N (the first N layers) or a list of layer indices; "[0, 1]" and "0,1" as text too."""
    if isinstance(value, str) and ("," in value or value.strip().startswith("[")):
        value = [part for part in value.strip().strip("[]").split(",") if part.strip()]
    layers = [_int(item) for item in value] if isinstance(value, list) else [_int(value)]
    if any(layer < 0 for layer in layers):
        raise ValueError("expected layer counts or indices >= 0")
    return layers if isinstance(value, list) else layers[0]


def _listed(value: Any) -> list[Any]:
    """A list, or its text: "[0, 1]" or "0, 1" as the engines' forms send one."""
    if isinstance(value, str):
        return [part for part in value.strip().strip("[]").split(",") if part.strip()]
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _int_list(value: Any) -> list[int]:
    items = [_int(item) for item in _listed(value)]
    if any(item < 0 for item in items):
        raise ValueError("expected keypoint indices >= 0")
    return items


def _sigmas(value: Any) -> list[float]:
    items = [_float(item) for item in _listed(value)]
    if not items or any(item <= 0 for item in items):
        raise ValueError("expected one positive number per keypoint")
    return items


_DEVICE = re.compile(r"|cpu|mps|\d+(,\d+)*")


def _device(value: Any) -> str:
    """The format only ('' | cpu | mps | 0 | 0,1; cuda:0 as ultralytics reads it): whether the
    GPUs exist is the trainer's business."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ",".join(str(_int(item)) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    device = re.sub(r"\s|cuda:", "", value.lower())
    if not _DEVICE.fullmatch(device):
        raise ValueError(
            "expected '' (every GPU, else the CPU), cpu, mps, or GPU indices: 0 or 0,1"
        )
    return device


def _export_formats(value: Any) -> list[str]:
    """`<format>` or `<format>:<precision>` each, as a list or the comma-separated text a
    platform form sends; normalised (`openvino:int8`, `onnx` for onnx:fp32), each once."""
    if isinstance(value, str):
        value = [part.strip(" '\"") for part in value.strip().strip("[]").split(",")]
        value = [part for part in value if part]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError('expected a list of formats, e.g. ["onnx", "openvino:int8"]')
    specs = []
    for item in value:
        try:
            specs.append(str(parse_spec(item)))
        except ValueError as exc:
            raise ValueError(f"{exc}; offered: {', '.join(offered())}") from None
    return list(dict.fromkeys(specs))


Int = Annotated[int, BeforeValidator(_int)]
Float = Annotated[float, BeforeValidator(_float)]
Bool = Annotated[bool, BeforeValidator(_bool)]
OptionalFloat = Annotated[float | None, BeforeValidator(_optional(_float))]
Optimizer = Literal["auto", "SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop"]
AutoAugment = Literal["randaugment", "autoaugment", "augmix"]
CopyPasteMode = Literal["flip", "mixup"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Parameters(BaseModel):
    """Training parameters. Field name = canonical name, which is ultralytics' own unless the
    field says otherwise; aliases are the names other images use. Ranges are ultralytics'
    (`cfg/__init__.py`), narrower only where its range holds nonsense (a negative loss gain)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    # --- what and how long ---
    model: Annotated[str | None, BeforeValidator(_optional(_text))] = Field(
        None,
        description="unset: the image's; else an architecture of its task, e.g. `yolov8s`",
    )
    epochs: Int = Field(
        100, ge=1, validation_alias=_alias("epochs", "epoch"), description="or a `time` budget"
    )
    time: OptionalFloat = Field(
        None, ge=0, description="hours of training; replaces `epochs` when set (0: no limit)"
    )
    patience: Int = Field(50, ge=0, description="early stop after N epochs without improvement")
    batch_size: Int = Field(
        16,
        ge=-1,
        le=MAX_BATCH_SIZE,
        validation_alias=_alias("batch_size", "batch"),
        description="`-1`: ultralytics AutoBatch; cut to the train split's size when larger",
    )
    image_size: Int = Field(
        640,
        ge=IMAGE_SIZE_MULTIPLE,
        le=4096,
        validation_alias=_alias("image_size", "imgsz", "img_size", "input_shape"),
        description=f"rounded up to a multiple of {IMAGE_SIZE_MULTIPLE}; the ONNX input size",
    )
    fraction: Float = Field(1.0, gt=0, le=1, description="share of the train split used")
    freeze: Annotated[int | list[int] | None, BeforeValidator(_optional(_freeze))] = Field(
        None, description="freeze the first N layers, or the layers listed (`[0, 1, 2]`)"
    )
    pretrained: Annotated[bool, BeforeValidator(_pretrained)] = Field(
        True,
        description="`false`: from scratch; `true`: the experiment's weights, else the base "
        "model version's, else the image's own for `model`",
    )
    cls_remap: Bool = Field(
        True, description="fine-tuning on other classes: keep the head rows of same-named ones"
    )
    single_cls: Bool = Field(False, description="`false` only: merge labels in a dataset instead")
    cache: Annotated[Literal[False, "ram", "disk"], BeforeValidator(_cache)] = Field(
        False, validation_alias=_alias("cache", "use_cache"), description="`true` means `ram`"
    )
    rect: Bool = Field(False, description="rectangular batches (no mosaic, no shuffle)")
    # --- optimisation ---
    optimizer: Annotated[Optimizer, BeforeValidator(_choice(OPTIMIZERS))] = Field(
        "auto", description="any case; `auto` lets ultralytics pick by training length"
    )
    lr0: Float = Field(0.01, gt=0, le=1, validation_alias=_alias("lr0", "learning_rate"))
    lrf: Float = Field(0.01, ge=0, le=1, description="final learning rate = lr0 x lrf")
    momentum: Float = Field(0.937, ge=0, le=1, description="SGD momentum, Adam beta1")
    weight_decay: Float = Field(0.0005, ge=0, le=1)
    warmup_epochs: Float = Field(3.0, ge=0)
    warmup_momentum: Float = Field(0.8, ge=0, le=1)
    warmup_bias_lr: Float = Field(0.1, ge=0, le=1)
    cos_lr: Bool = Field(False, description="cosine learning-rate schedule")
    nbs: Int = Field(64, ge=1, description="nominal batch size (gradient accumulation)")
    # --- loss ---
    box: Float = Field(7.5, ge=0, description="box loss gain")
    cls: Float = Field(0.5, ge=0, description="classification loss gain")
    dfl: Float = Field(1.5, ge=0, description="distribution focal loss gain")
    cls_pw: Float = Field(0.0, ge=0, le=1, description="class-weight power against imbalance")
    dropout: Float = Field(0.0, ge=0, le=1, description="classification head only")
    overlap_mask: Bool = Field(True, description="segmentation only: merge instance masks")
    mask_ratio: Int = Field(4, ge=1, description="segmentation only: mask downsampling")
    pose: Float = Field(12.0, ge=0, description="pose only: keypoint location loss gain")
    kobj: Float = Field(1.0, ge=0, description="pose only: keypoint visibility loss gain")
    # --- machine ---
    device: Annotated[str, BeforeValidator(_device)] = Field(
        "", description="`''`: the GPUs when present, else the CPU; `cpu`, `0`, `0,1`"
    )
    workers: Int = Field(8, ge=0, description="dataloader processes")
    amp: Annotated[bool | Literal["fp16", "bf16", "fp32"], BeforeValidator(_amp)] = Field(
        True, description="mixed precision on GPU (checked offline); `bf16`, `fp32` too"
    )
    deterministic: Bool = Field(True, description="reproducible ops, maybe slower")
    seed: Int = Field(0, ge=0, description="training and split cutting")
    save_period: Int = Field(-1, ge=-1, description="also keep a checkpoint every N epochs")
    # --- augmentation ---
    hsv_h: Float = Field(0.015, ge=0, le=1)
    hsv_s: Float = Field(0.7, ge=0, le=1)
    hsv_v: Float = Field(0.4, ge=0, le=1)
    degrees: Float = Field(
        0.0, ge=-180, le=180, description="random rotation; oriented boxes (obb) turn with it"
    )
    translate: Float = Field(0.1, ge=0, le=1)
    scale: Float = Field(0.5, ge=0, le=1)
    shear: Float = Field(0.0, ge=-180, le=180)
    perspective: Float = Field(0.0, ge=0, le=1, description="0 to 0.001 is typical")
    flipud: Float = Field(0.0, ge=0, le=1)
    fliplr: Float = Field(0.5, ge=0, le=1)
    bgr: Float = Field(0.0, ge=0, le=1, description="RGB/BGR swap probability")
    mosaic: Float = Field(1.0, ge=0, le=1)
    close_mosaic: Int = Field(10, ge=0, description="no mosaic in the last N epochs")
    mixup: Float = Field(0.0, ge=0, le=1)
    cutmix: Float = Field(0.0, ge=0, le=1)
    copy_paste: Float = Field(0.0, ge=0, le=1, description="segmentation only")
    copy_paste_mode: Annotated[CopyPasteMode, BeforeValidator(_choice(get_args(CopyPasteMode)))] = (
        Field("flip", description="segmentation only")
    )
    auto_augment: Annotated[
        AutoAugment | None, BeforeValidator(_optional(_choice(get_args(AutoAugment))))
    ] = Field("randaugment", description="classification only")
    erasing: Float = Field(0.4, ge=0, le=1, description="classification only")
    multi_scale: Float = Field(0.0, ge=0, le=1, description="image size range, +/- a share")
    # --- pictrain's own ---
    holdout_fraction: Float = Field(
        DEFAULT_HOLDOUT_FRACTION,
        gt=0,
        lt=0.5,
        description="share of train cut for each split not attached (val, test)",
    )
    conf_threshold: Annotated[float | None, BeforeValidator(_optional(_float))] = Field(
        None,
        gt=0,
        lt=1,
        description="minimum score of predictions sent as evaluations; unset: the operating "
        "point's, each class's threshold chosen on val",
    )
    target_precision: Annotated[float | None, BeforeValidator(_optional(_float))] = Field(
        None,
        gt=0,
        lt=1,
        description="operating point: the lowest threshold reaching this precision on val; "
        "unset: the F1-best threshold",
    )
    champion_tolerance: Float = Field(
        0.005,
        ge=0,
        lt=1,
        description="`model publish` and `deploy` refuse a model scoring more than this "
        "below the base model version's weights on test",
    )
    export_formats: Annotated[list[str], BeforeValidator(_export_formats)] = Field(
        list(DEFAULT_EXPORTS),
        validation_alias=_alias("export_formats", "export_format"),
        description="`<format>` or `<format>:<precision>` (fp32, fp16, int8), each scored "
        "and timed (docs/exports.md); `model-latest` is always the ONNX fp32 file",
    )
    int8_calibration_images: Int = Field(
        300, ge=1, description="train images INT8 exports calibrate on (never test)"
    )
    keypoint_box_padding: Float = Field(
        DEFAULT_BOX_PADDING,
        ge=0,
        le=1,
        description="pose only: a box that is its keypoints' hull (Picsellia's export) grows "
        "by this share of its width and height on each side",
    )
    flip_idx: Annotated[list[int] | None, BeforeValidator(_optional(_int_list))] = Field(
        None,
        description="pose only: the point each keypoint becomes in a flipped image; unset: "
        "from left_*/right_* names, else flips are off",
    )
    kpt_oks_sigmas: Annotated[list[float] | None, BeforeValidator(_optional(_sigmas))] = Field(
        None,
        description="pose only: each keypoint's OKS sigma, in training and evaluation; unset: "
        "COCO's for 17 points, else 1/K",
    )

    @field_validator("batch_size")
    @classmethod
    def _batch_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 is no batch size: -1 for ultralytics AutoBatch, or a size")
        return value

    @field_validator("single_cls")
    @classmethod
    def _one_class_unsupported(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "true is not supported: the labelmap, evaluation and ONNX outputs keep every "
                "class; merge the labels in a dataset version instead"
            )
        return value

    @classmethod
    def accepted_names(cls) -> list[str]:
        """Every name a parameter may be given under: canonical names, aliases, and the
        Picsellia engines' keys that set one (docs/parameters.md)."""
        return sorted({*_alias_index(), *_CONVERTED})

    def ultralytics_overrides(self) -> dict[str, Any]:
        """The subset ultralytics' trainer takes, under its own names."""
        args = self.model_dump(exclude=_NOT_ULTRALYTICS | {"batch_size", "image_size"})
        return {**args, "batch": self.batch_size, "imgsz": self.image_size}


# Fields that are pictrain's, not ultralytics' train arguments (pose's go into data.yaml).
# `pretrained` is resolved by the job (pictrain.starting) before ultralytics builds the model.
_NOT_ULTRALYTICS = {
    "model",
    "pretrained",
    "holdout_fraction",
    "conf_threshold",
    "target_precision",
    "champion_tolerance",
    "export_formats",
    "int8_calibration_images",
    "keypoint_box_padding",
    "flip_idx",
    "kpt_oks_sigmas",
}


# --- Picsellia's engines' keys that are not our names ------------------------------------------
# Read from picsellia-cv-engine (core/parameters, frameworks/ultralytics/parameters) and the
# legacy picsellia-training-engine; aliases in Parameters where they mean the same.


def _holdout_from_train_ratio(value: Any) -> float:
    """Their `train_set_split_ratio` r keeps r of a lone train version for training and cuts
    (1 - r) / 2 each for val and test: our holdout_fraction (docs/parameters.md)."""
    ratio = _float(value)
    if not 0 < ratio < 1:
        raise ValueError("expected a share of train kept for training, between 0 and 1")
    return round((1 - ratio) / 2, 6)


# key -> (parameter it sets, conversion)
_CONVERTED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "prop_train_split": ("holdout_fraction", _holdout_from_train_ratio),
    "train_set_split_ratio": ("holdout_fraction", _holdout_from_train_ratio),
}
# Keys that configure something this image does its own way (ultralytics' or the engines').
_VALIDATES = "pictrain validates every epoch: the curves and the best-weights choice need it"
_REMOVED = "removed from ultralytics 8.4 (it drops the key)"
NO_EFFECT: dict[str, str] = {
    "validate": _VALIDATES,
    "validation": _VALIDATES,
    "val": _VALIDATES,
    "plots": "training plots are always made and logged",
    "profile": "no speed profiling during training",
    "label_smoothing": _REMOVED,
    "crop_fraction": _REMOVED,
    "resume": "a relaunch resumes by itself from the stored checkpoint",
    "data": "the data are the experiment's dataset versions",
    "task": "the image's task",
}
NOT_OFFERED = "an ultralytics setting this image does not offer"
UNKNOWN = "not a parameter of this image"


@functools.cache
def ultralytics_settings() -> frozenset[str]:
    """Every key of ultralytics' default.yaml, read without importing ultralytics (which must
    not be imported before the offline switches are set)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        return frozenset()
    path = Path(spec.origin).parent / "cfg" / "default.yaml"
    return frozenset(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoredKey:
    key: str
    value: Any
    reason: str


@dataclass(frozen=True)
class ParsedParameters:
    """The parameters, the canonical names left at their default, the keys that had no effect
    (with why), and notes on values adjusted (logged by the job)."""

    params: Parameters
    defaulted: list[str]
    ignored_keys: list[IgnoredKey]
    notes: list[str]
    given: list[str]  # canonical names the experiment set, a default's value or not
    from_image: list[str]  # canonical names the image's model.toml set and the experiment not

    def values(self, names: list[str]) -> str:
        """`name=value, ...` as resolved (image_size rounded), for the log."""
        return ", ".join(f"{name}={getattr(self.params, name)!r}" for name in names) or "none"

    @property
    def ignored(self) -> list[str]:
        return [item.key for item in self.ignored_keys]

    def ignored_warning(self) -> str:
        return (
            f"ignored {len(self.ignored_keys)} parameter(s) that have no effect in this image "
            f"(table {IGNORED_TABLE!r}): {', '.join(self.ignored)}"
        )

    def ignored_table(self) -> dict[str, Any]:
        return {
            "columns": ["value", "reason"],
            "rows": self.ignored,
            "data": [[_shown(item.value), item.reason] for item in self.ignored_keys],
        }


def parse_parameters(
    raw: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> ParsedParameters:
    """Validate the experiment's `raw` parameters over the image `defaults`.

    Image defaults are ours: any key there that is not a parameter is a bug and fails. In `raw`,
    a likely typo of a name fails with "did you mean"; any other key that sets nothing is
    ignored. Two spellings of one parameter (`epochs` and `epoch`) are an error, not a pick.
    """
    image = _read(defaults or {}, "image defaults", strict=True)
    given = _read(raw, "parameters", strict=False)
    merged = {**image.values, **given.values}
    try:
        params = Parameters.model_validate(merged)
    except ValidationError as exc:
        raise UserError(describe_invalid(exc, {**image.spelled, **given.spelled})) from None
    params, notes = _round_image_size(params)
    defaulted = sorted(set(Parameters.model_fields) - set(merged))
    from_image = [name for name in image.values if name not in given.values]
    return ParsedParameters(params, defaulted, given.ignored, notes, list(given.values), from_image)


def base_parameters(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter at its default (the image's applied), JSON-serialisable, canonical
    names: what a model version offers the experiments created from it."""
    return parse_parameters({}, defaults).params.model_dump(mode="json")


def fit_batch(params: Parameters, n_train_images: int) -> tuple[Parameters, str | None]:
    """A batch no larger than the images that train (the train split, times `fraction`).

    ultralytics scales weight decay by batch / nbs: a batch of 1,000 on 10 images trains with
    15x the weight decay asked for, on a batch that is never full.
    """
    images = max(1, round(n_train_images * params.fraction)) if n_train_images else 0
    if params.batch_size <= images or images == 0:
        return params, None
    note = (
        f"batch_size {params.batch_size} is larger than the {images} training images: "
        f"training with batch_size {images}"
    )
    return params.model_copy(update={"batch_size": images}), note


@dataclass(frozen=True)
class _Read:
    values: dict[str, Any]  # canonical name -> value
    spelled: dict[str, str]  # canonical name -> the key the user wrote
    ignored: list[IgnoredKey]


def _read(raw: Mapping[str, Any], origin: str, strict: bool) -> _Read:
    by_alias = _alias_index()
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    ignored: list[IgnoredKey] = []
    unknown: list[str] = []
    for key, value in raw.items():
        key = str(key)
        if key in by_alias:
            name = by_alias[key]
        elif key in _CONVERTED and not strict:
            name, convert = _CONVERTED[key]
            value = _converted(key, value, convert)
        elif key in NO_EFFECT and not strict:
            ignored.append(IgnoredKey(key, value, NO_EFFECT[key]))
            continue
        elif key in ultralytics_settings() and not strict:
            ignored.append(IgnoredKey(key, value, NOT_OFFERED))
            continue
        else:
            unknown.append(key)
            ignored.append(IgnoredKey(key, value, UNKNOWN))
            continue
        if name in values:
            raise UserError(
                f"parameter {name!r} is given twice in {origin} (as {spelled[name]!r} and {key!r})"
            )
        values[name], spelled[name] = value, key
    if strict and unknown:
        raise UserError(
            f"unknown {origin} {', '.join(map(repr, unknown))}: a bug in the image's model.toml; "
            f"valid names: {', '.join(Parameters.accepted_names())}"
        )
    slips = {key: likely_typo(key) for key in unknown}
    typos = [f"unknown parameter {k!r}: did you mean {either(n)}?" for k, n in slips.items() if n]
    if typos:
        raise UserError("; ".join(typos))
    return _Read(values, spelled, ignored)


def _converted(key: str, value: Any, convert: Callable[[Any], Any]) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        raise UserError(
            f"invalid parameters: {key}: {exc} (got {_shown(value, quoted=True)})"
        ) from None


def likely_typo(key: str) -> list[str]:
    """The accepted names `key` is probably a slip of (the closest, one per parameter); [] when
    none.

    Ignoring case, `_`, `-` and spaces: the same as a name; or, with the same first letter,
    one edit (insertion, deletion, substitution, swap of neighbours) from a name of 5+
    characters, two from a name of 9+. Short names are left out of the edit rule: `lr` is one
    edit from `lr0` and `lrf`, `seed` from `speed`: too many real keys of other engines would
    fail. Keys ultralytics or Picsellia's engines know are never typos (they are ignored).
    """
    if key in NO_EFFECT or key in ultralytics_settings():
        return []
    best: dict[str, str] = {}  # one name per parameter: its own, else the first alias
    for name in near_names(key, Parameters.accepted_names()):
        sets = _parameter_of(name)
        if sets not in best or name == sets:
            best[sets] = name
    return sorted(best.values())


def near_names(key: str, names: Iterable[str]) -> list[str]:
    """The `names` closest to `key` by `likely_typo`'s rule, sorted; [] when none is near."""
    typed = _squashed(key)
    found: list[tuple[int, str]] = []
    for name in names:
        target = _squashed(name)
        distance = _edit_distance(typed, target)
        near = typed[:1] == target[:1] and (
            (distance == 1 and len(target) >= 5) or (distance == 2 and len(target) >= 9)
        )
        if distance == 0 or near:
            found.append((distance, name))
    closest = min((distance for distance, _ in found), default=None)
    return sorted(name for distance, name in found if distance == closest)


def _parameter_of(name: str) -> str:
    return _alias_index().get(name) or (_CONVERTED[name][0] if name in _CONVERTED else name)


def either(names: list[str]) -> str:
    quoted = [repr(name) for name in names[:3]]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _squashed(name: str) -> str:
    return re.sub(r"[\s_-]", "", name.lower())


def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance, optimal string alignment variant."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[-1]


def _round_image_size(params: Parameters) -> tuple[Parameters, list[str]]:
    """ultralytics would train at the next multiple of the stride and say so in a warning
    nobody reads, while config and ONNX kept the size asked for: round here, once, for all."""
    size = params.image_size
    rounded = math.ceil(size / IMAGE_SIZE_MULTIPLE) * IMAGE_SIZE_MULTIPLE
    if rounded == size:
        return params, []
    note = f"image_size {size} rounded up to {rounded}, a multiple of {IMAGE_SIZE_MULTIPLE}"
    return params.model_copy(update={"image_size": rounded}), [note]


def _alias_index() -> dict[str, str]:
    return alias_index(Parameters)


def alias_index(model: type[BaseModel]) -> dict[str, str]:
    """Every name a field of `model` is read under (its aliases, else its name) -> the field."""
    index: dict[str, str] = {}
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        for choice in alias.choices if isinstance(alias, AliasChoices) else [name]:
            index[str(choice)] = name
    return index


def describe_invalid(exc: ValidationError, spelled: Mapping[str, str]) -> str:
    problems = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "parameters"
        where = name if spelled.get(name, name) == name else f"{name} (as {spelled[name]!r})"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message} (got {_shown(err.get('input'), quoted=True)})")
    return "invalid parameters: " + "; ".join(problems)


def _shown(value: Any, quoted: bool = False) -> str:
    """A value as the user wrote it in JSON (`true`, not Python's `True`)."""
    if isinstance(value, str) and not quoted:
        return value
    return json.dumps(value, default=str, ensure_ascii=False)
