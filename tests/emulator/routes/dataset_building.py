"""Building datasets through the SDK: datasets, versions, labels and label groups, data added as
assets, COCO annotations imported (`sdk/dataset.py`, `sdk/dataset_version.py`, `sdk/label.py`).

Annotation import is the SDK's own COCO reader (`services/coco_importer.py`) posting one
`bulk-annotations` call per 100 assets; the emulator checks each shape against the version's
type and labels.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.emulator import views
from tests.emulator.coco import DATASET_TYPES
from tests.emulator.routes.common import check_keypoints, field, lookup, refuse_twin
from tests.emulator.routes.platform import check_org
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply
from tests.emulator.state import (
    Asset,
    Classification,
    Dataset,
    DatasetVersion,
    Keypoints,
    Label,
    LabelGroup,
    Polygon,
    Rectangle,
    Shape,
    TaskJob,
)

ROUTES = Router()
route = ROUTES.add

VERSION_TYPES = ("NOT_CONFIGURED", *DATASET_TYPES)
IMPORT_MODES = ("REPLACE", "KEEP", "CONCATENATE")
# The shape list a version of each type takes (what the SDK's COCO reader fills for that type).
SHAPES_OF_TYPE = {
    "OBJECT_DETECTION": ("rectangles",),
    "SEGMENTATION": ("polygons",),
    "CLASSIFICATION": ("classifications",),
    "KEYPOINT": ("keypoints",),
    "MULTI": ("rectangles", "polygons", "classifications", "keypoints"),
}
SHAPE_LISTS = ("rectangles", "classifications", "polygons", "keypoints", "masks")


def _dataset(req: Request) -> Dataset:
    return lookup(req.state.datasets, req.params["id"], "dataset")


def _version(req: Request) -> DatasetVersion:
    return lookup(req.state.dataset_versions, req.params["id"], "dataset version")


@route("POST", "/api/organization/{org}/datasets")
def create_dataset(req: Request) -> Reply:
    """Names are unique in the organization (the SDK says so): a second one is a 409."""
    check_org(req)
    payload = req.json()
    name = field(payload, "name")
    if not name or any(d.name == name for d in req.state.datasets.values()):
        raise ApiError(409, f"dataset {name!r} already exists")
    dataset = Dataset(name, payload.get("description") or "")
    req.state.datasets[dataset.id] = dataset
    return json_reply(views.dataset(dataset), 201)


@route("GET", "/api/organization/{org}/datasets")
def list_datasets(req: Request) -> Reply:
    check_org(req)
    return json_reply(views.page([views.dataset(d) for d in req.state.datasets.values()]))


@route("GET", "/api/organization/{org}/datasets/find")
def find_dataset(req: Request) -> Reply:
    check_org(req)
    if req.arg("id"):
        return json_reply(views.dataset(lookup(req.state.datasets, req.arg("id"), "dataset")))
    found = next((d for d in req.state.datasets.values() if d.name == req.arg("name")), None)
    if found is None:
        raise ApiError(404, f"dataset {req.arg('name')!r} not found")
    return json_reply(views.dataset(found))


@route("GET", "/api/dataset/{id}")
def get_dataset(req: Request) -> Reply:
    return json_reply(views.dataset(_dataset(req)))


def _versions_of(req: Request, dataset: Dataset) -> list[DatasetVersion]:
    return [v for v in req.state.dataset_versions.values() if v.dataset_id == dataset.id]


def _version_type(value: Any) -> str:
    if value not in VERSION_TYPES:
        raise ApiError(400, f"dataset version type {value!r} is not one of {VERSION_TYPES}")
    return str(value)


@route("POST", "/api/dataset/{id}/versions")
def create_version(req: Request) -> Reply:
    dataset = _dataset(req)
    payload = req.json()
    name = field(payload, "version")
    if any(v.version == name for v in _versions_of(req, dataset)):
        refuse_twin(req.state, f"version {name!r} of {dataset.name} already exists")
    version = DatasetVersion(
        dataset.id,
        dataset.name,
        name,
        _version_type(payload.get("type", "NOT_CONFIGURED")),
        description=payload.get("description") or "",
    )
    req.state.dataset_versions[version.id] = version
    return json_reply(views.dataset_version(version), 201)


@route("GET", "/api/dataset/{id}/versions/find")
def find_version(req: Request) -> Reply:
    dataset = _dataset(req)
    for version in _versions_of(req, dataset):
        if version.version == req.arg("version"):
            return json_reply(views.dataset_version(version))
    raise ApiError(404, f"version {req.arg('version')!r} of {dataset.name} not found")


@route("GET", "/api/dataset/{id}/versions")
def list_versions(req: Request) -> Reply:
    versions = _versions_of(req, _dataset(req))
    return json_reply(views.page([views.dataset_version(v) for v in versions]))


@route("PATCH", "/api/dataset/version/{id}")
def update_version(req: Request) -> Reply:
    """A version holding annotations keeps its type (assumed: its shapes would not fit)."""
    version = _version(req)
    payload = req.json()
    if "type" in payload and payload["type"] != version.type:
        kind = _version_type(payload["type"])
        if any(asset.shapes for asset in version.assets):
            raise ApiError(400, "cannot change the type of a version with annotations")
        version.type = kind
    version.version = payload.get("version", version.version)
    version.description = payload.get("description", version.description)
    return json_reply(views.dataset_version(version))


def _add_label(version: DatasetVersion, name: str) -> Label:
    label = Label(name)
    version.labels.append(label)
    return label


@route("POST", "/api/dataset/version/{id}/labels")
def create_label(req: Request) -> Reply:
    version = _version(req)
    name = field(req.json(), "name")
    if any(label.name == name for label in version.labels):
        refuse_twin(req.state, f"label {name!r} already exists")
    return json_reply(views.label(_add_label(version, name)), 201)


@route("XGET", "/api/dataset/version/{id}/bulk-labels")
def bulk_get_or_create_labels(req: Request) -> Reply:
    version = _version(req)
    labels = []
    for name in field(req.json(), "names", list):
        found = next((label for label in version.labels if label.name == name), None)
        labels.append(found or _add_label(version, str(name)))
    return json_reply([views.label(label) for label in labels])


def _label(req: Request) -> tuple[DatasetVersion, Label]:
    label_id = req.uuid("id")
    for version in req.state.dataset_versions.values():
        found = version.label(label_id)
        if found is not None:
            return version, found
    raise ApiError(404, f"label {label_id} not found")


@route("GET", "/api/label/{id}")
def get_label(req: Request) -> Reply:
    return json_reply(views.label(_label(req)[1]))


@route("PATCH", "/api/label/{id}")
def update_label(req: Request) -> Reply:
    version, label = _label(req)
    payload = req.json()
    if payload.get("group_id") is not None:
        group_id = uuid.UUID(str(payload["group_id"]))
        if not any(g.id == group_id for g in version.label_groups):
            raise ApiError(404, f"label group {group_id} is not in this version")
        label.group_id = group_id
    label.name = payload.get("name", label.name)
    return json_reply(views.label(label))


@route("GET", "/api/label/{id}/skeleton")
def get_skeleton(req: Request) -> Reply:
    label = _label(req)[1]
    if label.skeleton is None:  # assumed: the SDK's docstring promises a skeleton or nothing
        raise ApiError(404, f"label {label.name} has no skeleton")
    return json_reply(label.skeleton)


@route("POST", "/api/label/{id}/skeleton")
def set_skeleton(req: Request) -> Reply:
    """`Label.set_skeleton`: vertex names and edges between them, numbered from 1 (the SDK's
    docstring); anything else is a 400 (assumed)."""
    label = _label(req)[1]
    payload = req.json()
    vertices = field(payload, "vertices", list)
    edges = field(payload, "edges", list)
    if not vertices or not all(isinstance(v, str) for v in vertices):
        raise ApiError(400, "vertices are the skeleton's point names", vertices)
    for edge in edges:
        if not (
            isinstance(edge, list)
            and len(edge) == 2
            and all(type(v) is int and 1 <= v <= len(vertices) for v in edge)
        ):
            raise ApiError(400, f"an edge is two vertex numbers from 1 to {len(vertices)}", edge)
    label.skeleton = {"vertices": vertices, "edges": edges}
    return json_reply({})


@route("GET", "/api/dataset/version/{id}/labels/skeleton")
def get_skeletons(req: Request) -> Reply:
    """`DatasetVersion.get_skeletons`: label id -> skeleton, for the labels that have one."""
    version = _version(req)
    items = {str(label.id): label.skeleton for label in version.labels if label.skeleton}
    return json_reply({"items": items})


@route("GET", "/api/dataset/version/{id}/labelgroups")
def list_label_groups(req: Request) -> Reply:
    return json_reply(views.page([views.label_group(g) for g in _version(req).label_groups]))


@route("POST", "/api/dataset/version/{id}/labelgroups")
def create_label_group(req: Request) -> Reply:
    version = _version(req)
    payload = req.json()
    name = field(payload, "name")
    if any(g.name == name for g in version.label_groups):
        refuse_twin(req.state, f"label group {name!r} already exists")
    parent = payload.get("parent_id")
    group = LabelGroup(name, uuid.UUID(str(parent)) if parent else None)
    version.label_groups.append(group)
    return json_reply(views.label_group(group), 201)


def _label_group(req: Request) -> LabelGroup:
    group_id = req.uuid("id")
    for version in req.state.dataset_versions.values():
        for group in version.label_groups:
            if group.id == group_id:
                return group
    raise ApiError(404, f"label group {group_id} not found")


@route("GET", "/api/label/group/{id}")
def get_label_group(req: Request) -> Reply:
    return json_reply(views.label_group(_label_group(req)))


@route("PATCH", "/api/label/group/{id}")
def update_label_group(req: Request) -> Reply:
    group = _label_group(req)
    payload = req.json()
    group.name = payload.get("name", group.name)
    if payload.get("parent_id") is not None:
        group.parent_id = uuid.UUID(str(payload["parent_id"]))
    return json_reply(views.label_group(group))


@route("POST", "/api/dataset/version/{id}/assets")
def add_data(req: Request) -> Reply:
    """Data become assets; data already in the version are refused (assumed: the platform
    might as well make twins, so a client must only add what is missing)."""
    version = _version(req)
    payload = req.json()
    if payload.get("asset_tag_ids"):
        raise ApiError(400, "asset tags are not emulated")
    data_ids = [uuid.UUID(str(d)) for d in field(payload, "data_ids", list)]
    present = {asset.data_id for asset in version.assets}
    for data_id in data_ids:
        lookup(req.state.datas, data_id, "data")
        if data_id in present:
            refuse_twin(req.state, f"data {data_id} is already in this version")
    failure = req.state.settings.add_data_failure
    if failure is None:
        version.assets.extend(Asset(data_id) for data_id in data_ids)
    job = TaskJob("FAILED", failure) if failure else TaskJob()
    req.state.task_jobs[job.id] = job
    return json_reply({"job": {"id": job.id, "status": job.status}}, 201)


def _shape(kind: str, shape: dict[str, Any], version: DatasetVersion) -> Shape:
    label_id = uuid.UUID(str(field(shape, "label_id")))
    if version.label(label_id) is None:
        raise ApiError(400, f"label {label_id} is not a label of this version")
    if kind == "rectangles":
        x, y, w, h = (field(shape, k, int) for k in ("x", "y", "w", "h"))
        return Rectangle(label_id, x, y, w, h)
    if kind == "polygons":
        points = field(shape, "polygon", list)
        if len(points) < 3 or any(len(p) != 2 for p in points):
            raise ApiError(400, f"a polygon needs 3 or more [x, y] points, got {points}")
        return Polygon(label_id, [[int(x), int(y)] for x, y in points])
    if kind == "keypoints":
        points = field(shape, "keypoints", list)
        check_keypoints(points, version.label(label_id), (int, float))  # as the COCO reader sends
        return Keypoints(label_id, points)
    return Classification(label_id)


@route("POST", "/api/dataset/version/{id}/bulk-annotations")
def bulk_annotations(req: Request) -> Reply:
    """One annotation per asset; REPLACE (the SDK's default) overwrites its shapes, so an
    import run twice holds each shape once. Shapes of another type than the version's are a
    400 (assumed: the platform keeps a version to one kind of shape)."""
    version = _version(req)
    payload = req.json()
    mode = field(payload, "import_type")
    if mode not in IMPORT_MODES:
        raise ApiError(400, f"import_type {mode!r} is not one of {IMPORT_MODES}")
    allowed = SHAPES_OF_TYPE.get(version.type)
    if allowed is None:
        raise ApiError(400, f"annotations cannot be imported into a {version.type} version")
    assets = {str(asset.id): asset for asset in version.assets}
    counts: dict[str, int] = {}
    for item in field(payload, "annotations", list):
        asset = assets.get(str(field(item, "asset_id")))
        if asset is None:
            raise ApiError(404, f"asset {item['asset_id']} is not in this version")
        shapes: list[Shape] = []
        for kind in SHAPE_LISTS:
            given = item.get(kind) or []
            if given and kind not in allowed:
                raise ApiError(400, f"{kind} cannot go into a {version.type} version")
            shapes.extend(_shape(kind, shape, version) for shape in given)
        if mode == "KEEP" and asset.annotated:  # SDK: "KEEP will do nothing on existing"
            continue
        asset.shapes = shapes if mode == "REPLACE" else asset.shapes + shapes
        asset.annotated = True  # the import created its annotation: COCO exports list it now
        asset.annotation_status = payload.get("status") or "PENDING"
        counts[str(uuid.uuid4())] = len(shapes)
    return json_reply(counts)
