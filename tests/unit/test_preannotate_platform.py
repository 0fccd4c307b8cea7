"""The pre-annotation processing against the emulator, with the real SDK: registered and
launched by the commands a user runs, the job run as the platform runs it. A version half
labelled by a human is filled, the human's half untouched, a rerun changes nothing (on a server
that refuses twins and on one that makes them, and under lost replies); bad labels and
unreadable assets are counted; bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pictrain.synthetic import POSE_EDGES, POSE_POINTS, make_obb_dataset, make_pose_dataset
from tests.emulator import Emulator
from tests.emulator.emulator import loopback_env
from tests.emulator.state import Keypoints, Polygon, Rectangle
from tests.unit.preannotate_setup import (
    BROKEN,
    PREANNOTATED,
    detect_model,
    obb_model,
    pose_model,
    setup,
    writes,
)

PREDICTED = {"circle"}  # the stub's kept predictions the version can hold (bogus it lacks)


@pytest.fixture(params=[False, True], ids=["409", "twins"])
def server(emulator: Emulator, request: pytest.FixtureRequest) -> Emulator:
    emulator.state.settings.twins = request.param
    return emulator


def _labels_of(emulator: Emulator, version, asset) -> set[str]:
    return {version.label(shape.label_id).name for shape in asset.shapes}


def test_fills_the_unlabelled_half_leaves_the_human_half_and_a_rerun_changes_nothing(
    server: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = setup(server, tmp_path, monkeypatch)
    state = server.state
    human = {a.id: repr(a.shapes) for a in run.version.assets if a.annotated}
    assert len(human) == 4
    job = run.launch(capsys)

    code, output = run.run_job(job, capsys, caplog)
    assert code == 0, output
    version = run.version
    for asset in version.assets:
        name = state.datas[asset.data_id].filename
        if asset.id in human:
            assert repr(asset.shapes) == human[asset.id], name  # the human's, as they were
        elif name == BROKEN:
            assert not asset.annotated
        else:
            assert asset.annotated and _labels_of(server, version, asset) == PREDICTED, name
    assert len(run.tagged(PREANNOTATED)) == 4
    assert re.search(r"4 predictions dropped, their label not in the version: bogus \(4\)", output)
    assert re.search(rf"1 assets unreadable, e.g. {BROKEN}", output)
    assert "4 pre-annotated now" in output and "4 annotated by a human" in output
    picked = run.tagged("to-label")
    assert len(picked) == 2 and not set(picked) & {"000001.jpg", "000002.jpg"}
    scored = [a for a in version.assets if state.datas[a.data_id].custom_metadata]
    assert len(scored) == 4  # every readable asset no human labelled
    assert all(0 <= state.datas[a.data_id].custom_metadata["to_label_score"] <= 1 for a in scored)
    assert {r.status for r in state.requests if r.path.endswith("/bulk-annotations")} == {200}

    before, since = run.snapshot(), len(state.requests)
    code, output = run.run_job(job, capsys, caplog)
    assert code == 0, output
    assert run.snapshot() == before
    assert writes(server, since) == []
    assert "0 pre-annotated now" in output and "4 pre-annotated by an earlier run" in output


def test_lost_replies_write_nothing_twice(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On a server that makes twins, every write's reply lost once: each is looked for before
    it is sent again (the SDK itself no longer re-sends a POST)."""
    emulator.state.settings.twins = True
    run = setup(emulator, tmp_path, monkeypatch, parameters="to_label = 2, batch_size = 3")
    job = run.launch(capsys)
    for path in (
        "/api/dataset/version/*/bulk-annotations",
        "/api/tag/*/attach",
        "/api/dataset/version/*/tags",
    ):
        emulator.faults.add("POST", path, lose_reply=True, times=2)

    code, output = run.run_job(job, capsys, caplog)

    assert code == 0, output
    assert all(f.fired == f.times for f in emulator.faults.rules)  # every fault fired
    state = emulator.state
    preannotated = set(run.tagged(PREANNOTATED))
    assert len(preannotated) == 4
    for asset in run.version.assets:
        name = state.datas[asset.data_id].filename
        assert len(asset.tag_ids) == len(set(asset.tag_ids)), name
        if name in preannotated:
            assert len(asset.shapes) == 1, name
    names = [t.name for t in state.tags.values() if t.dataset_version_id == run.version_id]
    assert sorted(names) == [PREANNOTATED, "to-label"]


def test_replace_annotations_replaces_the_humans_once(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = setup(emulator, tmp_path, monkeypatch, parameters="replace_annotations = true")
    job = run.launch(capsys)
    code, output = run.run_job(job, capsys, caplog)
    assert code == 0, output
    readable = [a for a in run.version.assets if emulator.state.datas[a.data_id].filename != BROKEN]
    assert all(_labels_of(emulator, run.version, a) == PREDICTED for a in readable)
    assert "4 of them replacing a human's" in output
    assert len(run.tagged(PREANNOTATED)) == 8

    before, since = run.snapshot(), len(emulator.state.requests)
    code, output = run.run_job(job, capsys, caplog)
    assert code == 0 and run.snapshot() == before and writes(emulator, since) == []


def test_labels_are_created_only_when_told(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = setup(emulator, tmp_path, monkeypatch, parameters='label_matching_strategy = "add"')
    job = run.launch(capsys)
    code, output = run.run_job(job, capsys, caplog)
    assert code == 0, output
    assert [label.name for label in run.version.labels][-1] == "bogus"
    preannotated = set(run.tagged(PREANNOTATED))
    state = emulator.state
    new = [a for a in run.version.assets if state.datas[a.data_id].filename in preannotated]
    assert len(new) == 4 and "predictions dropped" not in output
    assert all(_labels_of(emulator, run.version, a) == {"circle", "bogus"} for a in new)


def _job_for(run, emulator: Emulator, capsys) -> object:
    """The processing launched as the platform's UI would (no command's checks before)."""
    code, output = run.command(capsys, "register", "preannotate")
    assert code == 0, output
    client = emulator.client()
    processing = client.get_processing("pictrain-preannotate")
    version = client.get_dataset_version_by_id(run.version_id)
    launched = version.launch_processing(
        processing, inputs={"model_version_id": str(run.model_version_id)}
    )
    return emulator.state.jobs[launched.id]


def _fails_cleanly(run, emulator, job, capsys, caplog, reason: str) -> None:
    since = len(emulator.state.requests)
    code, output = run.run_job(job, capsys, caplog)
    failed = [line for line in output.splitlines() if "FAILED: " in line]
    assert code == 2 and len(failed) == 1 and reason in failed[0], output
    assert "Traceback" not in output
    assert writes(emulator, since) == []
    status = (run.runs / str(job.id) / "status.json").read_text()
    assert reason in status


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no onnx", "has no file model-latest"),
        ("no shared label", "share none with dataset version"),
        ("another type", "is SEGMENTATION and model version"),
        ("an export of another task", "a detect model pre-annotates OBJECT_DETECTION versions"),
        ("empty version", "has no assets to pre-annotate"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    case: str,
    reason: str,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    files, labels, kind = None, None, "OBJECT_DETECTION"
    if case == "no onnx":
        files = {"best-model": detect_model(tmp_path / "m.onnx")}
    if case == "no shared label":
        labels = ["cat", "dog"]
        files = {"model-latest": detect_model(tmp_path / "m.onnx", labels)}
    model_type = "OBJECT_DETECTION"
    if case in ("another type", "an export of another task"):
        kind = "SEGMENTATION"
    if case == "an export of another task":  # the version's type says segment, the file detect
        model_type = "SEGMENTATION"
    run = setup(
        emulator,
        tmp_path,
        monkeypatch,
        files,
        dataset_type=kind,
        model_type=model_type,
        **({"labels": labels} if labels else {}),
    )
    if case == "empty version":
        run.version.assets.clear()
    job = _job_for(run, emulator, capsys)
    _fails_cleanly(run, emulator, job, capsys, caplog, reason)


@pytest.mark.parametrize(
    ("case", "reason"),
    [("no onnx", "has no file model-latest"), ("another type", "is SEGMENTATION")],
)
def test_launch_refuses_what_it_can_see_is_wrong(
    case: str,
    reason: str,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    files = {"best-model": detect_model(tmp_path / "m.onnx")} if case == "no onnx" else None
    kind = "SEGMENTATION" if case == "another type" else "OBJECT_DETECTION"
    run = setup(
        emulator, tmp_path, monkeypatch, files, dataset_type=kind, model_type="OBJECT_DETECTION"
    )
    assert run.command(capsys, "register", "preannotate")[0] == 0
    since = len(emulator.state.requests)
    code, output = run.command(
        capsys,
        "preannotate",
        "launch",
        "--version",
        str(run.version_id),
        "--model",
        str(run.model_version_id),
    )
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and reason in errors[0], output
    assert writes(emulator, since) == [] and not emulator.launched_processings(run.version_id)


def test_register_twice_and_launch_once(
    server: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = setup(server, tmp_path, monkeypatch)
    for _ in range(2):
        code, output = run.command(capsys, "register", "preannotate")
        assert code == 0, output
    (processing,) = server.state.processings.values()
    assert (processing.type, processing.target) == ("PRE_ANNOTATION", "DATASET_VERSION")
    assert processing.docker_image == "ghcr.io/acme/preannotate"
    assert list(processing.inputs) == ["model_version_id"]
    assert processing.default_parameters["to_label"] == 20

    server.faults.add("POST", "/api/dataset/version/*/processing/launch", lose_reply=True)
    launch = (
        "preannotate",
        "launch",
        "--version",
        str(run.version_id),
        "--model",
        str(run.model_version_id),
    )
    code, output = run.command(capsys, *launch)
    assert code == 3 and "it may have started" in output
    code, output = run.command(capsys, *launch)
    assert code == 2 and "--again" in output
    assert len(server.launched_processings(run.version_id)) == 1


def test_the_image_command_runs_the_job_under_its_supervisor(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`pictrain preannotate`, as the image runs it: the job run RUNNING then SUCCEEDED, its
    log lines on the platform."""
    run = setup(emulator, tmp_path, monkeypatch)
    job = run.launch(capsys)
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in ("API_TOKEN", "ORGANIZATION_ID", "PICSELLIA_HOST")
    }
    done = subprocess.run(
        [sys.executable, "-m", "pictrain", "preannotate", "--runs-dir", str(run.runs)],
        env={**env, **loopback_env(), **emulator.processing_env(job)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = emulator.state.jobs[job.id]
    assert record.status_history == ["RUNNING", "SUCCEEDED"]
    assert any("4 pre-annotated now" in line for line in record.lines)
    assert len(run.tagged(PREANNOTATED)) == 4


def test_a_reviewed_asset_leaves_the_ranking_and_keeps_the_users_metadata(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reviewer checked a picked asset (its pre-annotated tag removed): the next run counts
    it as labelled, takes its tag and score away and picks another; the user's own metadata
    keys stay."""
    run = setup(emulator, tmp_path, monkeypatch)
    job = run.launch(capsys)
    assert run.run_job(job, capsys, caplog)[0] == 0
    state = emulator.state
    first = run.tagged("to-label")
    reviewed = next(a for a in run.version.assets if state.datas[a.data_id].filename == first[0])
    tag = next(t for t in state.tags.values() if t.name == PREANNOTATED)
    reviewed.tag_ids.remove(tag.id)
    data = state.datas[reviewed.data_id]
    data.custom_metadata["camera"] = "north"

    code, output = run.run_job(job, capsys, caplog)

    assert code == 0, output
    assert data.custom_metadata == {"camera": "north"}
    again = run.tagged("to-label")
    assert len(again) == 2 and first[0] not in again
    assert "5 annotated by a human" in output


def test_launch_finds_a_models_latest_version_by_name_through_pages(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = setup(emulator, tmp_path, monkeypatch)
    latest = emulator.seed_model_version(
        {"model-latest": detect_model(tmp_path / "m2.onnx")}, labels=["circle", "square"]
    )
    emulator.state.settings.page_size = 1  # one version per page, whatever is asked
    assert run.command(capsys, "register", "preannotate")[0] == 0
    code, output = run.command(
        capsys, "preannotate", "launch", "--version", "pool", "--model", "emulated-model"
    )
    assert code == 0, output
    (job,) = emulator.launched_processings(run.version_id)
    assert job.processing.inputs == {"model_version_id": str(latest)}
    assert "with model version emulated-model-1 launched" in output


POSE_LAYOUT = {"keypoints": list(POSE_POINTS), "skeleton": POSE_EDGES}


@pytest.mark.parametrize(
    ("task", "version_type", "written"),
    [
        ("pose", "KEYPOINT", Keypoints),
        ("obb", "SEGMENTATION", Polygon),
        ("obb", "OBJECT_DETECTION", Rectangle),
    ],
)
def test_keypoints_and_oriented_boxes_are_written_one_entry_each(
    task: str,
    version_type: str,
    written: type,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    maker = make_pose_dataset if task == "pose" else make_obb_dataset
    names = sorted(
        c["name"]
        for c in json.loads(next(iter(maker(tmp_path / "n", 1, 64).values())).read_text())[
            "categories"
        ]
    )
    model = tmp_path / "m.onnx"
    if task == "pose":
        pose_model(model, names, POSE_LAYOUT)
    else:
        obb_model(model, names)
    run = setup(
        emulator,
        tmp_path,
        monkeypatch,
        {"model-latest": model},
        dataset_type=version_type,
        labels=names,
        maker=maker,
        model_type="KEYPOINT" if task == "pose" else "SEGMENTATION",
    )
    job = run.launch(capsys)
    code, output = run.run_job(job, capsys, caplog)
    assert code == 0, output
    state = emulator.state
    preannotated = set(run.tagged(PREANNOTATED))
    assert len(preannotated) == 4
    for asset in run.version.assets:
        if state.datas[asset.data_id].filename in preannotated:
            (shape,) = asset.shapes
            assert isinstance(shape, written)
            assert run.version.label(shape.label_id).name == names[0]
            if written is Keypoints:
                assert [p[2] for p in shape.points] == [2, 0, 2, 0, 2]
            if written is Polygon:
                assert len(shape.points) == 4


def test_a_pose_model_whose_layout_is_not_the_labels_is_refused(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = ["circle", "square", "triangle"]
    other = {"keypoints": ["a", "b", "c", "d", "e"], "skeleton": [[1, 2]]}
    model = pose_model(tmp_path / "m.onnx", names, other)
    run = setup(
        emulator,
        tmp_path,
        monkeypatch,
        {"model-latest": model},
        dataset_type="KEYPOINT",
        labels=names,
        maker=make_pose_dataset,
        model_type="KEYPOINT",
    )
    job = _job_for(run, emulator, capsys)
    _fails_cleanly(run, emulator, job, capsys, caplog, "has another skeleton")
