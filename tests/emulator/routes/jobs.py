"""Jobv2: the run the UI shows, its status transitions and its live logging."""

from __future__ import annotations

from typing import Any

from tests.emulator.routes.common import field, lookup, require_object
from tests.emulator.routes.experiments import logging_line
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply, no_content
from tests.emulator.state import Job

ROUTES = Router()
route = ROUTES.add

FINAL_STATUSES = ("SUCCEEDED", "FAILED", "KILLED")
TRANSITIONS = {"running": "RUNNING", "succeed": "SUCCEEDED", "fail": "FAILED"}


def _job(req: Request) -> Job:
    return lookup(req.state.jobs, req.params["id"], "job")


def _view(req: Request, job: Job) -> Reply:
    """A processing's job carries its context as Picsellia's cv-engine reads it (since 2026-03:
    `processing_job` with `target_id`, `parameters`, `inputs`, `payload_presigned_url`)."""
    view: dict[str, Any] = {"id": job.id, "status": job.status}
    run = job.processing
    if run is not None:
        payload = run.payload_object_name
        view["type"] = req.state.processings[run.processing_id].type
        view["processing_job"] = {
            "target_id": run.dataset_version_id,
            "parameters": run.parameters,
            "inputs": run.inputs,
            "payload_presigned_url": req.state.storage.download_url(payload) if payload else None,
        }
    return json_reply(view)


@route("GET", "/api/organization/{org}/jobv2s/find")
def find_job(req: Request) -> Reply:
    return _view(req, lookup(req.state.jobs, req.arg("id"), "job"))


@route("GET", "/api/v2/job/{id}")
def get_job(req: Request) -> Reply:
    return _view(req, _job(req))


@route("POST", "/api/v2/job/{id}/running")
@route("POST", "/api/v2/job/{id}/succeed")
@route("POST", "/api/v2/job/{id}/fail")
def transition(req: Request) -> Reply:
    """A finished run stays finished: moving it again is a 400, as an illegal transition."""
    job = _job(req)
    status = TRANSITIONS[req.path.rsplit("/", 1)[1]]
    if job.status in FINAL_STATUSES:
        raise ApiError(400, f"job is {job.status}, it cannot become {status}")
    job.status = status
    job.status_history.append(status)
    return _view(req, job)


@route("POST", "/api/v2/job/{id}/logging")
def send_logging(req: Request) -> Reply:
    """Shapes as Picsellia's log monitor posts them (picsellia-cv-base-docker monitor.py): a
    line (str), a buffer (list, special="buffer") from `line_nb` on, or the exit code
    (special="exit_code"). Other combinations are refused: what the server does with them is
    unknown (assumption: strict)."""
    job = _job(req)
    entry = logging_line(req.json())
    if entry.line_nb < 0:
        raise ApiError(400, f"line_nb {entry.line_nb} < 0")
    if entry.special == "exit_code":
        if not isinstance(entry.log, str) or not entry.log.lstrip("-").isdigit():
            raise ApiError(400, f"exit code {entry.log!r} is no integer")
        job.exit_code = int(entry.log)
    elif entry.special == "buffer":
        if not isinstance(entry.log, list) or not all(isinstance(x, str) for x in entry.log):
            raise ApiError(400, "a buffer is a list of lines")
        for offset, line in enumerate(entry.log):
            job.view[entry.line_nb + offset] = line
            job.parts[entry.line_nb + offset] = entry.part
    elif entry.special is False and isinstance(entry.log, str):
        job.view[entry.line_nb] = entry.log
        job.parts[entry.line_nb] = entry.part
    else:
        raise ApiError(400, f"unexpected log entry: special={entry.special!r}, log={entry.log!r}")
    job.logging.append(entry)
    return no_content()


@route("POST", "/api/v2/job/{id}/logging/save")
def save_logging(req: Request) -> Reply:
    job = _job(req)
    object_name = field(req.json(), "logging_object_name")
    require_object(req, object_name)
    job.logging_object_name = object_name
    return json_reply({"logging_object_name": object_name})
