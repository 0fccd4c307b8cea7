"""Jobv2: the run the UI shows, its status transitions and its live logging."""

from __future__ import annotations

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


def _view(job: Job) -> Reply:
    return json_reply({"id": job.id, "status": job.status})


@route("GET", "/api/organization/{org}/jobv2s/find")
def find_job(req: Request) -> Reply:
    return _view(lookup(req.state.jobs, req.arg("id"), "job"))


@route("GET", "/api/v2/job/{id}")
def get_job(req: Request) -> Reply:
    return _view(_job(req))


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
    return _view(job)


@route("POST", "/api/v2/job/{id}/logging")
def send_logging(req: Request) -> Reply:
    _job(req).logging.append(logging_line(req.json()))
    return no_content()


@route("POST", "/api/v2/job/{id}/logging/save")
def save_logging(req: Request) -> Reply:
    job = _job(req)
    object_name = field(req.json(), "logging_object_name")
    require_object(req, object_name)
    job.logging_object_name = object_name
    return json_reply({"logging_object_name": object_name})
