"""Disk and environment faults, command by command, as a user meets them: one line that says
what to fix, the README's exit code (2, or 130 for Ctrl-C), no traceback; a failed run still
says `failed` in status.json. The job runs with its ultralytics parts stubbed
(tests/unit/job_stubs.py); the faults are injected where the file is written."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import pictrain.data.images
from pictrain.cli import main
from pictrain.envvars import RETRY_BASE_DELAY
from tests.emulator import Emulator, SeededIds
from tests.emulator.emulator import loopback_env
from tests.unit.job_stubs import Stubs
from tests.unit.onnx_stub import constant_model
from tests.unit.workflow_project import IMAGES, one_error_line

PICTRAIN = [sys.executable, "-m", "pictrain"]
NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it: no file name


def run_pictrain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`pictrain ARGS` in this process: exit code and what it printed (stdout, then stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    printed = capsys.readouterr()
    return int(exited.value.code or 0), printed.out + printed.err


# --- pictrain run --local: a full disk, and what the failure path writes on it ----------------


@dataclass
class LocalRun:
    """`pictrain run --local` on the square dataset, the job's ultralytics parts stubbed."""

    capsys: pytest.CaptureFixture[str]
    stubs: Stubs
    dataset: Path
    run_dir: Path

    def __call__(self) -> tuple[int, dict]:
        """The run's exit code and status.json ({} when there is none)."""
        runs = ["--runs-dir", str(self.run_dir.parent), "--name", self.run_dir.name]
        code, _ = run_pictrain(self.capsys, "run", "--local", str(self.dataset), *runs)
        status = self.run_dir / "status.json"
        return code, json.loads(status.read_text()) if status.is_file() else {}


@pytest.fixture
def local_run(
    capsys: pytest.CaptureFixture[str], stubs: Stubs, square_dataset: Path, tmp_path: Path
) -> LocalRun:
    return LocalRun(capsys, stubs, square_dataset, tmp_path / "runs" / "x")


@pytest.fixture
def console(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the job logs (its console): checked for one error line and no traceback."""
    yield caplog
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def failed_line(console: pytest.LogCaptureFixture) -> str:
    (record,) = [r for r in console.records if r.levelno >= logging.ERROR]
    return record.getMessage()


def no_space(where: Path) -> str:
    return f"No space left on device (the disk of {where}, "


@pytest.mark.parametrize("step", ["conversion", "training", "export"])
def test_a_full_disk_fails_the_run_in_one_line_naming_the_folder(
    local_run: LocalRun,
    console: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    def full() -> None:
        raise NO_SPACE

    local_run.stubs.trainer(then=full if step == "training" else None)
    if step == "conversion":
        monkeypatch.setattr(pictrain.data.images, "_write_file", lambda *_: full())
    if step == "export":
        local_run.stubs.export_error = NO_SPACE
    code, status = local_run()
    assert code == 2
    run_dir = local_run.run_dir
    assert failed_line(console).startswith(f"FAILED: {no_space(run_dir)}")
    assert "free" in failed_line(console)
    assert (status["status"], status["exit_code"]) == ("failed", 2)
    assert status["reason"].startswith(no_space(run_dir))


def test_a_disk_full_everywhere_still_leaves_failed_in_status_json(
    local_run: LocalRun, console: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once training fails on a full disk, no new file can be written, status.json's staging
    copy included; the failure path must not raise, and status.json is overwritten in place."""
    real_write_text = Path.write_text
    disk_full = []

    def write_text(path: Path, *args: object, **kwargs: object) -> int:
        if disk_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write_text(path, *args, **kwargs)

    def fill_the_disk() -> None:
        disk_full.append(True)
        monkeypatch.setattr(shutil, "copyfile", lambda *_, **__: write_text(Path("copy")))
        monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(free=0))
        raise NO_SPACE

    monkeypatch.setattr(Path, "write_text", write_text)
    local_run.stubs.trainer(then=fill_the_disk)
    code, status = local_run()
    assert code == 2
    assert failed_line(console).startswith(f"FAILED: {no_space(local_run.run_dir)}0 bytes")
    assert (status["status"], status["exit_code"]) == ("failed", 2)


def test_a_write_failure_without_its_errno_on_a_nearly_full_disk(
    local_run: LocalRun, console: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.save to a path (ultralytics' last strip of the weights) says "unexpected pos" on
    a full disk, not ENOSPC: with 50 MB left the disk is named, not an internal error."""

    def torch_writer_fails() -> None:
        monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(free=50_000_000))
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 704 vs 598")

    local_run.stubs.trainer(then=torch_writer_fails)
    code, status = local_run()
    assert code == 2
    assert "50.0 MB free on the disk of" in failed_line(console)
    assert "probably a full disk" in status["reason"]


def test_a_read_only_runs_folder_fails_in_one_line(square_dataset: Path, tmp_path: Path) -> None:
    """A subprocess: the folder must refuse this user, root included (it loses the capability
    that overrides file modes)."""
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o555)
    command = [*PICTRAIN, "run", "--local", str(square_dataset), "--runs-dir", str(runs)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, and no setpriv to drop CAP_DAC_OVERRIDE")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    (failed,) = [line for line in output.splitlines() if "FAILED: " in line]
    assert failed.endswith(": Permission denied") and str(runs) in failed


def test_ctrl_c_during_a_local_run_stops_it_with_130(
    local_run: LocalRun, console: pytest.LogCaptureFixture
) -> None:
    local_run.stubs.trainer(then=lambda: os.kill(os.getpid(), signal.SIGINT))
    code, status = local_run()
    assert code == 130
    assert failed_line(console) == "FAILED: stopped by SIGINT"
    assert (status["status"], status["reason"], status["exit_code"]) == (
        "failed",
        "stopped by SIGINT",
        130,
    )


# --- the user's files: the project file, a COCO file, launches.json, an image -----------------


def test_a_project_file_that_is_not_utf8(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    project = tmp_path / "picsellia.toml"
    project.write_bytes(b'[image]\nname = "caf\xe9"\n')
    code, output = run_pictrain(capsys, "data", "upload", "--project", str(project))
    assert code == 2
    expected = f"error: {project} is not UTF-8 text (byte 19: invalid continuation byte)"
    assert one_error_line(output) == expected


def test_a_project_file_that_is_a_folder(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    project = tmp_path / "picsellia.toml"
    project.mkdir()
    code, output = run_pictrain(capsys, "data", "upload", "--project", str(project))
    assert code == 2
    assert one_error_line(output) == f"error: {project} is a folder, not a file"


def test_a_folder_as_the_coco_file_of_convert(capsys: pytest.CaptureFixture[str], tmp_path):
    (tmp_path / "images").mkdir()
    args = ["--coco", str(tmp_path / "images"), "--images", str(tmp_path / "images")]
    code, output = run_pictrain(capsys, "convert", *args, "--out", str(tmp_path / "out"))
    assert code == 2
    assert one_error_line(output) == f"error: {tmp_path / 'images'} is a folder, not a file"


def project_file(folder: Path, annotations: Path, launches: bytes | None = None) -> Path:
    """A project file on the seeded experiment, its train split annotated by `annotations`."""
    (folder / "images").mkdir(exist_ok=True)
    path = folder / "picsellia.toml"
    path.write_text(
        f'[data.train]\nimages = "images"\nannotations = "{annotations}"\ntags = ["t"]\n'
        '[dataset]\nname = "d"\ntype = "OBJECT_DETECTION"\n'
        '[project]\nname = "emulated-project"\n[experiment]\nname = "emulated-experiment"\n'
    )
    if launches is not None:
        (folder / ".pictrain").mkdir()
        (folder / ".pictrain" / "launches.json").write_bytes(launches)
    return path


@pytest.fixture
def user_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**emulator.user_env(), RETRY_BASE_DELAY.name: "0.01"}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("user_env")
def test_a_folder_as_annotations_of_a_dataset_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "coco").mkdir()
    project = project_file(tmp_path, tmp_path / "coco")
    code, output = run_pictrain(capsys, "data", "dataset", "--project", str(project))
    assert code == 2
    assert one_error_line(output) == f"error: {tmp_path / 'coco'} is a folder, not a file"


@pytest.mark.usefixtures("user_env")
def test_a_truncated_launches_file_launches_nothing(
    capsys: pytest.CaptureFixture[str], emulator: Emulator, seeded: SeededIds, tmp_path: Path
) -> None:
    """A cut-off file is not "never launched": that would launch the experiment again."""
    project = project_file(tmp_path, tmp_path / "none.json", launches=b'{"1": "jo')
    jobs = set(emulator.state.jobs)
    code, output = run_pictrain(capsys, "experiment", "launch", "--project", str(project))
    assert code == 2
    line = one_error_line(output)
    assert line.startswith(f"error: {tmp_path / '.pictrain' / 'launches.json'} is damaged")
    assert set(emulator.state.jobs) == jobs


def test_an_empty_image_to_predict(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = constant_model(tmp_path / "m.onnx", [np.zeros((1, 5, 8))], "detect", ["a"], 64)
    empty = tmp_path / "empty.jpg"
    empty.touch()
    code, output = run_pictrain(capsys, "predict", str(empty), "--model", str(model))
    assert code == 2
    assert one_error_line(output) == f"error: {empty} is empty (0 bytes)"


# --- Ctrl-C on a command that is not a run -----------------------------------------------------


def interrupted(command: list[str], started: Callable[[], bool], **kwargs: object) -> None:
    """`command` in a subprocess, sent SIGINT (Ctrl-C) once `started()`: it must exit 130 with
    one line and no traceback."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )
    try:
        deadline = time.monotonic() + 120
        while not started():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert err.splitlines() == ["stopped by SIGINT"], err


def test_ctrl_c_while_making_the_demo_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    command = [*PICTRAIN, "demo", "--data-only", "--data", str(data), "--images", "100000"]
    interrupted(command, lambda: any((data / "train" / "images").glob("*")), cwd=tmp_path)


def test_ctrl_c_while_a_workflow_command_waits_on_the_platform(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.faults.add("GET", "/api/home/ping", latency=5.0)
    env = {**os.environ, **loopback_env(), **emulator.user_env()}
    command = [*PICTRAIN, "register", "yolov8-detection", "--tag", "t", "--registry", "r"]
    command += ["--images-dir", str(IMAGES)]
    interrupted(
        command, lambda: bool(emulator.requests("GET", "/api/home/ping")), cwd=tmp_path, env=env
    )


def test_a_file_put_in_place_onto_a_folder_names_the_folder(tmp_path: Path) -> None:
    """`os.replace(part, out)` onto a folder: the folder is what the user fixes, not the part
    file the command wrote first."""
    from pictrain.errors import user_facing

    part, out = tmp_path / "out.json.part", tmp_path / "out.json"
    part.write_text("{}")
    out.mkdir()
    with pytest.raises(OSError) as failed:
        part.replace(out)
    said = user_facing(failed.value)
    assert said is not None and str(said) == f"{out} is a folder, not a file"
