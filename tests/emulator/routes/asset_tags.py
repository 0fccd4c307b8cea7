"""A dataset version's asset tags (`DatasetVersion.create_asset_tag`, `get_asset_tag`,
`list_asset_tags`) and attaching / detaching a tag (`Taggable.add_tags`, `remove_tags`: POST
`/api/tag/{id}/attach|detach` with the objects' ids). Assets are listed by tag with the query
`tags.name in (...)` (`routes/datasets.py`)."""

from __future__ import annotations

import uuid

from tests.emulator import views
from tests.emulator.routes.common import field, lookup, refuse_twin
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply
from tests.emulator.state import Asset, DatasetVersion, Tag

ROUTES = Router()
route = ROUTES.add

ASSET = "ASSET"


def _version(req: Request) -> DatasetVersion:
    return lookup(req.state.dataset_versions, req.params["id"], "dataset version")


def _tags_of(req: Request, version: DatasetVersion) -> list[Tag]:
    return [t for t in req.state.tags.values() if t.dataset_version_id == version.id]


@route("GET", "/api/dataset/version/{id}/tags")
def list_asset_tags(req: Request) -> Reply:
    return json_reply(views.page([views.tag(t) for t in _tags_of(req, _version(req))]))


@route("GET", "/api/dataset/version/{id}/tags/find")
def find_asset_tag(req: Request) -> Reply:
    for tag in _tags_of(req, _version(req)):
        if tag.name == req.arg("name"):
            return json_reply(views.tag(tag))
    raise ApiError(404, f"asset tag {req.arg('name')!r} not found")


@route("POST", "/api/dataset/version/{id}/tags")
def create_asset_tag(req: Request) -> Reply:
    """Names are unique in the version: a second one is a 409 (assumption; with
    `settings.twins` the twin is made)."""
    version = _version(req)
    name = field(req.json(), "name")
    if not name or '"' in name:
        raise ApiError(400, f"invalid tag name {name!r}")
    if any(t.name == name for t in _tags_of(req, version)):
        refuse_twin(req.state, f"asset tag {name!r} already exists")
    tag = Tag(name, ASSET, version.id)
    req.state.tags[tag.id] = tag
    return json_reply(views.tag(tag), 201)


def _assets(req: Request, tag: Tag) -> list[Asset]:
    """The assets of the payload (a list of ids, SDK `Taggable.ids`), all of the tag's version
    (400 otherwise: an asset tag belongs to its version, SDK `create_asset_tag`)."""
    ids = req.json()
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "the payload is the list of ids to tag")
    if tag.target_type != ASSET:
        raise ApiError(400, f"tag {tag.name} targets {tag.target_type}: not emulated here")
    version = req.state.dataset_versions[tag.dataset_version_id]
    by_id = {str(a.id): a for a in version.assets}
    unknown = [str(i) for i in ids if str(i) not in by_id]
    if unknown:
        raise ApiError(400, f"{len(unknown)} ids are not assets of this tag's version", unknown)
    return [by_id[str(i)] for i in ids]


@route("POST", "/api/tag/{id}/attach")
def attach(req: Request) -> Reply:
    """Attaching a tag an asset carries is a 409 (assumption: the strict side; with
    `settings.twins` the asset carries it twice, as a server that keeps every link)."""
    tag = lookup(req.state.tags, req.params["id"], "tag")
    assets = _assets(req, tag)
    if any(tag.id in a.tag_ids for a in assets):
        refuse_twin(req.state, f"some assets carry {tag.name} already")
    for asset in assets:
        asset.tag_ids.append(tag.id)
    return json_reply({})


@route("POST", "/api/tag/{id}/detach")
def detach(req: Request) -> Reply:
    """Detaching a tag an asset does not carry is a 404 (assumption: the strict side)."""
    tag = lookup(req.state.tags, req.params["id"], "tag")
    assets = _assets(req, tag)
    missing = [str(a.id) for a in assets if tag.id not in a.tag_ids]
    if missing:
        raise ApiError(404, f"{len(missing)} assets do not carry {tag.name}", missing)
    for asset in assets:
        asset.tag_ids = [t for t in asset.tag_ids if t != tag.id]
    return json_reply({})


def tagged(version: DatasetVersion, tag_name: str, tags: dict[uuid.UUID, Tag]) -> list[Asset]:
    """The version's assets carrying its tag `tag_name` (for tests)."""
    ids = {t.id for t in tags.values() if t.dataset_version_id == version.id and t.name == tag_name}
    return [a for a in version.assets if ids & set(a.tag_ids)]
