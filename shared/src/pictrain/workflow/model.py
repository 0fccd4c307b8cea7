"""`pictrain model publish`: a trained experiment as a model version, labelled and registered
like the image it was trained with, holding the weights continuous training starts from.

Which experiment files the platform keeps in the version is not known (the SDK leaves it to the
server; Picsellia's notes name model-latest, config and checkpoint-*-latest). So after
publishing, the version's files are read back: the weights a job would start from must be the
experiment's best weights (by checksum), and the served `model-latest` and every other export
(`model-<format>[-<precision>]`, export_formats) must be there; what the platform did not keep is
stored from the experiment's artifacts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pictrain.checksums import sha256
from pictrain.errors import PlatformError, UserError
from pictrain.evaluate import champion
from pictrain.exportformats import MODEL_ARTIFACT, is_export_artifact
from pictrain.platform.base import BEST_MODEL_ARTIFACT, LABELMAP_LOG, PUBLISHED_WEIGHTS_ARTIFACT
from pictrain.platform.enums import ExperimentStatus, Framework
from pictrain.platform.session import Platform
from pictrain.platform.weights import starting_weights_file
from pictrain.workflow.experiment import find_experiment
from pictrain.workflow.project import ModelSection, ProjectFile
from pictrain.workflow.register import of_project

REQUIRED_ARTIFACTS = (MODEL_ARTIFACT, PUBLISHED_WEIGHTS_ARTIFACT, BEST_MODEL_ARTIFACT)


def published_version(platform: Platform, model_name: str, experiment: Any) -> Any | None:
    """The version of `model_name` published from this experiment, if any."""
    model = platform.find(f"model {model_name}", platform.client.get_model, model_name)
    if model is None:
        return None
    versions = platform.pages(
        f"list versions of {model_name}",
        lambda limit, offset: model.list_versions(limit=limit, offset=offset),
    )
    for version in versions:
        context = platform.find(f"context of {version.name}", version.get_context)
        if context is not None and context.experiment_id == experiment.id:
            return version
    return None


def champion_check(platform: Platform, experiment: Any, force: bool, verb: str) -> list[str]:
    """Refuse (UserError) to `verb` ("publish", "deploy") a model its job found worse than the
    champion it was compared with, naming both scores, unless `force`; then the line to say."""
    table = platform.find("the champion-vs-challenger table", experiment.get_log, champion.TABLE)
    why = champion.refusal(table.data) if table is not None else None
    if why is None:
        return []
    if not force:
        raise UserError(
            f"experiment {experiment.name} is not {verb}ed: {why}; with `--force` it is "
            f"{verb}ed anyway"
        )
    return [f"--force: {verb}ed although {why}"]


def publish(
    platform: Platform,
    project: ProjectFile,
    experiment_name: str | None = None,
    force: bool = False,
) -> list[str]:
    section: ModelSection = project.need("model")
    registration = of_project(project)
    experiment = find_experiment(platform, project, experiment_name)
    platform.call("read the experiment", experiment.sync)
    if experiment.status != ExperimentStatus.SUCCESS:
        raise UserError(
            f"experiment {experiment.name} is {experiment.status.value}: publish it once it "
            "has trained (SUCCESS)"
        )
    artifacts = {a.name: a for a in platform.call("list artifacts", experiment.list_artifacts)}
    missing = [name for name in REQUIRED_ARTIFACTS if name not in artifacts]
    if missing:
        raise UserError(
            f"experiment {experiment.name} lacks {', '.join(missing)}: was it trained by a "
            "pictrain image?"
        )
    labelmap = platform.find("the labelmap", experiment.get_log, LABELMAP_LOG)
    if labelmap is None:
        raise UserError(f"experiment {experiment.name} has no labelmap log")
    forced = champion_check(platform, experiment, force, "publish")

    def export() -> Any:  # retried whole: a retry finds the version a lost answer made
        found = published_version(platform, section.name, experiment)
        if found is not None:
            return found, False
        model = platform.find(f"model {section.name}", platform.client.get_model, section.name)
        if model is None:
            return experiment.export_as_model(section.name), True
        return experiment.export_in_existing_model(model), True

    version, created = platform.call(f"publish {experiment.name}", export)
    platform.call(
        f"update {version.name}",
        version.update,
        labels=labelmap.data,
        **{**registration.settings(), "framework": Framework.ONNX},
    )
    action = "published as" if created else "already published as"
    lines = [f"experiment {experiment.name} {action} model {section.name} version {version.name}"]
    lines += forced
    lines += _check_files(platform, version, artifacts)
    return lines


def _check_files(platform: Platform, version: Any, artifacts: dict[str, Any]) -> list[str]:
    """The served model and the starting weights are in the version; the weights are the
    experiment's best (the same bytes), so continuous training fine-tunes the trained model."""
    lines = []
    with tempfile.TemporaryDirectory(prefix="pictrain-publish-") as tmp:
        folder = Path(tmp)
        files = {f.name: f for f in platform.call("list model files", version.list_files)}
        exports = sorted(name for name in artifacts if is_export_artifact(name))
        for name in (*exports, PUBLISHED_WEIGHTS_ARTIFACT):
            if name == PUBLISHED_WEIGHTS_ARTIFACT and starting_weights_file(list(files.values())):
                continue
            if name not in files:
                path = _download(platform, artifacts[name], folder / "experiment" / name)
                platform.call(f"store {name}", version.store, name, str(path))
                lines.append(f"the platform did not keep {name}: stored it in the version")
        files = platform.call("list model files", version.list_files)
        weights = starting_weights_file(files)
        trained = sha256(_download(platform, artifacts[BEST_MODEL_ARTIFACT], folder / "best"))
        kept = sha256(_download(platform, weights, folder / "version"))
    if kept != trained:
        raise PlatformError(
            f"continuous training would start from file {weights.name} ({weights.filename}) of "
            f"version {version.name}, which is not the experiment's best weights"
        )
    lines.append(
        f"continuous training will start from its file {weights.name} ({weights.filename}, "
        f"sha256 {kept[:16]}...), the experiment's best weights"
    )
    return lines


def _download(platform: Platform, downloadable: Any, folder: Path) -> Path:
    if Path(downloadable.filename).name != downloadable.filename:
        raise PlatformError(
            f"{downloadable.name} has an unsafe file name {downloadable.filename!r}"
        )
    platform.call(f"download {downloadable.name}", downloadable.download, folder, True)
    return folder / downloadable.filename
