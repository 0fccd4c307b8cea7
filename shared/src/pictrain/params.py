"""Hyperparameters: the names users already type, validated before anything is downloaded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from pictrain.errors import UserError

Optimizer = Literal["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"]


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Parameters(BaseModel):
    """Training parameters. Field name = canonical name; aliases are what other images used."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    model: str | None = Field(None, description="override the image's model, e.g. yolov8s")
    epochs: int = Field(100, ge=1, validation_alias=_alias("epochs", "epoch"))
    batch_size: int = Field(16, ge=-1, validation_alias=_alias("batch_size", "batch"))
    image_size: int = Field(
        640, ge=32, le=4096, validation_alias=_alias("image_size", "imgsz", "input_shape")
    )
    lr0: float = Field(0.01, gt=0, validation_alias=_alias("lr0", "learning_rate"))
    lrf: float = Field(0.01, gt=0)
    momentum: float = Field(0.937, ge=0, le=1)
    weight_decay: float = Field(0.0005, ge=0)
    warmup_epochs: float = Field(3.0, ge=0)
    optimizer: Optimizer = "auto"
    cos_lr: bool = False
    patience: int = Field(50, ge=0)
    seed: int = 0
    device: str = Field("", description="'' picks the GPU when present, else 'cpu'; '0', '0,1'")
    workers: int = Field(8, ge=0)
    save_period: int = Field(-1, ge=-1)
    amp: bool = True
    close_mosaic: int = Field(10, ge=0)
    # augmentation, passed to ultralytics as is
    hsv_h: float = Field(0.015, ge=0, le=1)
    hsv_s: float = Field(0.7, ge=0, le=1)
    hsv_v: float = Field(0.4, ge=0, le=1)
    degrees: float = Field(0.0, ge=-180, le=180)
    translate: float = Field(0.1, ge=0, le=1)
    scale: float = Field(0.5, ge=0)
    shear: float = Field(0.0, ge=-180, le=180)
    perspective: float = Field(0.0, ge=0, le=0.001)
    flipud: float = Field(0.0, ge=0, le=1)
    fliplr: float = Field(0.5, ge=0, le=1)
    mosaic: float = Field(1.0, ge=0, le=1)
    mixup: float = Field(0.0, ge=0, le=1)
    copy_paste: float = Field(0.0, ge=0, le=1)
    # evaluation
    conf_threshold: float = Field(
        0.25, gt=0, lt=1, description="min confidence of predictions sent as evaluations"
    )

    @classmethod
    def accepted_names(cls) -> list[str]:
        names: set[str] = set()
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            names.update(alias.choices if isinstance(alias, AliasChoices) else [name])
        return sorted(str(n) for n in names)

    def ultralytics_overrides(self) -> dict[str, Any]:
        """The subset ultralytics' trainer takes, under its own names."""
        own = {"model", "conf_threshold", "batch_size", "image_size"}
        args = {k: v for k, v in self.model_dump().items() if k not in own}
        return {**args, "batch": self.batch_size, "imgsz": self.image_size}


def parse_parameters(
    raw: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> tuple[Parameters, list[str]]:
    """Validate `raw` over the image `defaults`; return the parameters and the keys left default.

    Two spellings of one parameter (e.g. `epochs` and `epoch`) are an error, not a silent pick.
    """
    merged = {**_canonical(defaults or {}, "image defaults"), **_canonical(raw, "parameters")}
    try:
        params = Parameters.model_validate(merged)
    except ValidationError as exc:
        raise UserError(_describe(exc)) from None
    defaulted = sorted(set(Parameters.model_fields) - set(merged))
    return params, defaulted


def _canonical(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    by_alias = _alias_index()
    unknown = sorted(k for k in raw if k not in by_alias)
    if unknown:
        raise UserError(
            f"unknown {origin} {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(Parameters.accepted_names())}"
        )
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = by_alias[key]
        if name in out:
            raise UserError(f"parameter {name!r} is given twice in {origin} (under two names)")
        out[name] = value
    return out


def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name, field in Parameters.model_fields.items():
        alias = field.validation_alias
        for choice in alias.choices if isinstance(alias, AliasChoices) else [name]:
            index[str(choice)] = name
    return index


def _describe(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
        for err in exc.errors()
    ]
    return "invalid parameters: " + "; ".join(problems)
