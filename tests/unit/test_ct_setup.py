"""`pictrain ct setup` against the emulator, on both servers (409, twins): reviews enrich the
train version continuous training reads; a rerun changes nothing; a changed alias is applied,
one attached outside this folder to another version is refused, loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator import Emulator
from tests.unit.workflow_project import edit, one_error_line, pictrain, trained

pytest_plugins = ["tests.emulator.fixtures"]

from pictrain.workflow.ct import CT_FILE  # noqa: E402


@pytest.fixture
def deployed(emulator: Emulator, project: Path, capsys, tmp_path: Path) -> Path:
    trained(emulator, project, capsys, tmp_path)
    for command in (["model", "publish"], ["deploy"]):
        code, output = pictrain(capsys, project, *command)
        assert code == 0, output
    return project


def _versions(emulator: Emulator) -> dict[str, object]:
    return {v.version: v.id for v in emulator.state.dataset_versions.values()}


def test_a_rerun_posts_nothing(emulator: Emulator, deployed: Path, capsys) -> None:
    assert pictrain(capsys, deployed, "ct", "setup")[0] == 0
    before = len(emulator.state.requests)
    code, output = pictrain(capsys, deployed, "ct", "setup")
    assert code == 0, output
    posted = [
        r
        for r in emulator.state.requests[before:]
        if r.method != "GET" and r.path.startswith("/api/deployment/")  # not the logins
    ]
    assert posted == []
    assert "nothing changed since the last `pictrain ct setup`" in output


def test_a_changed_alias_is_applied(emulator: Emulator, deployed: Path, capsys) -> None:
    assert pictrain(capsys, deployed, "ct", "setup")[0] == 0
    edit(
        deployed,
        'datasets = { train = "train", val = "val", test = "test" }',
        'datasets = { train = "train", val = "val", test = "val" }',
    )
    code, output = pictrain(capsys, deployed, "ct", "setup")
    assert code == 0, output
    assert "continuous training: detached test" in output
    assert "continuous training: attached test=val" in output
    (deployment,) = emulator.state.deployments.values()
    versions = _versions(emulator)
    assert deployment.continuous_training.datasets == {
        "train": versions["train"],
        "val": versions["val"],
        "test": versions["val"],
    }
    assert "nothing changed" in pictrain(capsys, deployed, "ct", "setup")[1]


def test_without_a_record_the_same_aliases_converge(
    emulator: Emulator, deployed: Path, capsys
) -> None:
    """Set up from another folder (or by an older pictrain): the record is missing."""
    assert pictrain(capsys, deployed, "ct", "setup")[0] == 0
    deployed.parent.joinpath(CT_FILE).unlink()
    code, output = pictrain(capsys, deployed, "ct", "setup")
    assert code == 0, output
    (deployment,) = emulator.state.deployments.values()
    versions = _versions(emulator)
    assert deployment.continuous_training.datasets == {a: versions[a] for a in versions}


def test_an_alias_attached_elsewhere_to_another_version_is_refused(
    emulator: Emulator, deployed: Path, capsys
) -> None:
    if emulator.state.settings.twins:
        pytest.skip("without a 409 the attach replaces the alias: nothing to refuse")
    client = emulator.client()
    deployment = client.get_deployment("shapes-detector")
    project = client.create_project("elsewhere")
    deployment.setup_feedback_loop()
    deployment.setup_continuous_training(project, experiment_parameters={"epochs": 1})
    dataset = client.get_dataset("shapes")
    deployment.attach_dataset_version_to_continuous_training("train", dataset.get_version("val"))
    code, output = pictrain(capsys, deployed, "ct", "setup")
    assert code == 2
    assert "alias train holding another version than train" in one_error_line(output)


def test_an_old_feedback_version_is_detached(emulator: Emulator, deployed: Path, capsys) -> None:
    """What pictrain's earlier `ct setup` made: reviews went to a version no training read."""
    client = emulator.client()
    deployment = client.get_deployment("shapes-detector")
    feedback = client.get_dataset("shapes").create_version("feedback", type="OBJECT_DETECTION")
    deployment.setup_feedback_loop()
    deployment.attach_dataset_version_to_feedback_loop(feedback)
    code, output = pictrain(capsys, deployed, "ct", "setup")
    assert code == 0, output
    assert "detached version feedback" in output
    (state,) = emulator.state.deployments.values()
    assert state.feedback_loop_datasets == [_versions(emulator)["train"]]


def test_the_old_feedback_version_key_says_what_changed(deployed: Path, capsys) -> None:
    edit(deployed, "threshold = 50", 'threshold = 50\nfeedback_version = "feedback"')
    code, output = pictrain(capsys, deployed, "ct", "setup")
    assert code == 2
    assert "feedback_version is gone: reviewed predictions now enrich the train" in output
