"""Connecting and finding things: ping, organization, projects, experiments, versions, models."""

from __future__ import annotations

from tests.emulator import views
from tests.emulator.routes.common import lookup
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply

ROUTES = Router()
route = ROUTES.add


def check_org(req: Request) -> None:
    if req.uuid("org") != req.state.organization.id:
        raise ApiError(404, f"organization {req.params['org']} not found")


@route("GET", "/api/home/ping")
def ping(req: Request) -> Reply:
    settings = req.state.settings
    return json_reply(
        {
            "sdk_version": settings.sdk_version,
            "username": settings.username,
            "default_organization": req.state.organization.id,
        }
    )


def _organization(req: Request) -> Reply:
    org = req.state.organization
    return json_reply({"id": org.id, "name": org.name, "default_connector_id": org.connector_id})


@route("GET", "/api/organization/{org}")
def get_organization(req: Request) -> Reply:
    check_org(req)
    return _organization(req)


@route("GET", "/api/organizations/find")
def find_organization(req: Request) -> Reply:
    if req.arg("name") != req.state.organization.name:
        raise ApiError(404, f"organization {req.arg('name')!r} not found")
    return _organization(req)


@route("GET", "/api/organization/{org}/projects/find")
def find_project(req: Request) -> Reply:
    check_org(req)
    projects = req.state.projects
    if req.arg("id"):
        found = lookup(projects, req.arg("id"), "project")
    else:
        found = next((p for p in projects.values() if p.name == req.arg("name")), None)
    if found is None:
        raise ApiError(404, f"project {req.arg('name')!r} not found")
    return json_reply({"id": found.id, "name": found.name})


@route("GET", "/api/project/{id}")
def get_project(req: Request) -> Reply:
    project = lookup(req.state.projects, req.params["id"], "project")
    return json_reply({"id": project.id, "name": project.name})


@route("GET", "/api/project/{id}/experiments/find")
def find_project_experiment(req: Request) -> Reply:
    project = lookup(req.state.projects, req.params["id"], "project")
    for experiment in req.state.experiments.values():
        if experiment.project_id != project.id:
            continue
        if str(experiment.id) == req.arg("id") or experiment.name == req.arg("name"):
            return json_reply(views.experiment(experiment))
    raise ApiError(404, f"experiment {req.arg('name') or req.arg('id')!r} not found")


@route("GET", "/api/organization/{org}/experiments/find")
def find_experiment(req: Request) -> Reply:
    check_org(req)
    return json_reply(views.experiment(lookup(req.state.experiments, req.arg("id"), "experiment")))


@route("GET", "/api/organization/{org}/datasetversions/find")
def find_dataset_version(req: Request) -> Reply:
    check_org(req)
    version = lookup(req.state.dataset_versions, req.arg("id"), "dataset version")
    return json_reply(views.dataset_version(version))


@route("GET", "/api/organization/{org}/modelversions/find")
def find_model_version(req: Request) -> Reply:
    check_org(req)
    version = lookup(req.state.model_versions, req.arg("id"), "model version")
    return json_reply(views.model_version(req.state, version))


@route("GET", "/api/organization/{org}/models/find")
def find_model(req: Request) -> Reply:
    check_org(req)
    if req.arg("id"):
        return json_reply(views.model(lookup(req.state.models, req.arg("id"), "model")))
    found = next((m for m in req.state.models.values() if m.name == req.arg("name")), None)
    if found is None:
        raise ApiError(404, f"model {req.arg('name')!r} not found")
    return json_reply(views.model(found))
