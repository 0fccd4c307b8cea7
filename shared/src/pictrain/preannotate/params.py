"""The processing's parameters: read as the training image reads its own (Picsellia's keys as
aliases, "true" / "0.3" / "None" strings), a likely typo fails with "did you mean", any other
key is ignored with a warning (a processing launched with another image's parameters still
runs). Reference: docs/preannotate.md (a test keeps it equal to this module)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from pictrain.errors import UserError
from pictrain.params import (
    Bool,
    Int,
    OptionalFloat,
    alias_index,
    describe_invalid,
    either,
    near_names,
)

Strategy = Literal["name", "add", "exact"]


def _strategy(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _tag(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip() or '"' in value:
        raise ValueError("expected a tag name (text, no double quote)")
    return value.strip()


class PreannotateParameters(BaseModel):
    """Field name = the canonical name; aliases are the names Picsellia's pre-annotation and
    `pxl-pipeline` run configs use."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    confidence_threshold: OptionalFloat = Field(
        None,
        gt=0,
        lt=1,
        validation_alias=AliasChoices("confidence_threshold", "threshold", "conf_threshold"),
        description="unset: the model's operating point (per class) from its export, else 0.25",
    )
    batch_size: Int = Field(
        32, ge=1, le=1000, description="assets fetched, predicted and written together"
    )
    replace_annotations: Bool = Field(
        False,
        description="`true`: an asset a human annotated gets the model's annotation instead",
    )
    label_matching_strategy: Annotated[Strategy, BeforeValidator(_strategy)] = Field(
        "name",
        description="`name`: to the version's labels of the same name, others dropped and "
        "counted; `add`: missing labels created; `exact`: the label sets must be equal",
    )
    to_label: Int = Field(
        20, ge=0, le=100_000, description="unlabelled assets tagged to label next; 0: no scoring"
    )
    to_label_tag: Annotated[str, BeforeValidator(_tag)] = Field(
        "to-label", description="the asset tag they get"
    )
    flip_consistency: Bool = Field(
        True,
        description="score the disagreement between the image and its mirror image (a second "
        "prediction per unlabelled asset)",
    )

    @classmethod
    def accepted_names(cls) -> list[str]:
        return sorted(_alias_index())


# Picsellia's own pre-annotation reads these; here they configure nothing, and say why.
NO_EFFECT: dict[str, str] = {
    "image_size": "the export's input size is fixed (read from the model file)",
    "img_size": "the export's input size is fixed (read from the model file)",
    "imgsz": "the export's input size is fixed (read from the model file)",
    "agnostic_nms": "NMS is per class, as the training image evaluates",
    "device": "the ONNX export runs on the CPU",
}


@dataclass(frozen=True)
class ParsedParameters:
    params: PreannotateParameters
    ignored: dict[str, str]  # key -> why it has no effect


def read_parameters(raw: Mapping[str, Any]) -> ParsedParameters:
    by_alias = _alias_index()
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    ignored: dict[str, str] = {}
    typos = []
    for key, value in raw.items():
        key = str(key)
        name = by_alias.get(key)
        if name is None:
            near = near_names(key, by_alias) if key not in NO_EFFECT else []
            if near:
                typos.append(f"unknown parameter {key!r}: did you mean {either(near)}?")
            ignored[key] = NO_EFFECT.get(key, "not a parameter of the pre-annotation")
            continue
        if name in values:
            raise UserError(f"parameter {name!r} is given twice (as {spelled[name]!r} and {key!r})")
        values[name], spelled[name] = value, key
    if typos:
        raise UserError("; ".join(typos))
    try:
        params = PreannotateParameters.model_validate(values)
    except ValidationError as exc:
        raise UserError(describe_invalid(exc, spelled)) from None
    return ParsedParameters(params, ignored)


def default_parameters() -> dict[str, Any]:
    """Every parameter at its default, canonical names: what the processing offers."""
    return PreannotateParameters().model_dump(mode="json")


def _alias_index() -> dict[str, str]:
    return alias_index(PreannotateParameters)
