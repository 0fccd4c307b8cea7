"""The datalake: data tags, data records of uploaded files, listing by tag query or filename.

Read from the SDK (`sdk/datalake.py`, `services/data_uploader.py`, `services/lister/`): the
upload is generate_object_name -> presigned form POST -> `POST /api/datalake/{id}/datas`; tags
are found by name and created with a POST; listing pages with a cursor (`GET .../datas`, query
`q`) or filters by filename (`XGET .../datas`), always with `upload_statuses` and `types`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.emulator import views
from tests.emulator.routes.common import field, lookup, refuse_twin, require_object
from tests.emulator.routes.platform import check_org
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply, no_content
from tests.emulator.state import Data, State, Tag

ROUTES = Router()
route = ROUTES.add

_FILTERS = ("filenames", "object_names", "ids")
# The two query forms the SDK writes for tags (`utils.convert_tag_list_to_query_language`):
# `tags.name in ("a","b")` (any of) and `tags.name = "a" and tags.name = "b"` (all of).
_ANY_OF = re.compile(r'tags\.name in \(((?:"[^"]*",?)+)\)')
_ONE = re.compile(r'tags\.name = "([^"]*)"')
_QUOTED = re.compile(r'"([^"]*)"')


def _datalake(req: Request) -> None:
    if req.uuid("id") != req.state.datalake.id:
        raise ApiError(404, f"datalake {req.params['id']} not found")


@route("GET", "/api/organization/{org}/datalake")
def get_datalake(req: Request) -> Reply:
    """The default datalake, or the one named or id'd: the emulator holds one."""
    check_org(req)
    lake = req.state.datalake
    if req.arg("id") not in (None, str(lake.id)) or req.arg("name") not in (None, lake.name):
        raise ApiError(404, "datalake not found")
    return json_reply(views.datalake(lake))


@route("GET", "/api/datalake/{id}")
def get_datalake_by_id(req: Request) -> Reply:
    _datalake(req)
    return json_reply(views.datalake(req.state.datalake))


def data_tag(state: State, name: str) -> Tag | None:
    return next(
        (t for t in state.tags.values() if t.target_type == "DATA" and t.name == name), None
    )


@route("GET", "/api/datalake/{id}/tags/find")
def find_tag(req: Request) -> Reply:
    _datalake(req)
    found = data_tag(req.state, str(req.arg("name")))
    if found is None:
        raise ApiError(404, f"data tag {req.arg('name')!r} not found")
    return json_reply(views.tag(found))


@route("GET", "/api/datalake/{id}/tags")
def list_tags(req: Request) -> Reply:
    _datalake(req)
    tags = [t for t in req.state.tags.values() if t.target_type == "DATA"]
    return json_reply(views.page([views.tag(t) for t in tags]))


@route("POST", "/api/datalake/{id}/tags")
def create_tag(req: Request) -> Reply:
    """A tag name is unique per datalake (assumed): a second one is a 409, never a twin."""
    _datalake(req)
    name = field(req.json(), "name")
    if data_tag(req.state, name) is not None:
        refuse_twin(req.state, f"data tag {name!r} already exists")
    tag = Tag(name, "DATA")
    req.state.tags[tag.id] = tag
    return json_reply(views.tag(tag), 201)


def _image_size(state: State, object_name: str) -> tuple[int, int]:
    """The platform reads the size itself when the SDK could not (assumed: from the file)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(state.storage.get(object_name))) as image:
            return image.size
    except OSError as e:
        raise ApiError(400, f"{object_name} is not an image the platform can read") from e


@route("POST", "/api/datalake/{id}/datas")
def create_data(req: Request) -> Reply:
    """The record of an uploaded file: the object must exist, the tags must be data tags.
    Two data may share a file name, as on the platform."""
    _datalake(req)
    payload: dict[str, Any] = req.json()
    object_name = field(payload, "object_name")
    require_object(req, object_name)
    tag_ids = [uuid.UUID(str(t)) for t in payload.get("tags") or []]
    for tag_id in tag_ids:
        tag = req.state.tags.get(tag_id)
        if tag is None or tag.target_type != "DATA":
            raise ApiError(404, f"data tag {tag_id} not found")
    meta = payload.get("meta") or {}
    if "width" in meta and "height" in meta:
        width, height = int(meta["width"]), int(meta["height"])
    else:
        width, height = _image_size(req.state, object_name)
    data = Data(
        filename=field(payload, "filename"),
        object_name=object_name,
        content_type=field(payload, "content_type"),
        width=width,
        height=height,
        tag_ids=tag_ids,
    )
    req.state.datas[data.id] = data
    return json_reply(views.data(req.state, data), 201)


def tag_clauses(query: str) -> list[set[str]]:
    """A tag query as clauses, all of which must hold: each is the tag names of which an item
    carries one. Other query forms are a 400: the emulator must not pretend to understand the
    platform's whole query language."""
    clauses = []
    for clause in query.split(" and "):
        clause = clause.strip()
        any_of, one = _ANY_OF.fullmatch(clause), _ONE.fullmatch(clause)
        if any_of:
            clauses.append(set(_QUOTED.findall(any_of.group(1))))
        elif one:
            clauses.append({one.group(1)})
        else:
            raise ApiError(400, f"query not emulated: {query!r}")
    return clauses


def carries(state: State, tag_ids: list[uuid.UUID], clauses: list[set[str]]) -> bool:
    names = {state.tags[t].name for t in tag_ids}
    return all(clause & names for clause in clauses)


def tag_query(state: State, query: str | None) -> set[uuid.UUID] | None:
    """The data ids a tag query selects (None: no query)."""
    if query is None:
        return None
    clauses = tag_clauses(query)
    return {data.id for data in state.datas.values() if carries(state, data.tag_ids, clauses)}


def _listed(state: State, query: str | None) -> list[Data]:
    wanted = tag_query(state, query)
    return [d for d in state.datas.values() if wanted is None or d.id in wanted]


@route("GET", "/api/datalake/{id}/datas")
def list_datas(req: Request) -> Reply:
    """Cursor paging as for assets: the first page at `offset`, the next ones at `cursor`."""
    _datalake(req)
    datas = _listed(req.state, req.arg("q"))
    limit = min(int(req.arg("limit") or 1000), req.state.settings.page_size)
    cursor = req.arg("cursor")
    start = int(cursor) if cursor else int(req.arg("offset") or 0)
    end = start + limit
    items = [views.data(req.state, d) for d in datas[start:end]]
    next_cursor = str(end) if end < len(datas) else None
    return json_reply({"items": items, "count": len(datas), "next_cursor": next_cursor})


@route("XGET", "/api/datalake/{id}/datas")
def filter_datas(req: Request) -> Reply:
    _datalake(req)
    payload: dict[str, Any] = req.json()
    keys = [key for key in _FILTERS if key in payload]
    if len(keys) != 1:
        raise ApiError(400, f"give exactly one of {_FILTERS}", payload)
    wanted = {str(v) for v in field(payload, keys[0], list)}
    attribute = {"filenames": "filename", "object_names": "object_name", "ids": "id"}[keys[0]]
    found = [
        d for d in _listed(req.state, payload.get("q")) if str(getattr(d, attribute)) in wanted
    ]
    return json_reply(views.page([views.data(req.state, d) for d in found]))


@route("GET", "/api/datalake/{id}/datas/find")
def find_data(req: Request) -> Reply:
    _datalake(req)
    criteria = {k: req.arg(k) for k in ("id", "filename", "object_name") if req.arg(k)}
    found = [
        d
        for d in req.state.datas.values()
        if all(str(getattr(d, k)) == v for k, v in criteria.items())
    ]
    if not criteria or len(found) != 1:
        raise ApiError(404, f"{len(found)} data match {criteria}")
    return json_reply(views.data(req.state, found[0]))


def delete_data(state: State, data: Data) -> None:
    """The data, its assets in every dataset version (SDK: `Data.delete` "and all assets linked
    to this data"), and its stored file: that the platform deletes the file even when another
    data points at it is an **assumption**, the strict side."""
    del state.datas[data.id]
    for version in state.dataset_versions.values():
        version.assets = [a for a in version.assets if a.data_id != data.id]
    state.storage.objects.pop(data.object_name, None)


@route("DELETE", "/api/data/{id}")
def delete_one_data(req: Request) -> Reply:
    delete_data(req.state, data_of(req, req.params["id"]))
    return no_content()


@route("DELETE", "/api/datalake/{id}/datas")
def delete_datas(req: Request) -> Reply:
    _datalake(req)
    found = [data_of(req, data_id) for data_id in field(req.json(), "ids", list)]
    for data in found:
        delete_data(req.state, data)
    return no_content()


def data_of(req: Request, data_id: Any) -> Data:
    return lookup(req.state.datas, data_id, "data")
