"""Reaching the platform: a client for the context's organization, and the experiment to train."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from picsellia import Client
from picsellia import exceptions as px

from pictrain.errors import PlatformError, TokenRefused, UserError
from pictrain.platform.env import NO_EXPERIMENT, PicselliaContext
from pictrain.platform.retry import RetryPolicy, exception_chain, is_transient
from pictrain.platform.transport import guarded_session


def connect(context: PicselliaContext, policy: RetryPolicy) -> Client:
    """The SDK's client, retried; a refused token or organization is the user's error. Its
    session sends no POST twice by itself (`transport.py`).

    The client's constructor wraps every failure of its first calls in a plain PicselliaError:
    the cause is found down the exception chain."""

    def client() -> Client:
        return Client(
            api_token=context.api_token.get_secret_value(),
            organization_id=context.organization_id,
            organization_name=context.organization_name,
            host=context.host,
            session=guarded_session(context.host),
        )

    try:
        return policy.call(f"connect to {context.host}", client)
    except Exception as exc:
        if _caused_by(exc, px.UnauthorizedError):
            raise UserError(f"{context.host} refused the API token (expired or revoked?)") from None
        if _caused_by(exc, px.ResourceNotFoundError):
            raise UserError("the organization was not found with this API token") from None
        raise PlatformError(f"cannot connect to {context.host}: {first_line(exc)}") from None


def find_experiment(client: Client, context: PicselliaContext, call: Callable[..., Any]) -> Any:
    """The job's experiment, as its context names it (by id, else by name in the project given
    by token, its id as Picsellia's own images read it, or by name); the job and its supervisor
    both find it here."""
    if not context.experiment_id and not (
        (context.project_token or context.project_name) and context.experiment_name
    ):
        raise UserError(NO_EXPERIMENT)
    experiment = lookup_experiment(
        client,
        call,
        experiment_id=context.experiment_id,
        name=context.experiment_name,
        project_id=context.project_token,
        project_name=context.project_name,
    )
    if experiment is None:
        wanted = context.experiment_label
        raise UserError(f"experiment {wanted} not found in this organization")
    return experiment


def lookup_experiment(
    client: Client,
    call: Callable[..., Any],
    *,
    experiment_id: str | None = None,
    name: str | None = None,
    project_id: str | None = None,
    project_name: str | None = None,
) -> Any | None:
    """The one experiment lookup (the job's and the workflow commands'): by id, else by name in
    the project given by id or by name; None when the project or the experiment does not exist.
    `call` is the caller's retried call."""
    try:
        if experiment_id:
            return call("find the experiment", client.get_experiment_by_id, experiment_id)
        if project_id:
            project = call("find the project", client.get_project_by_id, project_id)
        else:
            project = call(f"find project {project_name}", client.get_project, project_name)
        return call(f"find experiment {name}", project.get_experiment, name)
    except px.ResourceNotFoundError:
        return None


# Answers a caller handles itself (a lookup that finds nothing is not a failure).
EXPECTED: tuple[type[Exception], ...] = (
    px.ResourceNotFoundError,
    px.NoBaseModelVersionError,
    px.NoDataError,
)


def call_platform(
    policy: RetryPolicy,
    what: str,
    fn: Callable[..., Any],
    *args: Any,
    expected: tuple[type[Exception], ...] = EXPECTED,
    **kwargs: Any,
) -> Any:
    """An idempotent call, retried; `expected` answers pass through, a refused token is the
    user's error, anything else the platform answered or kept failing is a PlatformError."""
    try:
        return policy.call(what, fn, *args, **kwargs)
    except (*expected, UserError):
        raise
    except px.UnauthorizedError:
        raise TokenRefused() from None
    except Exception as exc:
        if is_transient(exc) or isinstance(exc, px.PicselliaError):
            raise PlatformError(f"could not {what}: {first_line(exc)}") from None
        raise


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(seen, kind) for seen in exception_chain(exc))
