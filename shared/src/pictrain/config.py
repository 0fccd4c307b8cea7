"""What an image is: its task, default model and parameter defaults (images/<name>/model.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from pictrain.errors import UserError

Task = Literal["detect"]


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task = "detect"
    model: str = "yolov8n"
    defaults: dict[str, Any] = {}


def load_model_config(path: Path | None) -> ModelConfig:
    """The image's config, or the built-in default (YOLOv8n detection) for bare local runs."""
    if path is None:
        return ModelConfig()
    try:
        return ModelConfig.model_validate(tomllib.loads(path.read_text()))
    except FileNotFoundError:
        raise UserError(f"model config {path} does not exist") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise UserError(f"model config {path} is invalid: {exc}") from None
