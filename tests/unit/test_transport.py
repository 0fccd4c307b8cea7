"""The SDK re-sends a POST whose reply was lost (`Connection.post`'s own retry); through
pictrain's connection it does not: the loss reaches pictrain's retry policy, whose calls look
before they act. Real SDK, emulator on loopback, a server that makes twins (no 409)."""

from __future__ import annotations

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from pictrain.platform.connect import connect
from pictrain.platform.env import read_credentials
from pictrain.platform.retry import RetryPolicy
from pictrain.platform.session import Platform
from pictrain.platform.transport import ReplyLost, never_sent
from tests.emulator import Emulator

PROJECTS = "/api/organization/*/projects"
POLICY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)


def pictrain_client(emulator: Emulator) -> object:
    return connect(read_credentials(emulator.user_env()), POLICY)


def test_the_sdk_alone_makes_a_twin_of_a_post_whose_reply_was_lost(emulator: Emulator) -> None:
    """The fact the rest is built on: nothing of ours runs between the two posts."""
    emulator.state.settings.twins = True
    emulator.faults.add("POST", PROJECTS, lose_reply=True)
    emulator.client().create_project("cats")
    assert [p.name for p in emulator.state.projects.values()] == ["cats", "cats"]


def test_through_pictrains_connection_the_loss_is_reported_not_resent(emulator: Emulator) -> None:
    emulator.state.settings.twins = True
    emulator.faults.add("POST", PROJECTS, lose_reply=True)
    client = pictrain_client(emulator)
    with pytest.raises(ReplyLost, match=r"no answer to POST /api/organization/.*/projects"):
        client.create_project("cats")  # type: ignore[attr-defined]
    assert len(emulator.requests("POST", PROJECTS)) == 1
    assert len(emulator.state.projects) == 1  # it landed: only a look can tell


def test_a_create_whose_reply_was_lost_is_found_by_its_retry(emulator: Emulator) -> None:
    emulator.state.settings.twins = True
    emulator.faults.add("POST", PROJECTS, lose_reply=True)
    platform = Platform(pictrain_client(emulator), POLICY)  # type: ignore[arg-type]
    project, created = platform.get_or_create(
        "project cats",
        lambda: platform.client.get_project("cats"),
        lambda: platform.client.create_project("cats"),
    )
    assert created and project.name == "cats"
    assert len(emulator.state.projects) == 1


def test_reads_keep_the_sdks_own_retries(emulator: Emulator) -> None:
    emulator.faults.add("GET", "/api/organization/*/projects/find", drop=True)
    emulator.client().create_project("cats")
    assert pictrain_client(emulator).get_project("cats").name == "cats"  # type: ignore[attr-defined]


def test_what_never_went_out_is_safe_to_send_again() -> None:
    refused = MaxRetryError(None, "/api/x", NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    assert never_sent(requests.ConnectionError(refused))
    assert never_sent(requests.ConnectTimeout("connect timeout"))
    cut = ProtocolError("Connection aborted.", ConnectionResetError())
    assert not never_sent(requests.ConnectionError(cut))
    assert not never_sent(requests.ReadTimeout("read timeout"))
