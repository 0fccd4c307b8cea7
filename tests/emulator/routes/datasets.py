"""Dataset versions: labels, assets (cursor paging and XGET filters), data files, COCO export."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.emulator import coco, views
from tests.emulator.routes.common import field, lookup
from tests.emulator.routes.datalake import carries, tag_clauses
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply, no_content
from tests.emulator.state import Asset, DatasetVersion

ROUTES = Router()
route = ROUTES.add

_FILTERS = ("ids", "filenames", "object_names", "data_ids", "filename_startswith")


def _version(req: Request) -> DatasetVersion:
    return lookup(req.state.dataset_versions, req.params["id"], "dataset version")


@route("GET", "/api/dataset/version/{id}")
def get_version(req: Request) -> Reply:
    return json_reply(views.dataset_version(_version(req)))


@route("GET", "/api/dataset/version/{id}/labels")
def list_labels(req: Request) -> Reply:
    return json_reply(views.page([views.label(label) for label in _version(req).labels]))


@route("GET", "/api/dataset/version/{id}/labels/find")
def find_label(req: Request) -> Reply:
    for label in _version(req).labels:
        if label.name == req.arg("name"):
            return json_reply(views.label(label))
    raise ApiError(404, f"label {req.arg('name')!r} not found")


def _tagged(req: Request, assets: list[Asset], query: str | None) -> list[Asset]:
    """Those an asset tag query selects (`tags.name in (...)`, as the SDK writes it)."""
    if query is None:
        return assets
    clauses = tag_clauses(query)
    return [a for a in assets if carries(req.state, a.tag_ids, clauses)]


@route("GET", "/api/dataset/version/{id}/assets")
def list_assets(req: Request) -> Reply:
    """Cursor paging: the first page starts at `offset`, later ones at the opaque `cursor`."""
    assets = _tagged(req, _version(req).assets, req.arg("q"))
    limit = min(int(req.arg("limit") or 1000), req.state.settings.page_size)
    cursor = req.arg("cursor")
    start = int(cursor) if cursor else int(req.arg("offset") or 0)
    end = start + limit
    items = [views.asset(req.state, a) for a in assets[start:end]]
    next_cursor = str(end) if end < len(assets) else None
    return json_reply({"items": items, "count": len(assets), "next_cursor": next_cursor})


def _matches(req: Request, asset: Asset, key: str, wanted: set[str]) -> bool:
    data = req.state.datas[asset.data_id]
    if key == "filename_startswith":
        return any(data.filename.startswith(prefix) for prefix in wanted)
    value = {
        "ids": asset.id,
        "filenames": data.filename,
        "object_names": data.object_name,
        "data_ids": data.id,
    }[key]
    return str(value) in wanted


@route("XGET", "/api/dataset/version/{id}/assets")
def filter_assets(req: Request) -> Reply:
    payload: dict[str, Any] = req.json()
    keys = [key for key in _FILTERS if key in payload]
    if len(keys) != 1:
        raise ApiError(400, f"give exactly one of {_FILTERS}", payload)
    wanted = {str(v) for v in field(payload, keys[0], list)}
    listed = _tagged(req, _version(req).assets, payload.get("q"))
    found = [a for a in listed if _matches(req, a, keys[0], wanted)]
    return json_reply(views.page([views.asset(req.state, a) for a in found]))


@route("GET", "/api/dataset/version/{id}/assets/find")
def find_asset(req: Request) -> Reply:
    criteria = {
        "id": lambda a: str(a.id),
        "data_id": lambda a: str(a.data_id),
        "filename": lambda a: req.state.datas[a.data_id].filename,
        "object_name": lambda a: req.state.datas[a.data_id].object_name,
    }
    given = {k: req.arg(k) for k in criteria if req.arg(k) is not None}
    found = [a for a in _version(req).assets if all(criteria[k](a) == v for k, v in given.items())]
    if not given or len(found) != 1:
        raise ApiError(404, f"{len(found)} assets match {given}")
    return json_reply(views.asset(req.state, found[0]))


@route("GET", "/api/asset/{id}")
def get_asset(req: Request) -> Reply:
    found = req.state.find_asset(req.uuid("id"))
    if found is None:
        raise ApiError(404, f"asset {req.params['id']} not found")
    return json_reply(views.asset(req.state, found[1]))


@route("GET", "/api/asset/{id}/annotations")
def list_asset_annotations(req: Request) -> Reply:
    """The asset's annotation, when it has one (one per asset here: SDK `Asset.list_annotations`
    parses a list; several workers' annotations are not emulated)."""
    found = req.state.find_asset(req.uuid("id"))
    if found is None:
        raise ApiError(404, f"asset {req.params['id']} not found")
    asset = found[1]
    return json_reply(views.page([views.annotation(asset)] if asset.annotated else []))


@route("DELETE", "/api/asset/{id}")
def delete_asset(req: Request) -> Reply:
    """The asset and its annotation leave the version; the data stays (SDK: `Asset.delete`)."""
    found = req.state.find_asset(req.uuid("id"))
    if found is None:
        raise ApiError(404, f"asset {req.params['id']} not found")
    version, asset = found
    version.assets.remove(asset)
    return no_content()


@route("GET", "/api/data/{id}")
def get_data(req: Request) -> Reply:
    return json_reply(views.data(req.state, lookup(req.state.datas, req.params["id"], "data")))


@route("PATCH", "/api/data/{id}/custom-metadata")
def update_custom_metadata(req: Request) -> Reply:
    """The whole custom metadata replaced by the one sent (SDK `Data.update_custom_metadata`
    sends it whole; that the server does not merge is the strict assumption: a client keeping
    the user's keys must send them)."""
    data = lookup(req.state.datas, req.params["id"], "data")
    value = req.json().get("custom_metadata")
    if value is not None and not isinstance(value, dict):
        raise ApiError(400, "custom_metadata is an object")
    data.custom_metadata = dict(value or {})
    return json_reply({"custom_metadata": data.custom_metadata})


@route("GET", "/api/data/{id}/presigned-url")
def data_presigned_url(req: Request) -> Reply:
    data = lookup(req.state.datas, req.params["id"], "data")
    return json_reply({"presigned_url": req.state.storage.download_url(data.object_name)})


EXPORT_KEYS = ("FILENAME", "OBJECT_NAME", "ASSET_ID", "DATA_ID")


@route("POST", "/api/dataset/version/{id}/annotations/export")
def export_annotations(req: Request) -> Reply:
    """Synchronous, like the SDK expects: the file is stored and its presigned URL returned."""
    version = _version(req)
    payload = req.json()
    if field(payload, "type") != "COCO":
        raise ApiError(400, f"the emulator exports COCO only, not {payload['type']}")
    if payload.get("export_video"):
        raise ApiError(400, "video export is not emulated")
    export_key = payload.get("export_key") or "FILENAME"
    if export_key not in EXPORT_KEYS:
        raise ApiError(400, f"export_key must be one of {EXPORT_KEYS}, not {export_key!r}")
    assets = _export_assets(req, version, payload)
    document = coco.export(req.state, version, export_key, assets)
    object_name = f"{req.state.organization.id}/exports/{uuid.uuid4().hex}/annotations.json"
    req.state.storage.put(object_name, json.dumps(document).encode())
    return json_reply(
        {"object_name": object_name, "presigned_url": req.state.storage.download_url(object_name)}
    )


def _export_assets(req: Request, version: DatasetVersion, payload: dict[str, Any]) -> list[Asset]:
    """The version's assets, or those of `asset_ids` (the SDK sends ids as strings); strict:
    an id of another version and more assets than one call may export are refused."""
    limit = req.state.settings.export_max_assets
    if "asset_ids" not in payload:
        assets = version.assets
    else:
        wanted = [str(v) for v in field(payload, "asset_ids", list)]
        by_id = {str(a.id): a for a in version.assets}
        unknown = [v for v in wanted if v not in by_id]
        if unknown:
            raise ApiError(400, f"{len(unknown)} asset ids are not in this version", unknown[:3])
        assets = [by_id[v] for v in dict.fromkeys(wanted)]
    if len(assets) > limit:
        raise ApiError(400, f"export at most {limit} assets per call, not {len(assets)}")
    return assets
