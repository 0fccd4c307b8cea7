"""The project file (`picsellia.toml`): every setting of the path from a folder of images to a
deployed model, in one place. Credentials never live here: they come from the environment and
`.env` (`pictrain.platform.env`).

Relative paths are relative to the file. Each command reads the sections it needs and says
which one is missing; a misspelt key is refused, not ignored.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pictrain.errors import UserError
from pictrain.userfiles import read_text

DEFAULT_FILE = Path("picsellia.toml")
POLICIES = {
    "champion": "DEPLOY_CHAMPION",
    "shadow": "DEPLOY_SHADOW",
    "manual": "DEPLOY_MANUAL",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSection(_Section):
    """The training image: `<images_dir>/<name>`, pushed as `<registry>/<name>:<tag>`,
    registered as model `<name>`, version `<tag>`."""

    name: str
    registry: str = ""
    tag: str
    images_dir: Path = Path("images")


class SplitSection(_Section):
    """One folder of images uploaded with `tags`; the dataset version `version` is made of the
    data carrying every tag of `query` (default: `tags`), annotated from `annotations`."""

    images: Path
    annotations: Path | None = None
    tags: list[str] = Field(min_length=1)
    version: str | None = None
    query: list[str] | None = None


class DatasetSection(_Section):
    name: str
    description: str = ""
    # The types the SDK's COCO import fills (MULTI versions are annotated on the platform).
    type: Literal["OBJECT_DETECTION", "SEGMENTATION", "CLASSIFICATION", "KEYPOINT"]
    labels: list[str] | None = None


class ProjectSection(_Section):
    name: str
    description: str = ""


class ExperimentSection(_Section):
    name: str
    description: str = ""
    datasets: dict[str, str] | None = None  # alias -> split name (default: every split)
    parameters: dict[str, Any] = {}
    pretrained_weights: Path | None = None
    gpus: int = Field(1, ge=1)


class ModelSection(_Section):
    name: str
    description: str = ""


class DeploymentSection(_Section):
    name: str
    threshold: float | None = Field(None, ge=0, le=1)  # None: the model's operating point


class ContinuousTrainingSection(_Section):
    """Reviewed predictions enrich the experiment's train version (`pictrain.workflow.ct`)."""

    project: str | None = None  # default: [project].name
    trigger: Literal["FEEDBACK_LOOP", "NONE"] = "FEEDBACK_LOOP"
    threshold: int = Field(100, ge=1)  # reviewed predictions that trigger a training
    policy: Literal["champion", "shadow", "manual"] = "manual"
    parameters: dict[str, Any] = {}  # over the experiment's

    @model_validator(mode="before")
    @classmethod
    def _no_feedback_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and "feedback_version" in data:
            raise ValueError(
                "feedback_version is gone: reviewed predictions now enrich the train version, "
                "the one continuous training reads (a separate version was read by no "
                "training); remove the key"
            )
        return data


class PreannotateSection(_Section):
    """`pictrain preannotate launch`: the processing of `images/<image>/processing.toml` (as
    `pictrain register` registered it) on dataset version `version` of [dataset], with model
    version `model` (NAME for its latest version, NAME/VERSION, or an id; default: [model]'s
    latest), `cpu`/`gpu` (default: the processing's), its `parameters` over the defaults."""

    version: str | None = None
    model: str | None = None
    image: str = "preannotate"
    cpu: int | None = Field(None, ge=1)
    gpu: int | None = Field(None, ge=0)
    parameters: dict[str, Any] = {}


class ProjectFile(_Section):
    """The parsed file; `source` is where it was read (relative paths start in its folder)."""

    source: Path = DEFAULT_FILE
    image: ImageSection | None = None
    data: dict[str, SplitSection] | None = None
    dataset: DatasetSection | None = None
    project: ProjectSection | None = None
    experiment: ExperimentSection | None = None
    model: ModelSection | None = None
    deployment: DeploymentSection | None = None
    continuous_training: ContinuousTrainingSection | None = None
    preannotate: PreannotateSection | None = None

    @field_validator("data")
    @classmethod
    def _one_version_per_split(cls, data: dict[str, SplitSection] | None) -> Any:
        if data is not None:
            names = [version_name(alias, split) for alias, split in data.items()]
            if len(set(names)) != len(names):
                raise ValueError("two splits name the same dataset version")
        return data

    def need(self, section: str) -> Any:
        """The section, or a clear error naming the file and the missing table."""
        value = getattr(self, section)
        if value is None:
            raise UserError(f"{self.source}: no [{section}] section")
        return value

    def path(self, relative: Path) -> Path:
        return relative if relative.is_absolute() else self.source.parent / relative

    def experiment_datasets(self) -> dict[str, str]:
        """Alias -> dataset version name, for the experiment and continuous training."""
        data: dict[str, SplitSection] = self.need("data")
        experiment: ExperimentSection = self.need("experiment")
        chosen = experiment.datasets or {alias: alias for alias in data}
        unknown = sorted(set(chosen.values()) - set(data))
        if unknown:
            raise UserError(
                f"{self.source}: [experiment] datasets name unknown splits {unknown}; "
                f"splits: {sorted(data)}"
            )
        return {alias: version_name(split, data[split]) for alias, split in chosen.items()}


def version_name(alias: str, split: SplitSection) -> str:
    return split.version or alias


def version_query(split: SplitSection) -> list[str]:
    return split.query or split.tags


def load_project(path: Path) -> ProjectFile:
    try:
        raw = tomllib.loads(read_text(path))
    except FileNotFoundError:
        raise UserError(
            f"no project file {path}: copy picsellia.example.toml to {DEFAULT_FILE} and edit it"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None
    try:
        return ProjectFile.model_validate({**raw, "source": path})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise UserError(f"{path}: {problems}") from None
