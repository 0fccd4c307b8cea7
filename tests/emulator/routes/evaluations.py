"""Evaluations (`add_evaluations`) and the metrics job (`compute_evaluations_metrics`).

Each shape is checked like the platform would: the asset must belong to a dataset version
attached to the experiment, the label to that version, coordinates must be ints, scores in [0, 1].
Degenerate shapes are refused (an assumption: a real server computing IoUs may well reject
them): a box with a side under 1 px, a polygon with under 3 distinct points or no area.
Keypoints (assumed, the strict side): one `[x, y, v]` per vertex of the label's skeleton, ints,
v 0, 1 or 2, every point inside the asset's image.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.emulator import views
from tests.emulator.routes.common import check_keypoints, field, lookup
from tests.emulator.routes.experiments import experiment_of
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply
from tests.emulator.state import DatasetVersion, Evaluation, Experiment, MetricsJob

ROUTES = Router()
route = ROUTES.add

SHAPE_KINDS = ("rectangles", "polygons", "classifications", "keypoints", "masks", "lines", "points")
COORDINATES = {"rectangles": ("x", "y", "w", "h")}
SHAPES_FOR = {
    "OBJECT_DETECTION": "rectangles",
    "SEGMENTATION": "polygons",
    "CLASSIFICATION": "classifications",
    "KEYPOINT": "keypoints",
}
MAX_BATCH = 100


def _version_of_asset(req: Request, experiment: Experiment, asset_id: uuid.UUID) -> DatasetVersion:
    found = req.state.find_asset(asset_id)
    if found is None or found[0].id not in experiment.datasets.values():
        raise ApiError(404, f"asset {asset_id} is not in a dataset version of this experiment")
    return found[0]


def _check_shape(
    kind: str, shape: dict[str, Any], version: DatasetVersion, size: tuple[int, int]
) -> None:
    label_id = uuid.UUID(str(field(shape, "label_id")))
    label = version.label(label_id)
    if label is None:
        raise ApiError(400, f"label {label_id} is not a label of {version.dataset_name}")
    score = field(shape, "score", (int, float))
    if not 0 <= score <= 1:
        raise ApiError(400, f"score {score} is not in [0, 1]")
    for name in COORDINATES.get(kind, ()):
        value = field(shape, name, int)
        if isinstance(value, bool):
            raise ApiError(400, f"{kind} {name} must be an int")
    if kind == "rectangles" and min(shape["w"], shape["h"]) < 1:
        raise ApiError(400, f"rectangle of {shape['w']}x{shape['h']} px: a side is under 1 px")
    if kind == "polygons":
        _check_polygon(field(shape, "polygon", list))
    if kind == "keypoints":
        points = field(shape, "keypoints", list)
        check_keypoints(points, label, int)
        width, height = size
        if any(not (0 <= x <= width and 0 <= y <= height) for x, y, _ in points):
            raise ApiError(400, f"keypoints outside the {width}x{height} image", points)


def _check_polygon(points: list[Any]) -> None:
    if not all(isinstance(p, list) and len(p) == 2 for p in points) or not all(
        isinstance(c, int) and not isinstance(c, bool) for p in points for c in p
    ):
        raise ApiError(400, "a polygon is a list of [x, y] integer points")
    if len({tuple(p) for p in points}) < 3:
        raise ApiError(400, f"polygon with under 3 distinct points: {points}")
    pairs = zip(points, points[1:] + points[:1], strict=True)
    if sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in pairs) == 0:
        raise ApiError(400, f"polygon without area: {points}")


def _evaluation(req: Request, experiment: Experiment, item: dict[str, Any]) -> Evaluation:
    asset_id = uuid.UUID(str(field(item, "asset_id")))
    version = _version_of_asset(req, experiment, asset_id)
    data = req.state.datas[req.state.find_asset(asset_id)[1].data_id]
    shapes: dict[str, list[dict[str, Any]]] = {}
    for kind in SHAPE_KINDS:
        if item.get(kind) is None:
            continue
        for shape in field(item, kind, list):
            _check_shape(kind, shape, version, (data.width, data.height))
        shapes[kind] = item[kind]
    return Evaluation(asset_id, shapes, item.get("custom_metrics"))


@route("POST", "/api/experiment/{id}/evaluations")
def add_evaluations(req: Request) -> Reply:
    """REPLACE overwrites an asset's evaluation; KEEP adds the new shapes to the stored ones."""
    experiment = experiment_of(req)
    payload = req.json()
    items = field(payload, "evaluations", list)
    if not 1 <= len(items) <= MAX_BATCH:
        raise ApiError(400, f"between 1 and {MAX_BATCH} evaluations per call, got {len(items)}")
    mode = field(payload, "import_type")
    evaluations = [_evaluation(req, experiment, item) for item in items]
    for new in evaluations:
        old = experiment.evaluations.get(new.asset_id)
        if mode == "KEEP" and old is not None:
            for kind, shapes in new.shapes.items():
                old.shapes[kind] = old.shapes.get(kind, []) + shapes
        else:
            experiment.evaluations[new.asset_id] = new
    return json_reply({}, 202)


@route("GET", "/api/experiment/{id}/evaluations")
def list_evaluations(req: Request) -> Reply:
    evaluations = experiment_of(req).evaluations.values()
    return json_reply(views.page([{"id": e.id, "asset_id": e.asset_id} for e in evaluations]))


@route("POST", "/api/experiment/{id}/evaluate")
def compute_metrics(req: Request) -> Reply:
    """Starts a v1 job; it fails when no stored evaluation has shapes of the inference type."""
    experiment = experiment_of(req)
    payload = req.json()
    inference_type = field(payload, "inference_type")
    kind = SHAPES_FOR.get(inference_type)
    if kind is None:
        raise ApiError(400, f"inference type {inference_type!r} is not emulated")
    usable = any(kind in e.shapes for e in experiment.evaluations.values())
    job = MetricsJob(
        experiment_id=experiment.id,
        inference_type=inference_type,
        evaluation_ids=payload.get("evaluation_ids"),
        outcome="SUCCESS" if usable else "FAILED",
        polls_left=req.state.settings.metrics_job_polls,
    )
    req.state.metrics_jobs[job.id] = job
    return json_reply({"id": job.id, "status": job.status}, 201)


@route("GET", "/api/job/{id}")
def get_metrics_job(req: Request) -> Reply:
    task = req.state.task_jobs.get(req.uuid("id"))
    if task is not None:  # background work of the dataset routes, finished when created
        reason = {"failure_reason": task.reason} if task.reason else {}
        return json_reply({"id": task.id, "status": task.status, **reason})
    job = lookup(req.state.metrics_jobs, req.params["id"], "job")
    if job.status == "RUNNING":
        if job.polls_left > 0:
            job.polls_left -= 1
        else:
            job.status = job.outcome
    return json_reply({"id": job.id, "status": job.status})
