"""The container environment, read once: the names Picsellia sets, plus aliases for humans.

Picsellia starts training images with lower-case variables (`api_token`, `experiment_id`...);
people running an image by hand keep `API_TOKEN`/`PICSELLIA_TOKEN`, `ORGANIZATION_ID`... in a
`.env`. The first name listed wins.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, SecretStr

from pictrain.errors import UserError

DEFAULT_HOST = "https://app.picsellia.com"
NO_EXPERIMENT = (
    "no experiment: set experiment_id (or experiment_name and project_name) with api_token "
    "to train on Picsellia, or pass --local DIR"
)

ENV_NAMES: dict[str, tuple[str, ...]] = {
    "api_token": ("api_token", "PICSELLIA_TOKEN", "API_TOKEN"),
    "host": ("host", "PICSELLIA_HOST"),
    "organization_id": ("organization_id", "ORGANIZATION_ID"),
    "organization_name": ("organization_name", "ORGANIZATION_NAME"),
    "experiment_id": ("experiment_id", "EXPERIMENT_ID"),
    "experiment_name": ("experiment_name", "EXPERIMENT_NAME"),
    "project_name": ("project_name", "PROJECT_NAME"),
    "job_id": ("job_id", "JOB_ID"),
}


class PicselliaContext(BaseModel):
    """Who we are and which experiment we train. The token never prints (SecretStr)."""

    model_config = ConfigDict(frozen=True)

    api_token: SecretStr
    host: str = DEFAULT_HOST
    organization_id: str | None = None
    organization_name: str | None = None
    experiment_id: str | None = None
    experiment_name: str | None = None
    project_name: str | None = None
    job_id: str | None = None


def read_context(environ: Mapping[str, str]) -> PicselliaContext | None:
    """The platform context, or None when the environment names neither an experiment nor a
    job (a local run). A job without an experiment still gets a context: the run must be marked
    FAILED with the reason, not left pending."""
    values = {field: _first(environ, names) for field, names in ENV_NAMES.items()}
    by_name = values["experiment_name"] and values["project_name"]
    if not values["experiment_id"] and not by_name and not values["job_id"]:
        return None
    if not values["api_token"]:
        names = " / ".join(ENV_NAMES["api_token"])
        raise UserError(f"an experiment or job is set but no API token: set {names}")
    return PicselliaContext.model_validate({k: v for k, v in values.items() if v})


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def read_credentials(environ: Mapping[str, str]) -> PicselliaContext:
    """Who we are, with no experiment: the context of the workflow commands (register, data,
    deploy...). The same names as for a job, so one `.env` serves both."""
    fields = ("api_token", "host", "organization_id", "organization_name")
    values = {field: _first(environ, ENV_NAMES[field]) for field in fields}
    if not values["api_token"]:
        names = " / ".join(ENV_NAMES["api_token"])
        raise UserError(f"no API token: set {names} in the environment or in .env")
    return PicselliaContext.model_validate({k: v for k, v in values.items() if v})
