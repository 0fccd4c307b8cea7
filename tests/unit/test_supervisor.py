"""The supervisor with a real child process against the emulator: why a job failed comes from
status.json, a death is reported, and SIGTERM reaches the worker once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pictrain.platform.env import PicselliaContext
from pictrain.platform.supervisor import supervise
from tests.emulator import Emulator, SeededIds

# A stand-in worker: writes status.json as the job does (pictrain.runstatus), then behaves as
# told by its argument.
WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from pictrain.runstatus import JobStatus
    from pictrain.runstatus import write_status

    run_dir, behaviour = Path(sys.argv[1]), sys.argv[2]
    write_status(run_dir, JobStatus.RUNNING)
    print("worker started", flush=True)
    if behaviour == "fail":
        write_status(run_dir, JobStatus.FAILED, "the data was bad", 2)
        sys.exit(2)
    if behaviour == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    received = []
    signal.signal(signal.SIGTERM, lambda *_: received.append(1))
    (run_dir / "ready").write_text(str(os.getpgid(0)))
    while not received:
        time.sleep(0.05)
    (run_dir / "first").touch()
    deadline = time.monotonic() + 60
    while not (run_dir / "second-sent").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # room for the second SIGTERM to arrive, were it to reach this process
    (run_dir / "sigterms").write_text(str(len(received)))
    write_status(run_dir, JobStatus.FAILED, "stopped by SIGTERM", 143)
    sys.exit(143)
    """
)


def context(emu: Emulator, ids: SeededIds) -> PicselliaContext:
    return PicselliaContext.model_validate(emu.job_env(ids))


def worker(tmp_path: Path, run_dir: Path, behaviour: str) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return [sys.executable, str(script), str(run_dir), behaviour]


def test_the_reason_comes_from_status_json(
    emulator: Emulator, seeded: SeededIds, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    code = supervise(worker(tmp_path, run_dir, "fail"), context(emulator, seeded), run_dir)
    assert code == 2
    last = (run_dir / "job.log").read_text().splitlines()[-1]
    assert last == "job finished with exit code 2: the data was bad"
    assert emulator.state.jobs[seeded.job_id].status == "FAILED"
    assert emulator.state.experiments[seeded.experiment_id].status == "FAILED"


def test_a_killed_worker_is_reported(emulator: Emulator, seeded: SeededIds, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code = supervise(worker(tmp_path, run_dir, "die"), context(emulator, seeded), run_dir)
    assert code == 128 + signal.SIGKILL
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "killed by SIGKILL" in status["reason"]
    experiment = emulator.state.experiments[seeded.experiment_id]
    assert experiment.status == "FAILED"
    assert "killed by SIGKILL" in experiment.logs["failure reason"].data
    assert emulator.state.jobs[seeded.job_id].status == "FAILED"


SUPERVISOR = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from pictrain.platform.env import read_context
    from pictrain.platform.supervisor import supervise

    sys.exit(supervise(sys.argv[2:], read_context(os.environ), Path(sys.argv[1])))
    """
)


@contextmanager
def _supervisor(
    emulator: Emulator, seeded: SeededIds, tmp_path: Path, run_dir: Path
) -> Iterator[subprocess.Popen[str]]:
    """The supervisor of a worker that waits for its signal, in a process group of its own
    (as under tini, and away from pytest's); killed with its group if the test left it
    running."""
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(run_dir), *worker(tmp_path, run_dir, "wait")],
        env={**os.environ, **emulator.job_env(seeded)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield supervisor
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.communicate()


def _sigterm_group_when(supervisor: subprocess.Popen[str], ready: Callable[[], bool]) -> None:
    """SIGTERM to the supervisor's whole group once `ready()`, as `tini -g` sends it."""
    deadline = time.monotonic() + 60
    while not ready():
        assert supervisor.poll() is None and time.monotonic() < deadline, supervisor.stdout
        time.sleep(0.05)
    os.killpg(supervisor.pid, signal.SIGTERM)


def test_sigterm_to_the_whole_group_reaches_the_worker_once(
    emulator: Emulator, seeded: SeededIds, tmp_path: Path
) -> None:
    """As `tini -g` sends it: to every process of the supervisor's group, and again from an
    impatient orchestrator. The second comes once the worker has handled the first (two sent
    at once would merge into one pending signal and prove nothing): a worker in the group, or
    a supervisor that forwards each signal, gives the worker two."""
    run_dir = tmp_path / "run"
    with _supervisor(emulator, seeded, tmp_path, run_dir) as supervisor:
        _sigterm_group_when(supervisor, (run_dir / "ready").exists)
        _sigterm_group_when(supervisor, (run_dir / "first").exists)
        (run_dir / "second-sent").touch()
        output, _ = supervisor.communicate(timeout=60)
    assert int((run_dir / "ready").read_text()) != supervisor.pid
    assert supervisor.returncode == 143, output
    assert (run_dir / "sigterms").read_text() == "1"
    assert "job finished with exit code 143: stopped by SIGTERM" in output


def test_sigterm_before_the_worker_starts_stops_the_job_there(
    emulator: Emulator, seeded: SeededIds, tmp_path: Path
) -> None:
    """A stop while the supervisor still connects: no worker is started, and the job is
    reported stopped (before, the default handler killed the supervisor unreported)."""
    run_dir = tmp_path / "run"
    job_route = re.compile(r"^/api/organization/[^/]+/jobv2s/find$")  # get_job_by_id
    emulator.faults.add("GET", job_route, latency=3.0)
    with _supervisor(emulator, seeded, tmp_path, run_dir) as supervisor:
        _sigterm_group_when(supervisor, lambda: bool(emulator.requests("GET", job_route)))
        output, _ = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 143, output
    assert "worker started" not in output
    assert output.splitlines()[-1] == "job finished with exit code 143: stopped by SIGTERM"
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["status"], status["reason"]) == ("failed", "stopped by SIGTERM")
    experiment = emulator.state.experiments[seeded.experiment_id]
    assert experiment.status == "FAILED"
    assert experiment.logs["failure reason"].data == "stopped by SIGTERM"
    job = emulator.state.jobs[seeded.job_id]
    assert job.status == "FAILED" and job.exit_code == 143
