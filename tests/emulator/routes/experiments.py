"""Experiments: attached datasets, logs, artifacts, experiment logging and job status."""

from __future__ import annotations

from typing import Any

from tests.emulator import views
from tests.emulator.routes.common import (
    field,
    find_by_name,
    lookup,
    owned_by_id,
    refuse_twin,
    require_object,
)
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply, no_content
from tests.emulator.state import Experiment, Log, LoggingLine, StoredFile

ROUTES = Router()
route = ROUTES.add

LOG_TYPES = ("VALUE", "IMAGE", "LINE", "TABLE", "BAR", "HEATMAP", "LABELMAP", "EVALUATION")
# picsellia.types.enums.ExperimentStatus and JobStatus (SDK 6.37): two fields, two enums.
EXPERIMENT_STATUSES = ("RUNNING", "CANCELED", "TERMINATED", "FAILED", "WAITING", "SUCCESS")
JOB_STATUSES = ("RUNNING", "SUCCESS", "TERMINATED", "FAILED")


def experiment_of(req: Request) -> Experiment:
    return lookup(req.state.experiments, req.params["id"], "experiment")


@route("GET", "/api/experiment/{id}")
def get_experiment(req: Request) -> Reply:
    return json_reply(views.experiment(experiment_of(req)))


@route("PATCH", "/api/experiment/{id}")
def update_experiment(req: Request) -> Reply:
    """`experiment.update(status=...)`: the experiment's own status, what Picsellia's base image
    sets at the end of a run."""
    experiment = experiment_of(req)
    payload = req.json()
    if "status" in payload:
        if payload["status"] not in EXPERIMENT_STATUSES:
            raise ApiError(400, f"unknown experiment status {payload['status']!r}")
        experiment.status = payload["status"]
        experiment.status_history.append(payload["status"])
    experiment.name = payload.get("name", experiment.name)
    return json_reply(views.experiment(experiment))


def _attachment(req: Request, alias: str, version_id: Any) -> dict[str, Any]:
    version = lookup(req.state.dataset_versions, version_id, "dataset version")
    return {"name": alias, "dataset_version": views.dataset_version(version)}


@route("GET", "/api/experiment/{id}/datasets")
def list_attached(req: Request) -> Reply:
    datasets = experiment_of(req).datasets
    return json_reply(views.page([_attachment(req, a, v) for a, v in datasets.items()]))


@route("GET", "/api/experiment/{id}/datasets/find")
def find_attached(req: Request) -> Reply:
    version_id = find_by_name(req, experiment_of(req).datasets, "attached dataset")
    return json_reply(_attachment(req, str(req.arg("name")), version_id))


@route("POST", "/api/experiment/{id}/datasets")
def attach_dataset(req: Request) -> Reply:
    experiment = experiment_of(req)
    payload = req.json()
    alias = field(payload, "name")
    if alias in experiment.datasets:
        refuse_twin(req.state, f"alias {alias!r} already attached")
    version = lookup(req.state.dataset_versions, field(payload, "dataset_version_id"), "version")
    experiment.datasets[alias] = version.id
    return json_reply(_attachment(req, alias, version.id), 201)


def _append(log: Log, data: Any) -> None:
    """A LINE log grows by the posted value, or by each value of a posted list."""
    log.data = [*log.data, *data] if isinstance(data, list) else [*log.data, data]


@route("POST", "/api/experiment/{id}/logs")
def post_log(req: Request) -> Reply:
    """LINE logs append to the stored series; every other type replaces the stored log."""
    experiment = experiment_of(req)
    payload = req.json()
    name, kind, data = field(payload, "name"), field(payload, "type"), payload.get("data")
    if kind not in LOG_TYPES:
        raise ApiError(400, f"unknown log type {kind!r}")
    if kind == "IMAGE":
        require_object(req, field(data, "object_name"))
    existing = experiment.logs.get(name)
    if existing is not None and req.arg("raise_on_conflict") == "True":
        raise ApiError(409, f"log {name!r} already exists")
    if existing is not None and existing.type == kind == "LINE":
        _append(existing, data)
        return json_reply(views.log(existing))
    created = Log(name, kind, data if kind != "LINE" or isinstance(data, list) else [data])
    experiment.logs[name] = created
    return json_reply(views.log(created), 201)


@route("GET", "/api/experiment/{id}/logs/find")
def find_log(req: Request) -> Reply:
    return json_reply(views.log(find_by_name(req, experiment_of(req).logs, "log")))


@route("GET", "/api/experiment/{id}/logs/extended")
def list_logs(req: Request) -> Reply:
    return json_reply(views.page([views.log(log) for log in experiment_of(req).logs.values()]))


@route("GET", "/api/experiment/{id}/logs/ids")
def list_log_ids(req: Request) -> Reply:
    return json_reply([log.id for log in experiment_of(req).logs.values()])


@route("DELETE", "/api/experiment/{id}/logs")
def delete_logs(req: Request) -> Reply:
    experiment = experiment_of(req)
    ids = {str(i) for i in field(req.json(), "ids", list)}
    experiment.logs = {n: log for n, log in experiment.logs.items() if str(log.id) not in ids}
    return no_content()


def _log_by_id(req: Request) -> tuple[Experiment, Log]:
    return owned_by_id(req, req.state.experiments.values(), lambda e: e.logs, "log")


@route("GET", "/api/log/{id}")
def get_log(req: Request) -> Reply:
    return json_reply(views.log(_log_by_id(req)[1]))


@route("PATCH", "/api/log/{id}")
def update_log(req: Request) -> Reply:
    experiment, log = _log_by_id(req)
    payload = req.json()
    if "data" in payload:
        log.data = payload["data"]
    if "name" in payload:
        experiment.logs[payload["name"]] = experiment.logs.pop(log.name)
        log.name = payload["name"]
    return json_reply(views.log(log))


@route("DELETE", "/api/log/{id}")
def delete_log(req: Request) -> Reply:
    experiment, log = _log_by_id(req)
    del experiment.logs[log.name]
    return no_content()


@route("POST", "/api/log/{id}/append")
def append_log(req: Request) -> Reply:
    _, log = _log_by_id(req)
    if log.type != "LINE":
        raise ApiError(400, "only LINE logs can be appended to")
    _append(log, req.json().get("data"))
    return json_reply(views.log(log))


@route("GET", "/api/experiment/{id}/artifacts")
def list_artifacts(req: Request) -> Reply:
    artifacts = experiment_of(req).artifacts.values()
    return json_reply(views.page([views.stored_file(a) for a in artifacts]))


@route("GET", "/api/experiment/{id}/artifacts/find")
def find_artifact(req: Request) -> Reply:
    return json_reply(
        views.stored_file(find_by_name(req, experiment_of(req).artifacts, "artifact"))
    )


def stored_file_from(req: Request, payload: dict[str, Any]) -> StoredFile:
    object_name = field(payload, "object_name")
    require_object(req, object_name)
    return StoredFile(
        name=field(payload, "name"),
        filename=field(payload, "filename"),
        object_name=object_name,
        large=bool(payload.get("large", False)),
    )


@route("POST", "/api/experiment/{id}/artifacts")
def create_artifact(req: Request) -> Reply:
    experiment = experiment_of(req)
    artifact = stored_file_from(req, req.json())
    if artifact.name in experiment.artifacts:
        refuse_twin(req.state, f"artifact {artifact.name!r} already exists")
    experiment.artifacts[artifact.name] = artifact
    return json_reply(views.stored_file(artifact), 201)


def _artifact_by_id(req: Request) -> tuple[Experiment, StoredFile]:
    return owned_by_id(req, req.state.experiments.values(), lambda e: e.artifacts, "artifact")


@route("GET", "/api/artifact/{id}")
def get_artifact(req: Request) -> Reply:
    return json_reply(views.stored_file(_artifact_by_id(req)[1]))


@route("PATCH", "/api/artifact/{id}")
def update_artifact(req: Request) -> Reply:
    experiment, artifact = _artifact_by_id(req)
    payload = req.json()
    if "object_name" in payload:
        require_object(req, payload["object_name"])
    del experiment.artifacts[artifact.name]
    for key in ("name", "filename", "object_name", "large"):
        if key in payload:
            setattr(artifact, key, payload[key])
    experiment.artifacts[artifact.name] = artifact
    return json_reply(views.stored_file(artifact))


@route("DELETE", "/api/artifact/{id}")
def delete_artifact(req: Request) -> Reply:
    experiment, artifact = _artifact_by_id(req)
    del experiment.artifacts[artifact.name]
    return no_content()


def logging_line(payload: dict[str, Any]) -> LoggingLine:
    return LoggingLine(
        line_nb=field(payload, "line_nb", int),
        log=field(payload, "log", (str, list)),
        part=field(payload, "part"),
        final=bool(payload.get("final", False)),
        special=payload.get("special", False),
    )


@route("POST", "/api/experiment/{id}/logging")
def experiment_logging(req: Request) -> Reply:
    experiment_of(req).logging.append(logging_line(req.json()))
    return no_content()


def _logging_file(req: Request, experiment: Experiment) -> Reply:
    if experiment.logging_object_name is None:
        raise ApiError(404, "no logging file stored")
    return json_reply({"id": experiment.id, "object_name": experiment.logging_object_name})


@route("POST", "/api/experiment/{id}/logging/save")
def save_experiment_logging(req: Request) -> Reply:
    experiment = experiment_of(req)
    object_name = field(req.json(), "object_name")
    require_object(req, object_name)
    experiment.logging_object_name = object_name
    return _logging_file(req, experiment)


@route("GET", "/api/experiment/{id}/logging")
def get_experiment_logging(req: Request) -> Reply:
    return _logging_file(req, experiment_of(req))


@route("PATCH", "/api/experiment/{id}/job/status")
def update_job_status(req: Request) -> Reply:
    """`update_job_status`: the older per-experiment job status, a field of its own (assumed:
    whether the server derives the experiment status from it is unknown, so it does not here)."""
    experiment = experiment_of(req)
    status = field(req.json(), "status")
    if status not in JOB_STATUSES:
        raise ApiError(400, f"unknown job status {status!r}")
    experiment.job_status = status
    experiment.job_status_history.append(status)
    return no_content()
