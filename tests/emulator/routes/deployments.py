"""Deployments of model versions and their pipelines: feedback loop, continuous training,
continuous deployment (`sdk/model_version.py deploy`, `client.create_deployment`,
`sdk/deployment.py`). The serving and monitoring services are in `serving.py`.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.emulator import views
from tests.emulator.routes.common import field, lookup, refuse_twin
from tests.emulator.routes.platform import check_org
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply, no_content
from tests.emulator.state import ContinuousTraining, Deployment, ModelVersion

ROUTES = Router()
route = ROUTES.add

TRIGGERS = ("FEEDBACK_LOOP", "NONE")
POLICIES = ("DEPLOY_CHAMPION", "DEPLOY_SHADOW", "DEPLOY_MANUAL")
SERVED_FILE = "model-latest"  # what Picsellia's serving loads (notes: "model-latest" .onnx)


def deployment_of(req: Request) -> Deployment:
    return lookup(req.state.deployments, req.params["id"], "deployment")


def served_file(version: ModelVersion) -> str | None:
    """Why the version cannot be served, or None: serving loads `model-latest`, an ONNX file."""
    model_file = version.files.get(SERVED_FILE)
    if model_file is None or not model_file.filename.endswith(".onnx"):
        return f"model version {version.name} has no {SERVED_FILE} .onnx file to serve"
    return None


def _deploy(req: Request, version: ModelVersion, payload: dict[str, Any]) -> Reply:
    """Refused (400) for a version that cannot be served (assumed: the platform may accept it
    and fail at the first prediction; refusing early is the stricter of the two)."""
    problem = served_file(version)
    if problem is None and version.type == "NOT_CONFIGURED":
        problem = f"model version {version.name} has no type"
    if problem:
        raise ApiError(400, problem)
    name = payload.get("name") or f"deployment-{uuid.uuid4().hex[:8]}"
    if any(d.name == name for d in req.state.deployments.values()):
        refuse_twin(req.state, f"deployment {name!r} already exists")
    deployment = Deployment(
        name, version.id, version.type, float(payload.get("min_threshold") or 0.0)
    )
    req.state.deployments[deployment.id] = deployment
    return json_reply(views.deployment(req.state, deployment), 201)


@route("POST", "/api/model/version/{id}/deploy")
def deploy_version(req: Request) -> Reply:
    version = lookup(req.state.model_versions, req.params["id"], "model version")
    return _deploy(req, version, req.json())


@route("POST", "/api/organization/{org}/deployments")
def create_deployment(req: Request) -> Reply:
    check_org(req)
    payload = req.json()
    version = lookup(req.state.model_versions, field(payload, "model_version_id"), "version")
    return _deploy(req, version, payload)


@route("GET", "/api/organization/{org}/deployments/find")
def find_deployment(req: Request) -> Reply:
    check_org(req)
    if req.arg("id"):
        found = lookup(req.state.deployments, req.arg("id"), "deployment")
    else:
        found = next((d for d in req.state.deployments.values() if d.name == req.arg("name")), None)
    if found is None:
        raise ApiError(404, f"deployment {req.arg('name')!r} not found")
    return json_reply(views.deployment(req.state, found))


@route("GET", "/api/organization/{org}/deployments")
def list_deployments(req: Request) -> Reply:
    check_org(req)
    items = [views.deployment(req.state, d) for d in req.state.deployments.values()]
    return json_reply(views.page(items))


@route("GET", "/api/deployment/{id}")
def get_deployment(req: Request) -> Reply:
    return json_reply(views.deployment(req.state, deployment_of(req)))


@route("PATCH", "/api/deployment/{id}")
def update_deployment(req: Request) -> Reply:
    deployment = deployment_of(req)
    payload = req.json()
    threshold = payload.get("min_threshold")
    if threshold is not None:
        if not 0 <= threshold <= 1:
            raise ApiError(400, f"min_threshold {threshold} is not in [0, 1]")
        deployment.min_threshold = float(threshold)
    deployment.name = payload.get("name", deployment.name)
    return json_reply(views.deployment(req.state, deployment))


def _version_to_serve(req: Request, deployment: Deployment) -> ModelVersion:
    version = lookup(req.state.model_versions, field(req.json(), "model_version_id"), "version")
    problem = served_file(version)
    if problem:
        raise ApiError(400, problem)
    if version.type != deployment.type:
        raise ApiError(400, f"a {version.type} version cannot serve a {deployment.type} deployment")
    return version


@route("POST", "/api/deployment/{id}/model")
def set_model(req: Request) -> Reply:
    deployment = deployment_of(req)
    deployment.model_version_id = _version_to_serve(req, deployment).id
    return json_reply(views.deployment(req.state, deployment))


@route("POST", "/api/deployment/{id}/shadow")
def set_shadow_model(req: Request) -> Reply:
    deployment = deployment_of(req)
    deployment.shadow_model_version_id = _version_to_serve(req, deployment).id
    return json_reply(views.deployment(req.state, deployment))


@route("GET", "/api/deployment/{id}/labels")
def list_deployment_labels(req: Request) -> Reply:
    version = req.state.model_versions[deployment_of(req).model_version_id]
    labels = [{"id": uuid.uuid5(version.id, n), "name": n} for n in (version.labels or {}).values()]
    return json_reply(views.page(labels))


# --- feedback loop, continuous training, continuous deployment --------------------------------
# Set-ups are assumed to be refused when repeated (409) and attachments when duplicated (409):
# a client must read or tolerate what is there, never rely on a silent upsert. The training
# and deployment settings themselves are replaced by a new post (they are settings).


@route("POST", "/api/deployment/{id}/pipeline/fl/setup")
def setup_feedback_loop(req: Request) -> Reply:
    deployment = deployment_of(req)
    if deployment.feedback_loop:
        refuse_twin(req.state, "the feedback loop is already set up")
    deployment.feedback_loop = True
    return no_content()


def _version_id(req: Request, payload: dict[str, Any]) -> uuid.UUID:
    return lookup(req.state.dataset_versions, field(payload, "dataset_version_id"), "version").id


@route("POST", "/api/deployment/{id}/fl/datasets")
def attach_feedback_loop_dataset(req: Request) -> Reply:
    deployment = deployment_of(req)
    if not deployment.feedback_loop:
        raise ApiError(400, "set up the feedback loop first")
    version_id = _version_id(req, req.json())
    if version_id in deployment.feedback_loop_datasets:
        refuse_twin(req.state, "this dataset version is already attached to the feedback loop")
    deployment.feedback_loop_datasets.append(version_id)
    return no_content()


@route("GET", "/api/deployment/{id}/fl/datasets")
def list_feedback_loop_datasets(req: Request) -> Reply:
    versions = [req.state.dataset_versions[v] for v in deployment_of(req).feedback_loop_datasets]
    return json_reply(views.page([{"dataset_version": views.dataset_version(v)} for v in versions]))


@route("DELETE", "/api/deployment/{id}/fl/datasets")
def detach_feedback_loop_datasets(req: Request) -> Reply:
    deployment = deployment_of(req)
    ids = {str(i) for i in field(req.json(), "ids", list)}
    deployment.feedback_loop_datasets = [
        v for v in deployment.feedback_loop_datasets if str(v) not in ids
    ]
    return no_content()


@route("POST", "/api/deployment/{id}/pipeline/td/setup")
def set_training_data(req: Request) -> Reply:
    """The version the deployed model trained on, for the monitoring's supervised metrics
    (docs: "Training Data"). A setting: a new post replaces it. A version of another type
    than the deployment is a 400 (assumption)."""
    deployment = deployment_of(req)
    version = lookup(req.state.dataset_versions, field(req.json(), "dataset_version_id"), "version")
    if version.type != deployment.type:
        raise ApiError(
            400,
            f"a {version.type} version cannot be the training data of a "
            f"{deployment.type} deployment",
        )
    deployment.training_data = version.id
    return no_content()


@route("GET", "/api/deployment/{id}/pipeline/td/check")
def check_training_data(req: Request) -> Reply:
    """SDK: `{"status": ...}`; the statuses are unknown (assumption: DONE once set, else a 400)."""
    if deployment_of(req).training_data is None:
        raise ApiError(400, "no training data is set")
    return json_reply({"status": "DONE"})


@route("PUT", "/api/deployment/{id}/pipeline/td/disable")
def disable_training_data(req: Request) -> Reply:
    deployment_of(req).training_data = None
    return no_content()


@route("POST", "/api/deployment/{id}/pipeline/ct")
def setup_continuous_training(req: Request) -> Reply:
    deployment = deployment_of(req)
    payload = req.json()
    project = lookup(req.state.projects, field(payload, "project_id"), "project")
    if field(payload, "training_type") != "EXPERIMENT":
        raise ApiError(400, "only EXPERIMENT continuous training exists")
    parameters = field(payload, "experiment_parameters", dict)
    trigger = payload.get("trigger")
    if trigger not in (None, *TRIGGERS):
        raise ApiError(400, f"trigger {trigger!r} is not one of {TRIGGERS}")
    if trigger == "FEEDBACK_LOOP" and not deployment.feedback_loop:
        raise ApiError(400, "a FEEDBACK_LOOP trigger needs the feedback loop set up first")
    threshold = payload.get("threshold")
    if trigger is not None and (not isinstance(threshold, int) or threshold < 1):
        raise ApiError(400, f"threshold must be a positive int, got {threshold!r}")
    previous = deployment.continuous_training
    deployment.continuous_training = ContinuousTraining(
        project.id,
        parameters,
        trigger,
        threshold,
        datasets=previous.datasets if previous else {},
        experiments=previous.experiments if previous else [],
    )
    return no_content()


def _continuous_training(deployment: Deployment) -> ContinuousTraining:
    if deployment.continuous_training is None:
        raise ApiError(400, "set up continuous training first")
    return deployment.continuous_training


@route("POST", "/api/deployment/{id}/ct/datasets")
def attach_continuous_training_dataset(req: Request) -> Reply:
    training = _continuous_training(deployment_of(req))
    payload = req.json()
    alias = field(payload, "name")
    if alias in training.datasets:
        refuse_twin(req.state, f"alias {alias!r} is already attached to continuous training")
    training.datasets[alias] = _version_id(req, payload)
    return no_content()


@route("DELETE", "/api/deployment/{id}/ct/datasets")
def detach_continuous_training_datasets(req: Request) -> Reply:
    training = _continuous_training(deployment_of(req))
    ids = {str(i) for i in field(req.json(), "ids", list)}
    training.datasets = {a: v for a, v in training.datasets.items() if str(v) not in ids}
    return no_content()


@route("POST", "/api/deployment/{id}/pipeline/cd")
def setup_continuous_deployment(req: Request) -> Reply:
    deployment = deployment_of(req)
    _continuous_training(deployment)
    policy = field(req.json(), "policy")
    if policy not in POLICIES:
        raise ApiError(400, f"policy {policy!r} is not one of {POLICIES}")
    deployment.continuous_deployment = policy
    return no_content()
