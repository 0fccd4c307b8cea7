"""The serving and monitoring services a `Deployment` logs in to (`JwtServiceConnection`):
`POST /api/login` (serving) and `POST /api/auth/login` (monitoring) with the API token and the
deployment id in the body, answering `{jwt, expires}`; then `POST /api/deployments/{id}/predict`
with the image as the multipart field `media` and the JWT as Bearer token (`predict_bytes`).
"""

from __future__ import annotations

import io
import mimetypes
import secrets
import uuid

from tests.emulator import serving
from tests.emulator.multipart import parse_form
from tests.emulator.routes.common import field, lookup
from tests.emulator.routes.deployments import deployment_of, served_file
from tests.emulator.routing import ApiError, Reply, Request, Router, json_reply
from tests.emulator.state import Data, Prediction

ROUTES = Router()
route = ROUTES.add

LOGIN_PATHS = ("/api/login", "/api/auth/login")
SERVICE_PREFIX = "/api/deployments/"  # the only paths a service token opens


@route("POST", "/api/login")
@route("POST", "/api/auth/login")
def login(req: Request) -> Reply:
    payload = req.json()
    if field(payload, "api_token") != req.state.token:
        raise ApiError(401, "invalid API token")
    deployment = lookup(req.state.deployments, field(payload, "deployment_id"), "deployment")
    token = secrets.token_hex(16)
    req.state.service_tokens[token] = deployment.id
    return json_reply({"jwt": token, "expires": 3600})


@route("POST", "/api/deployments/{id}/predict")
def predict(req: Request) -> Reply:
    deployment = deployment_of(req)
    token = req.headers.get("Authorization", "").removeprefix("Bearer ")
    if req.state.service_tokens.get(token) != deployment.id:
        raise ApiError(401, "this token was not issued for this deployment")
    try:
        form = parse_form(req.headers.get("Content-Type", ""), req.body)
    except ValueError as e:
        raise ApiError(400, str(e)) from e
    if "media" not in form:
        raise ApiError(400, "no `media` file in the form")
    version = req.state.model_versions[deployment.model_version_id]
    problem = served_file(version)
    if problem:
        raise ApiError(400, problem)
    model = req.state.storage.get(version.files["model-latest"].object_name)
    try:
        response = serving.predict(
            model,
            form["media"],
            deployment.type,
            len(version.labels or {}),
            deployment.min_threshold,
        )
    except serving.NotServable as e:
        raise ApiError(400, str(e)) from e
    monitor = form.get("monitor", b"True").decode().lower() == "true"
    filename = _filename(req)
    data_id = _monitored_data(req, filename, form["media"]).id if monitor else None
    deployment.predictions.append(Prediction(filename, monitor, response, data_id))
    return json_reply(response)


def _monitored_data(req: Request, filename: str, content: bytes) -> Data:
    """A monitored prediction is a predicted asset, "related to a unique Data" created in the
    datalake (docs: Deployments - Predictions overview): the image is stored as one."""
    from PIL import Image

    with Image.open(io.BytesIO(content)) as image:
        width, height = image.size
    data = Data(
        filename=filename,
        object_name=f"predictions/{uuid.uuid4().hex}/{filename}",
        content_type=mimetypes.guess_type(filename)[0] or "application/octet-stream",
        width=width,
        height=height,
    )
    req.state.storage.put(data.object_name, content)
    req.state.datas[data.id] = data
    return data


def _filename(req: Request) -> str:
    """The `media` part's file name (the multipart parser keeps field names only)."""
    import re

    match = re.search(rb'name="media"; filename="([^"]*)"', req.body)
    return match.group(1).decode() if match else ""
