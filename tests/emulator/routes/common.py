"""Lookups and payload checks shared by the route modules: missing things are loud 4xx."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from tests.emulator.routing import ApiError, Request
from tests.emulator.state import Label, State

T = TypeVar("T")
Owner = TypeVar("Owner")


def lookup(table: Mapping[uuid.UUID, T], key: uuid.UUID | str | None, kind: str) -> T:
    try:
        found = table.get(uuid.UUID(str(key)))
    except ValueError:
        found = None
    if found is None:
        raise ApiError(404, f"{kind} {key} not found")
    return found


def field(payload: Any, name: str, kind: type | tuple[type, ...] = str) -> Any:
    """A required payload field of the given type, else 400 (the SDK maps it to BadRequest)."""
    if not isinstance(payload, dict) or name not in payload:
        raise ApiError(400, f"missing field {name!r}", payload)
    value = payload[name]
    if not isinstance(value, kind):
        raise ApiError(400, f"field {name!r} has type {type(value).__name__}", payload)
    return value


def require_object(req: Request, object_name: str) -> None:
    """Records may only point at uploaded objects: catches a create-before-upload bug."""
    if object_name not in req.state.storage.objects:
        raise ApiError(400, f"object {object_name!r} was never uploaded")


def find_by_name(req: Request, table: Mapping[str, T], kind: str) -> T:
    name = req.arg("name")
    if name is None or name not in table:
        raise ApiError(404, f"{kind} named {name!r} not found")
    return table[name]


def owned_by_id(
    req: Request, owners: Iterable[Owner], items_of: Callable[[Owner], Mapping[str, T]], kind: str
) -> tuple[Owner, T]:
    """The item whose id is the path's `{id}`, with the owner holding it (logs and artifacts of
    experiments, files of model versions: the SDK addresses them by id alone)."""
    item_id = req.uuid("id")
    for owner in owners:
        for item in items_of(owner).values():
            if item.id == item_id:
                return owner, item
    raise ApiError(404, f"{kind} {item_id} not found")


def refuse_twin(state: State, message: str) -> None:
    """What is created is there already: a 409, the emulator's assumption; with
    `settings.twins` nothing is refused and the handler goes on to make the twin (or, where a
    name holds one thing, to replace it), as a server without that check would."""
    if not state.settings.twins:
        raise ApiError(409, message)


def check_keypoints(points: Any, label: Label, number: type | tuple[type, ...]) -> None:
    """A label's keypoints: one `[x, y, v]` per vertex of its skeleton, x and y of `number`,
    v 0, 1 or 2 (assumed: the platform draws them on the label's skeleton, COCO's flags)."""
    if label.skeleton is None:
        raise ApiError(400, f"label {label.name} has no skeleton: it takes no keypoints")
    vertices = len(label.skeleton["vertices"])
    if not isinstance(points, list) or len(points) != vertices:
        raise ApiError(400, f"label {label.name} takes {vertices} keypoints", points)
    for point in points:
        if not (isinstance(point, list) and len(point) == 3):
            raise ApiError(400, "a keypoint is [x, y, visibility]", point)
        x, y, visibility = point
        if any(isinstance(v, bool) or not isinstance(v, number) for v in (x, y)):
            raise ApiError(400, f"keypoint coordinates must be {number}", point)
        if isinstance(visibility, bool) or visibility not in (0, 1, 2):
            raise ApiError(400, "a keypoint's visibility is 0, 1 or 2", point)
