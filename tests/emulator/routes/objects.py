"""The connector's object-storage API and the presigned endpoints it hands out.

Upload and download helpers in the SDK call `raise_for_status`, so failures here surface as
`requests.HTTPError`, not Picsellia exceptions.
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote

from tests.emulator.multipart import parse_form
from tests.emulator.routes.common import field
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply, no_content

ROUTES = Router()
route = ROUTES.add


def _check_connector(req: Request) -> None:
    if req.uuid("connector") != req.state.organization.connector_id:
        raise ApiError(404, f"connector {req.params['connector']} not found")


@route("POST", "/api/organization/{org}/connector/{connector}/generate_object_name")
def generate_object_name(req: Request) -> Reply:
    _check_connector(req)
    payload = req.json()
    filename = field(payload, "filename")
    kind = field(payload, "type").lower()
    return json_reply({"object_name": f"{kind}/{uuid.uuid4().hex}/{filename}"})


@route("POST", "/api/object-storage/{connector}/generate_presigned_url")
def generate_presigned_url(req: Request) -> Reply:
    _check_connector(req)
    object_name = field(req.json(), "object_name")
    return json_reply(
        {"client_type": "minio", "presigned_url_data": req.state.storage.upload_form(object_name)}
    )


@route("POST", "/api/object-storage/{connector}/init_multipart_upload")
def init_multipart_upload(req: Request) -> Reply:
    _check_connector(req)
    upload_id = req.state.storage.start_multipart(field(req.json(), "object_name"))
    return json_reply({"client_type": "minio", "upload_id": upload_id})


@route("POST", "/api/object-storage/{connector}/generate_part_presigned_url")
def generate_part_presigned_url(req: Request) -> Reply:
    _check_connector(req)
    payload = req.json()
    upload_id = field(payload, "upload_id")
    if upload_id not in req.state.storage.uploads:
        raise ApiError(404, f"multipart upload {upload_id} not found")
    return json_reply(
        {"url": req.state.storage.part_url(upload_id, field(payload, "part_no", int))}
    )


@route("POST", "/api/object-storage/{connector}/complete_part_upload")
def complete_part_upload(req: Request) -> Reply:
    _check_connector(req)
    payload = req.json()
    storage = req.state.storage
    upload = storage.uploads.pop(field(payload, "upload_id"), None)
    if upload is None or upload.object_name != field(payload, "object_name"):
        raise ApiError(404, "multipart upload not found")
    content = []
    for part in sorted(field(payload, "parts", list), key=lambda p: p["PartNumber"]):
        stored = upload.parts.get(part["PartNumber"])
        if stored is None or storage.etag(stored) != part["ETag"]:
            raise ApiError(400, f"part {part['PartNumber']} missing or ETag mismatch")
        content.append(stored)
    storage.put(upload.object_name, b"".join(content))
    return json_reply({"object_name": upload.object_name})


@route("POST", "/api/object-storage/{connector}/retrieve_presigned_url")
def retrieve_presigned_url(req: Request) -> Reply:
    _check_connector(req)
    object_name = field(req.json(), "object_name")
    return json_reply({"presigned_url": req.state.storage.download_url(object_name)})


@route("POST", "/_storage/upload")
def form_upload(req: Request) -> Reply:
    try:
        form = parse_form(req.headers.get("Content-Type", ""), req.body)
    except ValueError as e:
        raise ApiError(400, str(e)) from e
    key = form.get("key", b"").decode()
    signature = form.get("signature", b"").decode()
    if not req.state.storage.verify(key, signature):
        raise ApiError(403, "bad upload signature")
    if "file" not in form:
        raise ApiError(400, "form has no file")
    req.state.storage.put(key, form["file"])
    return no_content()


@route("GET", "/_storage/object/{key:path}")
def download(req: Request) -> Reply:
    object_name = unquote(req.params["key"])
    if not req.state.storage.verify(object_name, req.arg("sig")):
        raise ApiError(403, "bad download signature")
    try:
        content = req.state.storage.get(object_name)
    except KeyError as e:
        raise ApiError(404, f"no object {object_name!r}") from e
    return Reply(200, content, {"Content-Type": "application/octet-stream"})


@route("PUT", "/_storage/part/{upload_id}/{part}")
def upload_part(req: Request) -> Reply:
    upload_id, part = req.params["upload_id"], req.params["part"]
    if not req.state.storage.verify(f"{upload_id}/{part}", req.arg("sig")):
        raise ApiError(403, "bad part signature")
    upload = req.state.storage.uploads.get(upload_id)
    if upload is None:
        raise ApiError(404, f"multipart upload {upload_id} not found")
    upload.parts[int(part)] = req.body
    return Reply(200, b"", {"ETag": req.state.storage.etag(req.body)})
