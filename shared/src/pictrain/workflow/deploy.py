"""`pictrain deploy`: the model version published from the experiment, served under a name with
a score threshold; rerun, it moves the deployment to that version and threshold."""

from __future__ import annotations

from typing import Any

from pictrain.errors import UserError
from pictrain.platform.session import Platform
from pictrain.workflow.experiment import find_experiment
from pictrain.workflow.model import published_version
from pictrain.workflow.project import DeploymentSection, ModelSection, ProjectFile


def find_deployment(platform: Platform, project: ProjectFile) -> Any:
    name = project.need("deployment").name
    found = platform.find(f"deployment {name}", platform.client.get_deployment, name)
    if found is None:
        raise UserError(f"deployment {name} does not exist: run `pictrain deploy`")
    return found


def deploy(platform: Platform, project: ProjectFile) -> str:
    section: DeploymentSection = project.need("deployment")
    model: ModelSection = project.need("model")
    experiment = find_experiment(platform, project)
    version = published_version(platform, model.name, experiment)
    if version is None:
        raise UserError(
            f"experiment {experiment.name} is not published in model {model.name}: "
            "run `pictrain model publish`"
        )
    client = platform.client

    def create() -> tuple[Any, bool]:  # retried whole: a retry finds what a lost answer made
        found = platform.find(f"deployment {section.name}", client.get_deployment, section.name)
        if found is not None:
            return found, False
        return version.deploy(name=section.name, min_threshold=section.threshold), True

    deployment, created = platform.call(f"deploy {version.name}", create)
    if not created:
        current = platform.call("read the deployed version", deployment.get_model_version)
        if current.id != version.id:
            platform.call(f"serve {version.name}", deployment.set_model, version)
        platform.call("set the threshold", deployment.update, min_threshold=section.threshold)
    state = "created" if created else "up to date"
    return (
        f"deployment {section.name} {state} ({deployment.id}): model {model.name} version "
        f"{version.name}, threshold {section.threshold}"
    )
