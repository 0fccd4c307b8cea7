"""Model registry: model versions and their files, and publishing an experiment as a model."""

from __future__ import annotations

import fnmatch

from tests.emulator import views
from tests.emulator.routes.common import field, find_by_name, lookup, owned_by_id, refuse_twin
from tests.emulator.routes.experiments import experiment_of, stored_file_from
from tests.emulator.routing import Reply, Request, Router, json_reply, no_content
from tests.emulator.state import Experiment, Model, ModelVersion, StoredFile

ROUTES = Router()
route = ROUTES.add

# `ModelVersion.update` payload keys the emulator keeps verbatim (docker image, parameters...).
SETTINGS_KEYS = (
    "docker_image",
    "docker_tag",
    "docker_flags",
    "docker_env_variables",
    "parameters",
    "description",
    "notebook_link",
    "thumbnail_object_name",
)


def _model_version(req: Request) -> ModelVersion:
    return lookup(req.state.model_versions, req.params["id"], "model version")


@route("GET", "/api/model/version/{id}")
def get_model_version(req: Request) -> Reply:
    return json_reply(views.model_version(req.state, _model_version(req)))


@route("PATCH", "/api/model/version/{id}")
def update_model_version(req: Request) -> Reply:
    version = _model_version(req)
    payload = req.json()
    for key in ("name", "type", "framework", "labels"):
        if key in payload:
            setattr(version, key, payload[key])
    version.settings |= {k: payload[k] for k in SETTINGS_KEYS if k in payload}
    return json_reply(views.model_version(req.state, version))


@route("GET", "/api/model/version/{id}/modelfiles")
def list_model_files(req: Request) -> Reply:
    files = _model_version(req).files.values()
    return json_reply(views.page([views.stored_file(f) for f in files]))


@route("GET", "/api/model/version/{id}/modelfiles/find")
def find_model_file(req: Request) -> Reply:
    return json_reply(views.stored_file(find_by_name(req, _model_version(req).files, "file")))


@route("POST", "/api/model/version/{id}/modelfiles")
def store_model_file(req: Request) -> Reply:
    version = _model_version(req)
    model_file = stored_file_from(req, req.json())
    if model_file.name in version.files:
        refuse_twin(req.state, f"model file {model_file.name!r} already exists")
    version.files[model_file.name] = model_file
    return json_reply(views.stored_file(model_file), 201)


def _model_file_by_id(req: Request) -> tuple[ModelVersion, StoredFile]:
    return owned_by_id(req, req.state.model_versions.values(), lambda v: v.files, "model file")


@route("GET", "/api/model/file/{id}")
def get_model_file(req: Request) -> Reply:
    return json_reply(views.stored_file(_model_file_by_id(req)[1]))


@route("DELETE", "/api/model/file/{id}")
def delete_model_file(req: Request) -> Reply:
    version, model_file = _model_file_by_id(req)
    del version.files[model_file.name]
    return no_content()


@route("GET", "/api/model/{id}")
def get_model(req: Request) -> Reply:
    return json_reply(views.model(lookup(req.state.models, req.params["id"], "model")))


def _publish(req: Request, experiment: Experiment, model: Model) -> Reply:
    """A new version of `model` from the experiment: labelmap log, type, reserved artifacts."""
    siblings = [v.version for v in req.state.model_versions.values() if v.model_id == model.id]
    labelmap = experiment.logs.get("labelmap")
    versions = [req.state.dataset_versions[v] for v in experiment.datasets.values()]
    version = ModelVersion(
        model_id=model.id,
        name=f"{model.name}-{len(siblings)}",
        version=max(siblings, default=-1) + 1,
        type=versions[0].type if versions else "NOT_CONFIGURED",
        labels=labelmap.data if labelmap is not None else None,
        experiment_id=experiment.id,
    )
    for name, artifact in experiment.artifacts.items():
        if any(fnmatch.fnmatchcase(name, p) for p in req.state.settings.published_artifacts):
            version.files[name] = StoredFile(
                name, artifact.filename, artifact.object_name, artifact.large
            )
    req.state.model_versions[version.id] = version
    return json_reply(views.model_version(req.state, version), 201)


@route("POST", "/api/experiment/{id}/publish")
def export_as_model(req: Request) -> Reply:
    experiment = experiment_of(req)
    name = field(req.json(), "name")
    if any(m.name == name for m in req.state.models.values()):
        refuse_twin(req.state, f"model {name!r} already exists")
    model = Model(name)
    req.state.models[model.id] = model
    return _publish(req, experiment, model)


@route("POST", "/api/experiment/{id}/publish/version")
def export_in_existing_model(req: Request) -> Reply:
    experiment = experiment_of(req)
    model = lookup(req.state.models, field(req.json(), "model_id"), "model")
    return _publish(req, experiment, model)
