"""The platform context, read once from the container variables (named in pictrain.envvars),
or for the workflow commands from the environment and a `.env` file: one reader for both."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

from pictrain.envvars import PLATFORM
from pictrain.errors import UserError

DEFAULT_HOST = "https://app.picsellia.com"
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
NO_EXPERIMENT = (
    "no experiment: set experiment_id (or experiment_name with project_token or project_name) "
    "with api_token to train on Picsellia, or pass --local DIR"
)


class PicselliaContext(BaseModel):
    """Who we are and which experiment we train. The token never prints (SecretStr)."""

    model_config = ConfigDict(frozen=True)

    api_token: SecretStr
    host: str = DEFAULT_HOST
    organization_id: str | None = None
    organization_name: str | None = None
    experiment_id: str | None = None
    experiment_name: str | None = None
    project_token: str | None = None
    project_name: str | None = None
    job_id: str | None = None

    @property
    def experiment_label(self) -> str:
        """How the experiment was named, for messages."""
        if self.experiment_id:
            return self.experiment_id
        return f"{self.project_token or self.project_name}/{self.experiment_name}"


def read_context(environ: Mapping[str, str]) -> PicselliaContext | None:
    """The platform context, or None when the environment names neither an experiment nor a
    job (a local run). A job without an experiment still gets a context: the run must be marked
    FAILED with the reason, not left pending."""
    values = {field: var.read(environ) for field, var in PLATFORM.items()}
    project = values["project_token"] or values["project_name"]
    by_name = values["experiment_name"] and project
    if not values["experiment_id"] and not by_name and not values["job_id"]:
        return None
    if not values["api_token"]:
        names = " / ".join(PLATFORM["api_token"].names)
        raise UserError(f"an experiment or job is set but no API token: set {names}")
    return PicselliaContext.model_validate({k: v for k, v in values.items() if v})


def read_credentials(environ: Mapping[str, str]) -> PicselliaContext:
    """Who we are, with no experiment: the context of the workflow commands (register, data,
    deploy...). The same names as for a job, so one `.env` serves both."""
    fields = ("api_token", "host", "organization_id", "organization_name")
    values = {field: PLATFORM[field].read(environ) for field in fields}
    if not values["api_token"]:
        names = " / ".join(PLATFORM["api_token"].names)
        raise UserError(f"no API token: set {names} in the environment or in .env")
    return PicselliaContext.model_validate({k: v for k, v in values.items() if v})


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as users keep them (comments, `export`, quotes); read, never sourced."""
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        match = _ENV_LINE.match(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[match.group(1)] = value
    return values
