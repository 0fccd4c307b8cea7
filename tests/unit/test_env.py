"""The container variables: the platform's lower-case names first, aliases for humans."""

from __future__ import annotations

import pytest

from pictrain.errors import UserError
from pictrain.platform.env import DEFAULT_HOST, read_context

TOKEN = "s3cr3t-token-value"


def test_the_platforms_names() -> None:
    context = read_context(
        {
            "api_token": TOKEN,
            "host": "http://127.0.0.1:8080",
            "organization_id": "org-1",
            "experiment_id": "exp-1",
            "job_id": "job-1",
        }
    )
    assert context is not None
    assert context.api_token.get_secret_value() == TOKEN
    assert (context.host, context.organization_id) == ("http://127.0.0.1:8080", "org-1")
    assert (context.experiment_id, context.job_id) == ("exp-1", "job-1")


def test_lower_case_names_win_over_aliases() -> None:
    context = read_context(
        {
            "api_token": TOKEN,
            "PICSELLIA_TOKEN": "other",
            "API_TOKEN": "other",
            "experiment_id": "platform",
            "EXPERIMENT_ID": "human",
        }
    )
    assert context is not None
    assert context.api_token.get_secret_value() == TOKEN
    assert context.experiment_id == "platform"


def test_upper_case_aliases_for_humans() -> None:
    context = read_context(
        {
            "PICSELLIA_TOKEN": TOKEN,
            "PICSELLIA_HOST": "https://eu.picsellia.com",
            "ORGANIZATION_NAME": "acme",
            "EXPERIMENT_NAME": "exp",
            "PROJECT_NAME": "proj",
            "JOB_ID": "job-1",
        }
    )
    assert context is not None
    assert context.api_token.get_secret_value() == TOKEN
    assert context.host == "https://eu.picsellia.com"
    assert (context.organization_name, context.experiment_name) == ("acme", "exp")
    assert (context.project_name, context.job_id) == ("proj", "job-1")


def test_api_token_alias_and_defaults() -> None:
    context = read_context({"API_TOKEN": TOKEN, "EXPERIMENT_ID": "exp-1", "host": "  "})
    assert context is not None
    assert context.api_token.get_secret_value() == TOKEN
    assert context.host == DEFAULT_HOST
    assert context.job_id is None


def test_no_experiment_means_a_local_run() -> None:
    assert read_context({"api_token": TOKEN}) is None
    assert read_context({"experiment_name": "exp"}) is None  # a name needs its project


def test_a_job_without_experiment_is_a_platform_run_to_fail() -> None:
    context = read_context({"api_token": TOKEN, "job_id": "job-1"})
    assert context is not None and context.job_id == "job-1" and context.experiment_id is None


def test_an_experiment_without_token_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="no API token: set api_token / PICSELLIA_TOKEN"):
        read_context({"experiment_id": "exp-1"})


def test_the_token_never_prints() -> None:
    context = read_context({"api_token": TOKEN, "experiment_id": "exp-1"})
    assert context is not None
    for text in (repr(context), str(context), context.model_dump_json()):
        assert TOKEN not in text


def test_an_experiment_by_name_in_a_project_given_by_token() -> None:
    """Picsellia's own images read project_token (the project's id) with experiment_name."""
    context = read_context({"api_token": TOKEN, "experiment_name": "e", "project_token": "p-1"})
    assert context is not None
    assert (context.experiment_name, context.project_token) == ("e", "p-1")
    assert read_context({"api_token": TOKEN, "project_token": "p-1"}) is None
