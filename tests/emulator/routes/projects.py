"""Projects, experiments created on a base model version, and launching them on the platform.

From the SDK (`client.create_project`, `project.create_experiment`, `experiment.launch`): the
experiment takes `parameters` when given; with a base model version the platform "will copy the
labelmap and the model files" and the version's parameters when none are given (docstring of
`create_experiment`). Launching returns a jobv2; the platform then runs the base model
version's registered image (Picsellia's own images and pxl-pipeline register it there).
"""

from __future__ import annotations

from typing import Any

from tests.emulator import views
from tests.emulator.routes.common import field, lookup, refuse_twin
from tests.emulator.routes.experiments import experiment_of
from tests.emulator.routes.jobs import FINAL_STATUSES
from tests.emulator.routes.platform import check_org
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply
from tests.emulator.state import (
    Experiment,
    Job,
    Launch,
    Log,
    ModelVersion,
    Project,
    State,
    StoredFile,
)

ROUTES = Router()
route = ROUTES.add


@route("POST", "/api/organization/{org}/projects")
def create_project(req: Request) -> Reply:
    """Project names are unique in the organization (assumed): a second one is a 409."""
    check_org(req)
    payload = req.json()
    name = field(payload, "name")
    if any(p.name == name for p in req.state.projects.values()):
        refuse_twin(req.state, f"project {name!r} already exists")
    project = Project(name, payload.get("description") or "")
    req.state.projects[project.id] = project
    return json_reply(views.project(project), 201)


def create_experiment(
    state: State,
    project: Project,
    name: str,
    base: ModelVersion | None,
    parameters: dict[str, Any] | None,
    description: str = "",
) -> Experiment:
    """An experiment as the platform makes it, from the API or for continuous training."""
    if any(e.name == name and e.project_id == project.id for e in state.experiments.values()):
        refuse_twin(state, f"experiment {name!r} already exists in {project.name}")
    experiment = Experiment(name, project.id, description=description)
    if base is not None:
        experiment.base_model_version_id = base.id
        if parameters is None:
            parameters = base.settings.get("parameters")
        if base.labels:
            experiment.logs["labelmap"] = Log("labelmap", "LABELMAP", dict(base.labels))
        for file in base.files.values() if state.settings.copy_model_files else ():
            experiment.artifacts[file.name] = StoredFile(
                file.name, file.filename, file.object_name, file.large
            )
    if parameters is not None:
        experiment.logs["parameters"] = Log("parameters", "TABLE", dict(parameters))
    state.experiments[experiment.id] = experiment
    return experiment


@route("POST", "/api/project/{id}/experiments")
def create_project_experiment(req: Request) -> Reply:
    project = lookup(req.state.projects, req.params["id"], "project")
    payload = req.json()
    if payload.get("base_experiment_id"):
        raise ApiError(400, "experiments from a base experiment are not emulated")
    base = None
    if payload.get("base_model_version_id"):
        base = lookup(req.state.model_versions, payload["base_model_version_id"], "model version")
    parameters = payload.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise ApiError(400, "parameters must be a mapping")
    experiment = create_experiment(
        req.state,
        project,
        field(payload, "name"),
        base,
        parameters,
        payload.get("description") or "",
    )
    return json_reply(views.experiment(experiment), 201)


def launch(state: State, experiment: Experiment, gpus: int) -> Job:
    """A jobv2 running the base model version's image; refused while one is unfinished."""
    for job in state.jobs.values():
        mine = job.launch is not None and job.launch.experiment_id == experiment.id
        if mine and job.status not in FINAL_STATUSES:
            refuse_twin(state, f"experiment {experiment.name} already has a job {job.status}")
    version = state.model_versions.get(experiment.base_model_version_id)  # type: ignore[arg-type]
    image = version.settings.get("docker_image") if version else None
    if version is None or not image:
        raise ApiError(400, "the experiment's base model version has no docker image to run")
    job = Job(
        launch=Launch(
            experiment_id=experiment.id,
            docker_image=image,
            docker_tag=version.settings.get("docker_tag") or "latest",
            docker_flags=tuple(version.settings.get("docker_flags") or ()),
            gpus=gpus,
        )
    )
    state.jobs[job.id] = job
    return job


@route("POST", "/api/experiment/{id}/launch")
def launch_experiment(req: Request) -> Reply:
    experiment = experiment_of(req)
    gpus = field(req.json(), "gpus", int)
    if isinstance(gpus, bool) or gpus < 1:
        raise ApiError(400, f"gpus must be a positive int, got {gpus!r}")
    job = launch(req.state, experiment, gpus)
    return json_reply({"id": job.id, "status": job.status}, 201)
