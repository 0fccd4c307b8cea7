"""Processings (`client.create_processing`, `get_processing`, `Processing.update`, its inputs)
and their launch on a dataset version (`DatasetVersion.launch_processing`) -> a jobv2 whose
record holds the processing context the job reads (`routes/jobs.py`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.emulator import views
from tests.emulator.routes.common import field, lookup, refuse_twin
from tests.emulator.routes.platform import check_org
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply, no_content
from tests.emulator.state import Job, Processing, ProcessingRun

ROUTES = Router()
route = ROUTES.add

TARGETS = ("DATASET_VERSION", "MODEL_VERSION", "DATALAKE")
TYPES = (
    "PRE_ANNOTATION",
    "DATA_AUGMENTATION",
    "DATASET_VERSION_CREATION",
    "AUTO_TAGGING",
    "AUTO_ANNOTATION",
    "DATA_AUTO_TAGGING",
    "MODEL_COMPRESSION",
    "MODEL_CONVERSION",
)
INPUT_TYPES = ("TEXT", "NUMBER", "DATASET_VERSION", "MODEL_VERSION", "MODEL", "DATALAKE", "DATASET")
UNFINISHED = ("PENDING", "QUEUED", "RUNNING")
UPDATABLE = (
    "docker_image",
    "docker_tag",
    "description",
    "default_parameters",
    "default_cpu",
    "default_gpu",
)


def _processing(req: Request) -> Processing:
    return lookup(req.state.processings, req.params["id"], "processing")


def _choice(value: Any, options: tuple[str, ...], what: str) -> str:
    if value not in options:
        raise ApiError(400, f"{what} {value!r} is not one of {options}")
    return str(value)


@route("POST", "/api/organization/{org}/processings")
def create_processing(req: Request) -> Reply:
    """Names are unique in the organization: a second one is a 409 (assumption)."""
    check_org(req)
    payload = req.json()
    name = field(payload, "name")
    if any(p.name == name for p in req.state.processings.values()):
        refuse_twin(req.state, f"processing {name!r} already exists")
    kind = payload.get("type")
    processing = Processing(
        name=name,
        target=_choice(payload.get("target"), TARGETS, "target"),
        type=None if kind is None else _choice(kind, TYPES, "type"),
        docker_image=field(payload, "docker_image"),
        docker_tag=field(payload, "docker_tag"),
        docker_flags=payload.get("docker_flags"),
        default_parameters=field(payload, "default_parameters", dict),
        default_cpu=field(payload, "default_cpu", int),
        default_gpu=field(payload, "default_gpu", int),
        description=payload.get("description"),
    )
    req.state.processings[processing.id] = processing
    return json_reply(views.processing(processing), 201)


@route("GET", "/api/organization/{org}/processings")
def list_processings(req: Request) -> Reply:
    check_org(req)
    return json_reply(views.page([views.processing(p) for p in req.state.processings.values()]))


@route("GET", "/api/organization/{org}/processings/find")
def find_processing(req: Request) -> Reply:
    check_org(req)
    for processing in req.state.processings.values():
        if processing.name == req.arg("name"):
            return json_reply(views.processing(processing))
    raise ApiError(404, f"processing {req.arg('name')!r} not found")


@route("GET", "/api/processing/{id}")
def get_processing(req: Request) -> Reply:
    return json_reply(views.processing(_processing(req)))


@route("PATCH", "/api/processing/{id}")
def update_processing(req: Request) -> Reply:
    processing = _processing(req)
    payload = req.json()
    unknown = set(payload) - set(UPDATABLE)
    if unknown:
        raise ApiError(400, f"cannot update {sorted(unknown)}")
    for key, value in payload.items():
        setattr(processing, key, value)
    return json_reply(views.processing(processing))


@route("DELETE", "/api/processing/{id}")
def delete_processing(req: Request) -> Reply:
    del req.state.processings[_processing(req).id]
    return no_content()


@route("GET", "/api/processing/{id}/inputs")
def list_inputs(req: Request) -> Reply:
    inputs = _processing(req).inputs
    return json_reply(views.page([{"name": name, **spec} for name, spec in inputs.items()]))


@route("POST", "/api/processing/{id}/inputs")
def add_input(req: Request) -> Reply:
    """A second input of one name is a 409 (assumption)."""
    processing = _processing(req)
    payload = req.json()
    name = field(payload, "name")
    if name in processing.inputs:
        refuse_twin(req.state, f"input {name!r} already exists")
    processing.inputs[name] = {
        "input_type": _choice(payload.get("input_type"), INPUT_TYPES, "input_type"),
        "required": bool(field(payload, "required", bool)),
        "inference_type_constraint": payload.get("inference_type_constraint"),
        "framework_constraint": payload.get("framework_constraint"),
    }
    return json_reply({"name": name, **processing.inputs[name]}, 201)


@route("PUT", "/api/processing/{id}/inputs/{name}")
def update_input(req: Request) -> Reply:
    processing = _processing(req)
    spec = processing.inputs.get(req.params["name"])
    if spec is None:
        raise ApiError(404, f"input {req.params['name']!r} not found")
    payload = req.json()
    spec.update({k: payload[k] for k in payload if k in spec and k != "input_type"})
    return json_reply({"name": req.params["name"], **spec})


@route("DELETE", "/api/processing/{id}/inputs/{name}")
def delete_input(req: Request) -> Reply:
    if _processing(req).inputs.pop(req.params["name"], None) is None:
        raise ApiError(404, f"input {req.params['name']!r} not found")
    return no_content()


def _check_inputs(req: Request, processing: Processing, given: dict[str, Any]) -> None:
    """As the SDK's docstring says ("It will fail if inputs are not matching expected
    inputs"): every required input given, none undeclared; a MODEL_VERSION input names a model
    version meeting the declared constraints (the checks themselves: assumption)."""
    undeclared = sorted(set(given) - set(processing.inputs))
    if undeclared:
        raise ApiError(400, f"undeclared inputs {undeclared}")
    for name, spec in processing.inputs.items():
        if name not in given:
            if spec["required"]:
                raise ApiError(400, f"input {name!r} is required")
            continue
        if spec["input_type"] == "MODEL_VERSION":
            version = lookup(req.state.model_versions, given[name], "model version")
            for key, actual in (
                ("framework_constraint", version.framework),
                ("inference_type_constraint", version.type),
            ):
                if spec.get(key) and spec[key] != actual:
                    raise ApiError(400, f"input {name!r}: {key} {spec[key]}, got {actual}")


@route("POST", "/api/dataset/version/{id}/processing/launch")
def launch_processing(req: Request) -> Reply:
    """A jobv2 holding the processing context. Parameters as sent (none: the processing's
    defaults; that the server does not merge sent ones over the defaults is the strict
    assumption); a second launch of one processing on one version while the first job is
    unfinished is a 409 (assumption). Nothing runs by itself: tests run the image's command
    with `emu.processing_env(job)`."""
    version = lookup(req.state.dataset_versions, req.params["id"], "dataset version")
    payload = req.json()
    processing = lookup(req.state.processings, field(payload, "processing_id"), "processing")
    if processing.target != "DATASET_VERSION":
        raise ApiError(400, f"processing {processing.name} runs on {processing.target}")
    inputs = payload.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ApiError(400, "inputs is an object")
    _check_inputs(req, processing, inputs)
    for job in req.state.jobs.values():
        run = job.processing
        if (
            run is not None
            and (run.processing_id, run.dataset_version_id) == (processing.id, version.id)
            and job.status in UNFINISHED
        ):
            refuse_twin(req.state, f"{processing.name} is already running on this version")
    object_name = None
    if payload.get("asset_ids"):
        known = {str(a.id) for a in version.assets}
        ids = [str(i) for i in payload["asset_ids"]]
        if not set(ids) <= known:
            raise ApiError(400, "some asset ids are not in this version")
        object_name = f"{req.state.organization.id}/processing/{uuid.uuid4().hex}.json"
        req.state.storage.put(object_name, json.dumps({"asset_ids": ids}).encode())
    parameters = payload.get("parameters")
    job = Job(
        processing=ProcessingRun(
            processing_id=processing.id,
            dataset_version_id=version.id,
            parameters=dict(processing.default_parameters if parameters is None else parameters),
            inputs=dict(inputs),
            cpu=payload.get("cpu") or processing.default_cpu,
            gpu=payload.get("gpu") if payload.get("gpu") is not None else processing.default_gpu,
            payload_object_name=object_name,
        )
    )
    req.state.jobs[job.id] = job
    return json_reply({"id": job.id, "status": job.status}, 201)
