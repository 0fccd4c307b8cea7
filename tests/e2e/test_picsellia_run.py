"""`pictrain run` as the platform starts it: a subprocess with the container variables, against
the Picsellia API emulator, checked by what the platform ends up holding."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pictrain import safeload
from pictrain.checksums import sha256
from tests.e2e.jobs import (
    EPOCH_CURVES,
    JOB_TIMEOUT,
    PARAMETERS,
    Finished,
    assert_failed,
    background_job,
    job_env,
    run_job,
    seed,
    synthetic_splits,
    wait_for,
)
from tests.emulator import Emulator
from tests.emulator.seeding import SeededIds
from tests.picsellia_parameters import NO_EFFECT_KEYS, PICSELLIA_ENGINE_PARAMETERS

pytestmark = pytest.mark.slow

TEST_VALUES = (
    "test/mAP50-95(B)",
    "test/mAP50(B)",
    "test/mAP75(B)",
    "test/AR100(B)",
    "test/onnx-mAP50-95",
)
ARTIFACT_FILES = {
    "best-model": "train/weights/best.pt",
    "checkpoint-weights-latest": "train/weights/best.pt",  # kept when published as a model
    "model-latest": "export/model-latest.onnx",
    "config": "export/config.yaml",
    "manifest": "export/manifest.json",
}


# --- what a finished job must have left on the platform ----------------------------------------


def assert_published(emu: Emulator, ids: SeededIds, finished: Finished) -> None:
    assert finished.code == 0, finished.output[-3000:]
    state = emu.state
    experiment = state.experiments[ids.experiment_id]
    logs = experiment.logs
    for name in EPOCH_CURVES:
        assert logs[name].type == "LINE", name
        assert len(logs[name].data) == PARAMETERS["epochs"], (name, logs[name].data)
        assert all(isinstance(v, float) and v == v and v >= 0 for v in logs[name].data), name
    assert all(0 <= v <= 1 for v in logs["val/mAP50-95(B)"].data + logs["val/mAP50(B)"].data)
    for name in TEST_VALUES:
        assert logs[name].type == "VALUE", name
        assert 0 <= float(logs[name].data) <= 1, (name, logs[name].data)
    assert logs["test/deploy-parity"].type == "TABLE"
    assert abs(float(logs["test/onnx-mAP50-95-difference"].data)) <= 0.01
    table = logs["test/per-class-AP(B)"]
    assert table.type == "TABLE"
    assert table.data["rows"] == ["circle", "square", "triangle"]
    assert any(log.type == "IMAGE" for log in logs.values())
    assert logs["labelmap"].type == "LABELMAP"
    assert logs["labelmap"].data == {"0": "circle", "1": "square", "2": "triangle"}
    for split in ("train", "val", "test"):
        assert logs[f"{split}/label-distribution"].type == "BAR"
        assert logs[f"{split}/label-distribution"].data["x"] == ["circle", "square", "triangle"]
        assert logs[f"{split}/conversion"].type == "TABLE"
    for name, relative in ARTIFACT_FILES.items():
        stored = state.artifact_bytes(ids.experiment_id, name)
        assert stored == (finished.run_dir / relative).read_bytes(), name
    test_version = state.dataset_versions[ids.dataset_version_ids["test"]]
    evaluated = {e.asset_id for e in experiment.evaluations.values()}
    assert evaluated == {asset.id for asset in test_version.assets}
    assert experiment.status_history[0] == "RUNNING"
    assert experiment.status == "SUCCESS"  # the experiment's own status, not the v1 job status
    assert "failure reason" not in logs
    assert (
        state.artifact_bytes(ids.experiment_id, "job-log")
        == (finished.run_dir / "job.log").read_bytes()
    )
    job = state.jobs[ids.job_id]
    assert job.status == "SUCCEEDED"
    assert_job_logs(emu, job, finished, exit_code=0)
    assert not state.unknown_routes


def assert_job_logs(emu: Emulator, job: Any, finished: Finished, exit_code: int) -> None:
    """Shaped as Picsellia's log monitor sends them, readable, collapsed (no progress bar
    redrawn line after line), and whole: what the view holds, line for line, is the stored
    logging file, however many posts were retried."""
    numbers = sorted(job.view)
    assert numbers == list(range(len(numbers))), numbers[:20]  # no gap, no line twice
    assert job.lines[0] == "--#--Training\n" and set(job.parts.values()) == {"--#--Training"}
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in job.lines)
    assert job.exit_code == exit_code
    stored = json.loads(emu.state.storage.get(job.logging_object_name))
    assert set(stored) == {"--#--Training", "exit_code"}
    assert stored["exit_code"]["exit_code"] == exit_code and stored["exit_code"]["datetime"]
    assert stored["--#--Training"]["logs"] == {str(n): line for n, line in job.view.items()}
    lines = [line.rstrip("\n") for line in job.lines]
    assert any("Starting training" in line for line in lines), lines[-20:]
    assert lines[-1].startswith(f"job finished with exit code {exit_code}")
    assert not any("\r" in line or "\x1b[" in line for line in lines)
    line, count = Counter(lines).most_common(1)[0]
    assert count < 10, f"{line!r} sent {count} times"
    assert len(lines) < 600, f"{len(lines)} log lines for a 1-epoch run"
    text = (finished.run_dir / "job.log").read_text().splitlines()
    assert set(lines[1:]) <= set(text)  # the plain-text log has every line of the view


def assert_no_token(emu: Emulator, finished: Finished, token: str | None = None) -> None:
    """The token (the job's, by default the emulator's) and presigned URLs reach neither the
    run folder, nor the logs, nor the platform's log view."""
    token = token or emu.token
    files = [p for p in finished.run_dir.rglob("*") if p.is_file()]
    leaks = [p for p in files if token.encode() in p.read_bytes()]
    # (four bytes may occur in weights by chance: text files only for the URL signature)
    leaks += [p for p in files if p.suffix in (".log", ".json", "") and b"sig=" in p.read_bytes()]
    assert not leaks, leaks
    assert token not in finished.output and "sig=" not in finished.output
    assert not any(token in line for job in emu.state.jobs.values() for line in job.lines)


# --- the job succeeds --------------------------------------------------------------------------


def test_run_publishes_everything(
    emulator: Emulator, splits: dict, tiny_weights: Path, yolo_config_dir: Path, tmp_path: Path
) -> None:
    """The base model version's .pt is the starting point when the experiment has none."""
    ids = seed(emulator, splits, base_model_files={"weights": tiny_weights})
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    assert_published(emulator, ids, finished)
    assert_no_token(emulator, finished)
    assert f"starting weights: model-version tiny-yolov8n.pt, sha256 {sha256(tiny_weights)}" in (
        finished.output
    )
    manifest = json.loads((finished.run_dir / "export" / "manifest.json").read_text())
    assert manifest["inputs"]["starting_weights"]["source"] == "model-version"


def test_parameters_of_picsellia_engines_run_and_the_ignored_keys_are_shown(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    """An experiment created from a model version set up by Picsellia's own images carries
    their engine's ~60 keys: the run trains, and the keys that set nothing here are named in
    one warning line and in the experiment's `ignored parameters` table."""
    parameters = {
        **PICSELLIA_ENGINE_PARAMETERS,
        **PARAMETERS,
        "device": "",  # theirs is cuda:0; this machine may have no GPU
        "experiment_note": "baseline",
    }
    ids = seed(emulator, splits, parameters=parameters)
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    assert finished.code == 0, finished.output[-3000:]
    ignored = NO_EFFECT_KEYS | {"experiment_note"}
    warnings = [
        line
        for line in finished.output.splitlines()
        if f"ignored {len(ignored)} parameter(s)" in line
    ]
    assert len(warnings) == 1 and all(key in warnings[0] for key in ignored), warnings
    table = emulator.state.experiments[ids.experiment_id].logs["ignored parameters"]
    assert table.type == "TABLE"
    assert set(table.data["rows"]) == ignored
    assert table.data["columns"] == ["value", "reason"]


def test_a_parameter_typo_fails_before_any_download(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    ids = seed(emulator, splits, parameters={**PARAMETERS, "epochss": 3})
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    reason = r"unknown parameter 'epochss': did you mean 'epochs'\?"
    assert_failed(emulator, ids, finished, reason, code=2)
    assert not emulator.requests("*", "/api/experiment/*/datasets")
    assert not emulator.requests("POST", "*/annotations/export")
    assert not emulator.requests("GET", "/_storage/object/*")
    assert "ignored parameters" not in emulator.state.experiments[ids.experiment_id].logs


# Routes an SDK call uses on its own: each gets the whole fault set.
FAULT_ROUTES = (
    ("GET", r"^/api/home/ping$"),
    ("GET", r"/experiments/find$"),
    ("GET", r"/jobv2s/find$"),
    ("GET", r"^/api/experiment/[^/]+/datasets$"),
    ("GET", r"/logs/find$"),
    ("GET", r"^/api/dataset/version/[^/]+/assets$"),
    ("GET", r"/labels$"),
    ("POST", r"/annotations/export$"),
    ("GET", r"^/_storage/object/"),
    ("POST", r"^/api/experiment/[^/]+/logs$"),
    ("POST", r"^/api/experiment/[^/]+/artifacts$"),
    ("POST", r"/evaluations$"),
    ("POST", r"/evaluate$"),
    ("PATCH", r"^/api/experiment/[^/]+$"),
    ("PATCH", r"/job/status$"),
    ("POST", r"^/api/v2/job/[^/]+/(running|succeed|logging|logging/save)$"),
)
# Steps inside one SDK call (Client() pings then reads the organization; `store` and IMAGE logs
# name, presign, upload, find, then create): our retry repeats the whole call, so faults on
# every step add up within one retried call. One fault each, kinds in turn.
STEP_ROUTES = (
    ("GET", r"^/api/organization/[^/]+$"),
    ("POST", r"/generate_object_name$"),
    ("POST", r"/generate_presigned_url$"),
    ("POST", r"^/_storage/upload$"),
    ("GET", r"/artifacts/find$"),
)


def inject_faults(emu: Emulator) -> list[Any]:
    """Two 502s, a 429 with Retry-After, a dropped connection and a slow reply per route."""
    kinds: list[dict[str, Any]] = [
        {"status": 502, "times": 2},
        {"status": 429, "retry_after": 0.2},
        {"drop": True},
        {"latency": 0.2},
    ]
    rules = [
        emu.faults.add(method, re.compile(pattern), **kind)
        for method, pattern in FAULT_ROUTES
        for kind in kinds
    ]
    rules += [
        emu.faults.add(method, re.compile(pattern), **kinds[1 + i % 3])
        for i, (method, pattern) in enumerate(STEP_ROUTES)
    ]
    # Landed, but the reply is lost: a blind retry of the job's logging would duplicate lines.
    rules.append(emu.faults.add("POST", re.compile(r"/logging$"), lose_reply=True, times=2))
    return rules


def test_run_survives_faults_on_every_route(
    emulator: Emulator, splits: dict, tiny_weights: Path, yolo_config_dir: Path, tmp_path: Path
) -> None:
    """Also: the experiment's `pretrained-weights` wins over the base model version."""
    ids = seed(
        emulator,
        splits,
        experiment_files={"pretrained-weights": tiny_weights},
        base_model_files={"weights": tiny_weights},
    )
    rules = inject_faults(emulator)
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    assert_published(emulator, ids, finished)
    assert "starting weights: experiment tiny-yolov8n.pt" in finished.output
    unfired = sorted({(r.method, r.path.pattern) for r in rules if r.fired == 0})
    assert not unfired, f"faults that never fired (route unused?): {unfired}"


def test_lost_status_and_log_calls_never_fail_a_trained_run(
    emulator: Emulator, splits: dict, tiny_weights: Path, yolo_config_dir: Path, tmp_path: Path
) -> None:
    """Only data that did not arrive fails a run: not the experiment status, not live logs."""
    ids = seed(emulator, splits, base_model_files={"weights": tiny_weights})
    # Refusals, not outages: nothing is retried, so the run does not wait out backoffs.
    for method, path, status in [
        ("PATCH", r"^/api/experiment/[^/]+$", 400),
        ("PATCH", r"/job/status$", 404),
        ("POST", r"^/api/v2/job/[^/]+/logging$", 409),
    ]:
        emulator.faults.add(method, re.compile(path), status=status, times=None)
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    assert finished.code == 0, finished.output[-3000:]
    assert json.loads((finished.run_dir / "status.json").read_text())["status"] == "done"
    experiment = emulator.state.experiments[ids.experiment_id]
    assert {"best-model", "model-latest", "config", "manifest"} <= set(experiment.artifacts)
    assert experiment.status == "WAITING"  # every status call failed, and that was all
    assert emulator.state.jobs[ids.job_id].status == "SUCCEEDED"


# --- the job fails, and says why ---------------------------------------------------------------


def test_bad_token_fails_in_one_line(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    ids = seed(emulator, splits)
    env = job_env(emulator, ids, yolo_config_dir, api_token="not-the-token")
    finished = run_job(tmp_path, env, ids.experiment_id)
    assert finished.code == 2, finished.output[-3000:]
    assert "Traceback" not in finished.output, finished.output[-3000:]
    failed = [line for line in finished.output.splitlines() if "FAILED" in line]
    reasons = {line[line.index("FAILED") :] for line in failed}  # stated, then repeated last
    assert len(reasons) == 1 and "refused the API token" in failed[0], finished.output[-3000:]
    assert "refused the API token" in finished.output.splitlines()[-1]
    assert "not-the-token" not in finished.output
    # Unreachable with that token: the platform state is untouched.
    assert emulator.state.experiments[ids.experiment_id].status == "WAITING"


def test_a_platform_that_stays_unreachable_fails_with_exit_3_in_one_line(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    """README's exit code 3, not a traceback and "exit code 1 without saying why"."""
    ids = seed(emulator, splits)
    emulator.faults.add("GET", "/api/home/ping", status=503, times=None)
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    assert finished.code == 3, finished.output[-3000:]
    assert "Traceback" not in finished.output, finished.output[-3000:]
    reason = f"cannot connect to {emulator.url}"
    assert f"FAILED: {reason}" in finished.output, finished.output[-3000:]
    status = json.loads((finished.run_dir / "status.json").read_text())
    assert reason in status["reason"] and status["exit_code"] == 3


def test_a_token_revoked_mid_run_ends_as_refused(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    """Not a platform outage (exit 3) with a list of every call that failed since."""
    ids = seed(emulator, splits, parameters={**PARAMETERS, "epochs": 300})
    env = job_env(emulator, ids, yolo_config_dir)
    with training_job(emulator, ids, tmp_path, env) as process:
        job_token, emulator.state.token = emulator.token, "the-new-token"
        output, _ = process.communicate(timeout=JOB_TIMEOUT)
    (tmp_path / "output.txt").write_text(output)
    assert process.returncode == 2, output[-3000:]
    refused = "the platform refused the API token (expired or revoked?)"
    assert f"job finished with exit code 2: {refused}" in output, output[-3000:]
    assert "failed after retries" not in output and "Traceback" not in output, output[-3000:]
    run_dir = tmp_path / "runs" / str(ids.experiment_id)
    assert json.loads((run_dir / "status.json").read_text())["reason"] == refused
    assert_no_token(emulator, Finished(process.returncode, output, run_dir), job_token)


def test_no_experiment_id_is_refused(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    ids = seed(emulator, splits)
    env = job_env(emulator, ids, yolo_config_dir, experiment_id=None)
    finished = run_job(tmp_path, env, ids.experiment_id)
    assert finished.code == 2, finished.output[-3000:]
    assert "FAILED: no experiment: set experiment_id" in finished.output
    assert "Traceback" not in finished.output
    job = emulator.state.jobs[ids.job_id]  # the run is failed with the reason, not left pending
    assert job.status == "FAILED"
    assert "no experiment" in "\n".join(job.lines)


def test_unknown_experiment_fails_the_job(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    ids = seed(emulator, splits)
    missing = "00000000-0000-4000-8000-000000000000"
    env = job_env(emulator, ids, yolo_config_dir, experiment_id=missing)
    finished = run_job(tmp_path, env, missing)
    emulator.state.unknown_routes.clear()
    reason = f"experiment {missing} not found"
    assert_failed(emulator, ids, finished, reason, code=2, on_experiment=False)
    assert emulator.state.experiments[ids.experiment_id].status == "WAITING"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("empty-split", r"attached as val has no assets"),
        ("unusable-images", r"the test split has 0 usable images"),
        ("classification-version", r"'train' is a CLASSIFICATION dataset"),
    ],
)
def test_bad_experiment_fails_with_its_reason(
    emulator: Emulator,
    splits: dict,
    yolo_config_dir: Path,
    tmp_path: Path,
    case: str,
    reason: str,
) -> None:
    ids = seed_bad_experiment(emulator, splits, tmp_path / "bad-data", case)
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    assert_failed(emulator, ids, finished, reason, code=2)
    assert "best-model" not in emulator.state.experiments[ids.experiment_id].artifacts


def test_an_export_that_does_not_score_as_the_weights_fails_the_job(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    """The deploy-parity gate, on a tampered export (`tests/e2e/tampered_export`): every test
    image holds one square at `box` and the export finds exactly that (mAP 1), the weights of
    one epoch about nothing. The job fails with the reason, weights and export stored."""
    box = (8, 12, 30, 24)
    images_dir, coco_file = splits["test"]
    coco = json.loads(coco_file.read_text())
    square = next(c["id"] for c in coco["categories"] if c["name"] == "square")
    coco["annotations"] = [
        {"id": i + 1, "image_id": image["id"], "category_id": square, "bbox": list(box)}
        for i, image in enumerate(coco["images"])
    ]
    squares = tmp_path / "squares.json"
    squares.write_text(json.dumps(coco))
    ids = seed(emulator, {**splits, "test": (images_dir, squares)})
    tampering = Path(__file__).resolve().parent / "tampered_export"
    env = job_env(emulator, ids, yolo_config_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(tampering), str(tampering.parents[2])])
    env["TAMPERED_BOX"] = ",".join(map(str, box))
    finished = run_job(tmp_path, env, ids.experiment_id)
    reason = r"the ONNX export does not score as the weights \(test mAP50-95\(B\): ONNX 1\.0000"
    assert_failed(emulator, ids, finished, reason, code=1)
    status = json.loads((finished.run_dir / "status.json").read_text())
    assert status["status"] == "failed" and status["exit_code"] == 1
    assert re.search(reason, status["reason"]) and "over 0.05" in status["reason"]
    logs = emulator.state.experiments[ids.experiment_id].logs
    assert float(logs["test/onnx-mAP50-95-difference"].data) > 0.05
    assert logs["test/deploy-parity"].type == "TABLE"
    for name in ("best-model", "model-latest", "config", "manifest"):
        assert emulator.state.artifact_bytes(ids.experiment_id, name), name
    assert (
        emulator.state.artifact_bytes(ids.experiment_id, "model-latest")
        == (finished.run_dir / "export" / "model-latest.onnx").read_bytes()
    )


def seed_bad_experiment(emu: Emulator, splits: dict, folder: Path, case: str) -> SeededIds:
    if case == "empty-split":
        empty = write_coco(folder / "empty", images=[])
        return seed(emu, {**splits, "val": empty})
    if case == "unusable-images":
        _, coco = splits["test"]
        images = [{"id": 1, "file_name": "broken.jpg", "width": 64, "height": 64}]
        broken = write_coco(folder / "broken", images=images, categories_from=coco)
        (broken[0] / "broken.jpg").write_bytes(b"not an image at all")
        return seed(emu, {**splits, "test": broken})
    if case == "classification-version":
        return seed(emu, {"train": splits["train"]}, dataset_type="CLASSIFICATION")
    raise AssertionError(case)


def write_coco(
    folder: Path, images: list[dict], categories_from: Path | None = None
) -> tuple[Path, Path]:
    categories = json.loads(categories_from.read_text())["categories"] if categories_from else []
    (folder / "images").mkdir(parents=True)
    coco = folder / "annotations.json"
    coco.write_text(json.dumps({"images": images, "annotations": [], "categories": categories}))
    return folder / "images", coco


# --- the job is stopped ------------------------------------------------------------------------


def test_sigterm_fails_the_job_and_keeps_the_weights(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    ids = seed(emulator, splits, parameters={**PARAMETERS, "epochs": 300})
    env = job_env(emulator, ids, yolo_config_dir)
    with training_job(emulator, ids, tmp_path, env) as process:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=JOB_TIMEOUT)
    finished = Finished(process.returncode, output, tmp_path / "runs" / str(ids.experiment_id))
    assert_failed(emulator, ids, finished, "stopped by SIGTERM", code=143)
    # The weights without the optimizer state: what ultralytics leaves after training, and a
    # fraction of the checkpoint's size to upload before the SIGKILL.
    stored = emulator.state.artifact_bytes(ids.experiment_id, "best-model")
    weights = finished.run_dir / "checkpoints" / "best-weights.pt"
    assert stored == weights.read_bytes()
    assert len(stored) < (finished.run_dir / "train/weights/best.pt").stat().st_size / 2
    checkpoint = safeload.load(weights)
    assert checkpoint["optimizer"] is None and checkpoint["model"] is not None


def test_a_killed_worker_fails_the_experiment_found_by_name(
    emulator: Emulator, splits: dict, yolo_config_dir: Path, tmp_path: Path
) -> None:
    """project_token + experiment_name, as Picsellia's images read them; the worker dies
    without a word (SIGKILL: out of memory), the supervisor finds the experiment the same way
    and reports the death on it and on the job."""
    ids = seed(emulator, splits, parameters={**PARAMETERS, "epochs": 300})
    name = emulator.state.experiments[ids.experiment_id].name
    env = job_env(
        emulator,
        ids,
        yolo_config_dir,
        experiment_id=None,
        experiment_name=name,
        project_token=str(ids.project_id),
    )
    with training_job(emulator, ids, tmp_path, env) as process:
        (worker,) = child_pids(process.pid)
        os.kill(worker, signal.SIGKILL)
        output, _ = process.communicate(timeout=JOB_TIMEOUT)
    finished = Finished(process.returncode, output, tmp_path / "runs" / name)
    assert_failed(emulator, ids, finished, "killed by SIGKILL", code=128 + signal.SIGKILL)
    status = json.loads((finished.run_dir / "status.json").read_text())
    assert status["exit_code"] == finished.code and "killed by SIGKILL" in status["reason"]


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent` (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == parent:
            pids.append(int(stat.parent.name))
    return pids


@contextmanager
def training_job(
    emu: Emulator, ids: SeededIds, cwd: Path, env: Mapping[str, str]
) -> Iterator[subprocess.Popen[str]]:
    """The job in the background, once its first curve point reached the experiment."""
    with background_job(cwd, env) as process:
        wait_for(lambda: "train/box_loss" in emu.state.experiments[ids.experiment_id].logs)
        yield process


# --- the other tasks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "dataset_type", "shape", "test_value"),
    [
        ("segment", "SEGMENTATION", "polygons", "test/mAP50-95(M)"),
        ("classify", "CLASSIFICATION", "classifications", "test/accuracy_top1"),
        ("pose", "KEYPOINT", "keypoints", "test/mAP50-95(P)"),
        # oriented boxes from polygons, and from an OBJECT_DETECTION export's boxes (angle 0)
        ("obb", "SEGMENTATION", "polygons", "test/mAP50-95(B)"),
        ("obb", "OBJECT_DETECTION", "polygons", "test/mAP50-95(B)"),
    ],
)
def test_other_tasks_publish_their_evaluations(
    emulator: Emulator,
    yolo_config_dir: Path,
    tmp_path: Path,
    task: str,
    dataset_type: str,
    shape: str,
    test_value: str,
) -> None:
    from pictrain.synthetic import DATASET_MAKERS

    task_splits = synthetic_splits(tmp_path / "data", DATASET_MAKERS[task])
    ids = seed(emulator, task_splits, dataset_type=dataset_type)
    env = job_env(emulator, ids, yolo_config_dir)
    finished = run_job(tmp_path, env, ids.experiment_id, "--task", task)
    assert finished.code == 0, finished.output[-3000:]
    experiment = emulator.state.experiments[ids.experiment_id]
    assert experiment.status == "SUCCESS"
    assert experiment.logs[test_value].type == "VALUE"
    test_version = emulator.state.dataset_versions[ids.dataset_version_ids["test"]]
    evaluations = list(experiment.evaluations.values())
    assert {e.asset_id for e in evaluations} == {asset.id for asset in test_version.assets}
    assert all(set(e.shapes) <= {shape} for e in evaluations), evaluations[0].shapes
    assert any(e.shapes.get(shape) for e in evaluations)  # sent, and taken by the emulator
    if task == "classify":  # the top class, where it reaches its threshold
        assert all(len(e.shapes.get(shape, [])) <= 1 for e in evaluations)
        heatmap = experiment.logs["test/confusion-matrix"]
        assert heatmap.type == "HEATMAP"
        assert heatmap.data["categories"] == ["circle", "square", "triangle"]
        assert sum(map(sum, heatmap.data["values"])) == len(evaluations)
    assert experiment.logs["test/deploy-parity"].type == "TABLE"
    assert emulator.state.jobs[ids.job_id].status == "SUCCEEDED"
