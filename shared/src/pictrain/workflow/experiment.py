"""`pictrain experiment create`: an experiment on the registered image's model version, with
the dataset versions attached by alias and every parameter set (`launch.py` runs it).

The experiment gets every parameter (the image's defaults, then the file's), not only the
file's: the platform copies a version's base parameters only when none are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain.errors import UserError
from pictrain.platform.base import PARAMETERS_LOG
from pictrain.platform.connect import lookup_experiment
from pictrain.platform.enums import ExperimentStatus, dataset_type_problem
from pictrain.platform.session import Platform
from pictrain.starting import PRETRAINED_ARTIFACT
from pictrain.workflow.project import ExperimentSection, ProjectFile, ProjectSection
from pictrain.workflow.register import Registration, find_version, of_project, resolved_parameters


@dataclass
class ExperimentPlan:
    project: ProjectSection
    section: ExperimentSection
    registration: Registration
    base_version: Any
    datasets: dict[str, Any]  # alias -> dataset version
    parameters: dict[str, Any]
    weights: Path | None


def plan_experiment(platform: Platform, project: ProjectFile) -> ExperimentPlan:
    section: ExperimentSection = project.need("experiment")
    project_section: ProjectSection = project.need("project")
    dataset_name = project.need("dataset").name
    registration = of_project(project)
    parameters = resolved_parameters(registration.config, section.parameters)
    weights = project.path(section.pretrained_weights) if section.pretrained_weights else None
    if weights is not None and not weights.is_file():
        raise UserError(f"[experiment] pretrained_weights {weights} does not exist")
    base_version = find_version(platform, registration)
    dataset = platform.find(f"dataset {dataset_name}", platform.client.get_dataset, dataset_name)
    if dataset is None:
        raise UserError(f"dataset {dataset_name} does not exist: run `pictrain data dataset`")
    datasets = {}
    for alias, name in project.experiment_datasets().items():
        version = platform.find(f"version {name}", dataset.get_version, name)
        if version is None:
            raise UserError(
                f"dataset {dataset_name} has no version {name}: run `pictrain data dataset`"
            )
        problem = dataset_type_problem(registration.config.spec, version.type)
        if problem:
            raise UserError(
                f"dataset version {dataset_name}/{name} is {problem} (image {registration.image})"
            )
        datasets[alias] = version
    plan = ExperimentPlan(
        project_section, section, registration, base_version, datasets, parameters, weights
    )
    _read_existing(platform, plan)
    return plan


def _read_existing(platform: Platform, plan: ExperimentPlan) -> None:
    """An experiment of that name is reused only if it is the same experiment: same image
    version, same versions under the same aliases, and its parameters if it already ran."""
    name = plan.section.name
    experiment = lookup_experiment(
        platform.client, platform.call, project_name=plan.project.name, name=name
    )
    if experiment is None:
        return
    base = platform.find("the base model version", experiment.get_base_model_version)
    if base is None or base.id != plan.base_version.id:
        raise UserError(f"experiment {name} exists on another model version: name a new experiment")
    attached = platform.call("list attached versions", experiment.get_attached_dataset_versions)
    for alias, version in plan.datasets.items():
        if alias in attached and attached[alias].id != version.id:
            raise UserError(
                f"experiment {name} has another version attached as {alias!r}: "
                "name a new experiment"
            )
    if experiment.status != ExperimentStatus.WAITING:
        given = platform.find("parameters", experiment.get_log, PARAMETERS_LOG)
        if given is None or given.data != plan.parameters:
            raise UserError(
                f"experiment {name} already ran ({experiment.status.value}) with other "
                "parameters: name a new experiment"
            )


def create(platform: Platform, plan: ExperimentPlan) -> str:
    client = platform.client
    project, _ = platform.get_or_create(
        f"project {plan.project.name}",
        lambda: client.get_project(plan.project.name),
        lambda: client.create_project(plan.project.name, plan.project.description),
    )
    name = plan.section.name
    experiment, created = platform.get_or_create(
        f"experiment {name}",
        lambda: project.get_experiment(name),
        lambda: project.create_experiment(
            name,
            plan.section.description,
            base_model_version=plan.base_version,
            parameters=plan.parameters,
        ),
    )
    if not created and experiment.status == ExperimentStatus.WAITING:
        platform.call("log the parameters", experiment.log_parameters, plan.parameters)
    for alias, version in plan.datasets.items():
        platform.ensure(
            f"attach {alias}",
            lambda alias=alias: alias in experiment.get_attached_dataset_versions(),
            lambda alias=alias, version=version: experiment.attach_dataset(alias, version),
        )
    if plan.weights is not None:
        stored = platform.find(PRETRAINED_ARTIFACT, experiment.get_artifact, PRETRAINED_ARTIFACT)
        if stored is None:
            platform.call(
                f"store {PRETRAINED_ARTIFACT}",
                experiment.store,
                PRETRAINED_ARTIFACT,
                str(plan.weights),
            )
    aliases = ", ".join(f"{a}={v.version}" for a, v in plan.datasets.items())
    state = "created" if created else "up to date"
    return (
        f"experiment {plan.project.name}/{name} {state} ({experiment.id}) on "
        f"{plan.registration.model_name} {plan.registration.version_name}; {aliases}"
    )


def find_experiment(platform: Platform, project: ProjectFile, name: str | None = None) -> Any:
    """[experiment] name in [project]; or `name` (`--experiment`: a continuous-training
    experiment, say), in [project] or the continuous-training project."""
    project_name = project.need("project").name
    places = [project_name]
    if name is not None and project.continuous_training and project.continuous_training.project:
        places.append(project.continuous_training.project)
    wanted = name or project.need("experiment").name
    for place in places:
        experiment = lookup_experiment(
            platform.client, platform.call, project_name=place, name=wanted
        )
        if experiment is not None:
            return experiment
    if name is not None:
        raise UserError(f"no experiment {wanted} in project {' or '.join(places)}")
    raise UserError(
        f"experiment {project_name}/{wanted} does not exist: run `pictrain experiment create`"
    )
