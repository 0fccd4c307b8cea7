"""Reaching the platform: a client for the context's organization, and the experiment to train."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from picsellia import Client
from picsellia import exceptions as px

from pictrain.errors import PlatformError, TokenRefused, UserError
from pictrain.platform.env import NO_EXPERIMENT, PicselliaContext
from pictrain.platform.retry import RetryPolicy, exception_chain, is_transient


def connect(context: PicselliaContext, policy: RetryPolicy) -> Client:
    """The SDK's client, retried; a refused token or organization is the user's error.

    The client's constructor wraps every failure of its first calls in a plain PicselliaError:
    the cause is found down the exception chain."""

    def client() -> Client:
        return Client(
            api_token=context.api_token.get_secret_value(),
            organization_id=context.organization_id,
            organization_name=context.organization_name,
            host=context.host,
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
    """By id, else by name in the project given by token (its id, as Picsellia's own images
    read it) or by name. The job and its supervisor both find it here; `call` is the caller's
    retried call."""
    project_ref = context.project_token or context.project_name
    if not context.experiment_id and not (project_ref and context.experiment_name):
        raise UserError(NO_EXPERIMENT)
    try:
        if context.experiment_id:
            return call("find the experiment", client.get_experiment_by_id, context.experiment_id)
        if context.project_token:
            project = call("find the project", client.get_project_by_id, context.project_token)
        else:
            project = call("find the project", client.get_project, context.project_name)
        return call("find the experiment", project.get_experiment, context.experiment_name)
    except px.ResourceNotFoundError:
        wanted = context.experiment_label
        raise UserError(f"experiment {wanted} not found in this organization") from None


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
