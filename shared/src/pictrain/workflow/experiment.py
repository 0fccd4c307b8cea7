"""`pictrain experiment create` and `launch`: an experiment on the registered image's model
version, with the dataset versions attached by alias and every parameter set, then run on
Picsellia's GPUs.

The experiment gets every parameter (the image's defaults, then the file's), not only the
file's: the platform copies a version's base parameters only when none are given.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picsellia import exceptions as px
from picsellia.types.enums import ExperimentStatus, JobRunStatus

from pictrain.errors import PlatformError, UserError
from pictrain.platform.base import PARAMETERS_LOG, PRETRAINED_ARTIFACT
from pictrain.platform.connect import first_line
from pictrain.platform.picsellia import dataset_type_problem
from pictrain.platform.retry import is_transient
from pictrain.workflow.project import ExperimentSection, ProjectFile, ProjectSection
from pictrain.workflow.register import Registration, find_version, of_project, resolved_parameters
from pictrain.workflow.session import Platform

LAUNCHES_FILE = Path(".pictrain") / "launches.json"
UNFINISHED = (JobRunStatus.PENDING, JobRunStatus.QUEUED, JobRunStatus.RUNNING)


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
    project_name = plan.project.name
    project = platform.find(f"project {project_name}", platform.client.get_project, project_name)
    name = plan.section.name
    experiment = project and platform.find(f"experiment {name}", project.get_experiment, name)
    if not experiment:
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
    attached = platform.call("list attached versions", experiment.get_attached_dataset_versions)
    for alias, version in plan.datasets.items():
        if alias not in attached:
            with contextlib.suppress(px.ResourceConflictError):  # our own attach, answer lost
                platform.call(f"attach {alias}", experiment.attach_dataset, alias, version)
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


def find_experiment(platform: Platform, project: ProjectFile) -> Any:
    project_name = project.need("project").name
    name = project.need("experiment").name
    found = platform.find(f"project {project_name}", platform.client.get_project, project_name)
    experiment = found and platform.find(f"experiment {name}", found.get_experiment, name)
    if not experiment:
        raise UserError(
            f"experiment {project_name}/{name} does not exist: run `pictrain experiment create`"
        )
    return experiment


def launch(platform: Platform, project: ProjectFile, gpus: int | None) -> str:
    """Once: a running or queued experiment is refused, a finished one is left as it is."""
    gpus = gpus if gpus is not None else project.need("experiment").gpus
    if gpus < 1:
        raise UserError(f"--gpus {gpus}: at least one GPU")
    experiment = find_experiment(platform, project)
    platform.call("read the experiment", experiment.sync)
    if experiment.status == ExperimentStatus.RUNNING:
        raise UserError(f"experiment {experiment.name} is already running")
    if experiment.status == ExperimentStatus.SUCCESS:
        return f"experiment {experiment.name} already trained (SUCCESS): nothing launched"
    launches = project.path(LAUNCHES_FILE)
    known = json.loads(launches.read_text()) if launches.is_file() else {}
    earlier = known.get(str(experiment.id))
    if earlier:
        job = platform.find(f"job {earlier}", platform.client.get_job_by_id, earlier)
        if job is not None and job.status in UNFINISHED:
            raise UserError(
                f"experiment {experiment.name} was already launched: "
                f"job {earlier} is {job.status.value}"
            )
    try:
        job = experiment.launch(gpus=gpus)  # not retried: a lost answer must not launch twice
    except px.ResourceConflictError:
        raise UserError(f"experiment {experiment.name} is already running") from None
    except px.BadRequestError as exc:
        raise UserError(
            f"Picsellia refused to launch {experiment.name}: {first_line(exc)}"
        ) from None
    except Exception as exc:
        if not (is_transient(exc) or isinstance(exc, px.PicselliaError)):
            raise
        raise PlatformError(
            f"could not launch {experiment.name} ({first_line(exc)}); it may have started: "
            "look at the experiment before launching again"
        ) from None
    launches.parent.mkdir(parents=True, exist_ok=True)
    launches.write_text(json.dumps({**known, str(experiment.id): str(job.id)}, indent=1))
    return (
        f"experiment {experiment.name} launched on {gpus} GPU(s): job {job.id} ({job.status.value})"
    )
