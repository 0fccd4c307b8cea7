"""The model registry, written: models, versions created with their registration (docker image,
flags, base parameters), versions found by name or number, a version's context (its source
experiment). Read from `client.create_model`, `sdk/model.py` and `sdk/model_version.py`.
"""

from __future__ import annotations

from typing import Any

from tests.emulator import views
from tests.emulator.routes.common import field, lookup, refuse_twin
from tests.emulator.routes.models import SETTINGS_KEYS
from tests.emulator.routes.platform import check_org
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply
from tests.emulator.state import Model, ModelVersion

ROUTES = Router()
route = ROUTES.add

# What `ModelVersion.update` / `Model.create_version` accept (the SDK checks the same lists).
VERSION_TYPES = (
    "CLASSIFICATION",
    "OBJECT_DETECTION",
    "SEGMENTATION",
    "LINE",
    "POINT",
    "KEYPOINT",
    "MASK",
)
FRAMEWORKS = ("TENSORFLOW", "PYTORCH", "ONNX", "NOT_CONFIGURED")


def _model(req: Request) -> Model:
    return lookup(req.state.models, req.params["id"], "model")


def _versions_of(req: Request, model: Model) -> list[ModelVersion]:
    return [v for v in req.state.model_versions.values() if v.model_id == model.id]


@route("POST", "/api/organization/{org}/models")
def create_model(req: Request) -> Reply:
    """Model names are unique in the organization (assumed): a second one is a 409."""
    check_org(req)
    payload = req.json()
    name = field(payload, "name")
    if any(m.name == name for m in req.state.models.values()):
        refuse_twin(req.state, f"model {name!r} already exists")
    model = Model(name, description=payload.get("description") or "")
    req.state.models[model.id] = model
    return json_reply(views.model(model), 201)


def _checked(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("type") not in (None, *VERSION_TYPES):
        raise ApiError(400, f"model version type {payload['type']!r} is not supported")
    if payload.get("framework") not in (None, *FRAMEWORKS):
        raise ApiError(400, f"framework {payload['framework']!r} is not supported")
    flags = payload.get("docker_flags")
    if flags is not None and not (
        isinstance(flags, list) and all(isinstance(f, str) for f in flags)
    ):
        raise ApiError(400, f"docker_flags must be a list of strings, got {flags!r}")
    if payload.get("parameters") is not None and not isinstance(payload["parameters"], dict):
        raise ApiError(400, "parameters must be a mapping")
    return payload


@route("POST", "/api/model/{id}/versions")
def create_version(req: Request) -> Reply:
    """The number is the next one; a name is unique within the model (assumed: 409)."""
    model = _model(req)
    payload = _checked(req.json())
    siblings = _versions_of(req, model)
    number = max((v.version for v in siblings), default=-1) + 1
    name = payload.get("name") or f"{model.name}-{number}"
    if any(v.name == name for v in siblings):
        refuse_twin(req.state, f"version {name!r} of {model.name} already exists")
    version = ModelVersion(
        model_id=model.id,
        name=name,
        version=number,
        type=payload.get("type") or "NOT_CONFIGURED",
        framework=payload.get("framework") or "NOT_CONFIGURED",
        labels=payload.get("labels"),
        settings={k: payload[k] for k in SETTINGS_KEYS if k in payload},
    )
    req.state.model_versions[version.id] = version
    return json_reply(views.model_version(req.state, version), 201)


@route("GET", "/api/model/{id}/versions/find")
def find_version(req: Request) -> Reply:
    model = _model(req)
    for version in _versions_of(req, model):
        if version.name == req.arg("name") or str(version.version) == req.arg("version"):
            return json_reply(views.model_version(req.state, version))
    wanted = req.arg("name") or req.arg("version")
    raise ApiError(404, f"version {wanted!r} of {model.name} not found")


@route("GET", "/api/model/{id}/versions")
def list_versions(req: Request) -> Reply:
    """One page, `limit` from `offset`: never more than `settings.page_size`, asked or not
    (SDK: `list_versions` reads the one page the server answers)."""
    versions = sorted(_versions_of(req, _model(req)), key=lambda v: v.version)
    size = req.state.settings.page_size
    limit = min(int(req.arg("limit") or size), size)
    offset = int(req.arg("offset") or 0)
    items = [views.model_version(req.state, v) for v in versions[offset : offset + limit]]
    return json_reply({"items": items, "count": len(versions), "next_cursor": None})


@route("GET", "/api/model/version/{id}/context")
def model_version_context(req: Request) -> Reply:
    """Where the version came from: the experiment it was published from, if any."""
    version = lookup(req.state.model_versions, req.params["id"], "model version")
    parameters: dict[str, Any] = {}
    experiment = req.state.experiments.get(version.experiment_id)  # type: ignore[arg-type]
    if experiment is not None and "parameters" in experiment.logs:
        parameters = dict(experiment.logs["parameters"].data)
    return json_reply(
        {
            "id": version.id,
            "experiment_id": version.experiment_id,
            "datas": [],
            "parameters": parameters,
        }
    )
