"""What an image is: its task, default model and parameter defaults (images/<name>/model.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from pictrain.errors import UserError

Task = Literal["detect", "segment", "classify"]
TASKS: tuple[Task, ...] = ("detect", "segment", "classify")
DEFAULT_MODELS: dict[str, str] = {
    "detect": "yolov8n",
    "segment": "yolov8n-seg",
    "classify": "yolov8n-cls",
}


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task = "detect"
    model: str = ""
    defaults: dict[str, Any] = {}
    # The image's model.toml; None for a bare local run, whose task `--task` chose.
    _file: Path | None = PrivateAttr(default=None)

    @property
    def file(self) -> Path | None:
        return self._file

    @model_validator(mode="before")
    @classmethod
    def _default_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model"):
            return {**data, "model": DEFAULT_MODELS[data.get("task", "detect")]}
        return data


def load_model_config(path: Path | None, task: Task | None = None) -> ModelConfig:
    """The image's config; for bare local runs, the default model of `task` (detection)."""
    if path is None:
        return ModelConfig.model_validate({"task": task or "detect"})
    if task is not None:
        raise UserError(f"--task {task} and a model config ({path}) both given: pick one")
    try:
        config = ModelConfig.model_validate(tomllib.loads(path.read_text()))
    except FileNotFoundError:
        raise UserError(f"model config {path} does not exist") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise UserError(f"model config {path} is invalid: {exc}") from None
    config._file = path
    return config
