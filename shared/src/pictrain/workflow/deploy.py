"""`pictrain deploy`: the model version published from the experiment, served under a name with
a score threshold; rerun, it moves the deployment to that version and threshold."""

from __future__ import annotations

from typing import Any

from pictrain.errors import UserError
from pictrain.evaluate import operating_point
from pictrain.platform.session import Platform
from pictrain.workflow.experiment import find_experiment
from pictrain.workflow.model import champion_check, published_version
from pictrain.workflow.project import DeploymentSection, ModelSection, ProjectFile


def find_deployment(platform: Platform, project: ProjectFile) -> Any:
    name = project.need("deployment").name
    found = platform.find(f"deployment {name}", platform.client.get_deployment, name)
    if found is None:
        raise UserError(f"deployment {name} does not exist: run `pictrain deploy`")
    return found


def deploy(
    platform: Platform,
    project: ProjectFile,
    experiment_name: str | None = None,
    force: bool = False,
) -> list[str]:
    section: DeploymentSection = project.need("deployment")
    model: ModelSection = project.need("model")
    experiment = find_experiment(platform, project, experiment_name)
    version = published_version(platform, model.name, experiment)
    if version is None:
        raise UserError(
            f"experiment {experiment.name} is not published in model {model.name}: "
            "run `pictrain model publish`"
        )
    forced = champion_check(platform, experiment, force, "deploy")
    threshold, chosen_by = _threshold(platform, section, experiment)
    client = platform.client

    def create() -> tuple[Any, bool]:  # retried whole: a retry finds what a lost answer made
        found = platform.find(f"deployment {section.name}", client.get_deployment, section.name)
        if found is not None:
            return found, False
        return version.deploy(name=section.name, min_threshold=threshold), True

    deployment, created = platform.call(f"deploy {version.name}", create)
    if not created:
        current = platform.call("read the deployed version", deployment.get_model_version)
        if current.id != version.id:
            platform.call(f"serve {version.name}", deployment.set_model, version)
        platform.call("set the threshold", deployment.update, min_threshold=threshold)
    state = "created" if created else "up to date"
    return [
        f"deployment {section.name} {state} ({deployment.id}): model {model.name} version "
        f"{version.name}, threshold {threshold} ({chosen_by})",
        *forced,
    ]


def _threshold(
    platform: Platform, section: DeploymentSection, experiment: Any
) -> tuple[float, str]:
    """[deployment] threshold when the file gives one, else the operating point the job chose
    (its TABLE `operating-point`), else ultralytics' default."""
    if section.threshold is not None:
        return section.threshold, "[deployment] threshold"
    table = platform.find("the operating point", experiment.get_log, operating_point.TABLE)
    try:
        return round(operating_point.threshold_of_table(table.data), 4), "its operating point"
    except (AttributeError, KeyError, ValueError, TypeError, IndexError):
        return operating_point.FALLBACK_THRESHOLD, (
            f"experiment {experiment.name} logged no operating point: ultralytics' default; "
            "[deployment] threshold sets one"
        )
