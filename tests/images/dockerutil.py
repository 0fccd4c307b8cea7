"""Docker helpers for the image tests: find the CLI, check the daemon, run containers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "docker" / "bin"


def _ok(cmd: Sequence[str], timeout: float = 20) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker_cli() -> str | None:
    """$DOCKER, else a `docker` with buildx, else the one `make docker-tools` unpacks."""
    if os.environ.get("DOCKER"):
        cli = os.environ["DOCKER"]  # a name on PATH or a path; the tests change directories
        return str(Path(cli).resolve()) if "/" in cli else (shutil.which(cli) or cli)
    system = shutil.which("docker")
    if system and _ok([system, "buildx", "version"]):
        return system
    if (TOOLS / "docker").exists():
        return str(TOOLS / "docker")
    return system


def buildx_cli() -> list[str] | None:
    """A command that runs buildx: `docker buildx` or the stand-alone binary (needs no daemon)."""
    cli = docker_cli()
    if cli and _ok([cli, "buildx", "version"]):
        return [cli, "buildx"]
    if (TOOLS / "docker-buildx").exists():
        return [str(TOOLS / "docker-buildx")]
    return None


def daemon_problem(cli: str | None) -> str | None:
    """None when a daemon answers, else why not (the skip reason)."""
    if cli is None:
        return "no docker CLI (run `make docker-tools`)"
    try:
        proc = subprocess.run(
            [cli, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker version` failed: {exc}"
    # (`docker info` exits 0 without a daemon; `docker version` does not)
    if proc.returncode != 0 or not proc.stdout.strip():
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"no Docker daemon reachable ({last})"
    return None


@dataclass
class Docker:
    """A docker CLI bound to a daemon, with the few commands the tests need."""

    cli: str
    started: list[str] = field(default_factory=list)

    def __call__(
        self,
        *args: str,
        timeout: float = 120,
        check: bool = True,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.cli, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} -> {proc.returncode}\n{proc.stdout[-4000:]}\n"
                f"{proc.stderr[-4000:]}"
            )
        return proc

    def inspect(self, image: str) -> dict:
        return json.loads(self("image", "inspect", image).stdout)[0]

    def run(
        self,
        image: str,
        *command: str,
        flags: Sequence[str] = (),
        timeout: float = 300,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """`docker run --rm` to completion."""
        return self("run", "--rm", *flags, image, *command, timeout=timeout, check=check)

    def start(
        self,
        image: str,
        *command: str,
        flags: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> Container:
        """`docker run -d`; removed by `cleanup()` (the fixture's finalizer). `env` reaches
        the container by name only (`-e NAME`): its values stay off the command line."""
        name = f"pictrain-test-{uuid.uuid4().hex[:8]}"
        by_name = [arg for key in env or {} for arg in ("-e", key)]
        cli_env = {**os.environ, **(env or {})}
        self("run", "-d", "--name", name, *by_name, *flags, image, *command, env=cli_env)
        self.started.append(name)
        return Container(self, name)

    def cleanup(self) -> None:
        for name in self.started:
            self("rm", "-f", name, check=False)
        self.started.clear()


@dataclass
class Container:
    docker: Docker
    name: str

    def running(self) -> bool:
        out = self.docker("inspect", "-f", "{{.State.Running}}", self.name, check=False)
        return out.stdout.strip() == "true"

    def logs(self) -> str:
        proc = self.docker("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def wait_for(self, condition: Callable[[], bool], timeout: float = 300) -> None:
        """Until `condition()` holds: a state the job reached, not a guess at how long it takes
        on a loaded machine. Fails with the logs if the container ends or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.running(), self.logs()[-3000:]
            assert time.monotonic() < deadline, self.logs()[-3000:]
            time.sleep(0.5)

    def wait(self, timeout: float) -> int:
        """Exit code; raises TimeoutError when still running after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                state = self.docker("inspect", "-f", "{{.State.ExitCode}}", self.name)
                return int(state.stdout.strip())
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} still running after {timeout} s")


def offline_run_flags(data: Path, runs_dir: Path) -> list[str]:
    """`docker run` flags of a local-folder job: no network, room for the dataloader, the
    dataset read-only at /data and the runs written back to the host."""
    return [
        "--network",
        "none",
        "--shm-size",
        "1g",
        "-v",
        f"{data}:/data:ro",
        "-v",
        f"{runs_dir}:/workspace/runs",
    ]
