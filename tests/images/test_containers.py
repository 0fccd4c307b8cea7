"""What every image must do at run time (built on the stand-in base; needs a Docker daemon)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from pictrain.envvars import GIT_SHA, MODEL_CONFIG
from pictrain.platform.base import BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT
from tests.images.build_inputs import SENTINEL_TOKEN, build_ca, checkout_sha
from tests.images.dockerutil import Docker, offline_run_flags

pytestmark = pytest.mark.images


def test_runs_as_non_root(docker: Docker, model_image: str) -> None:
    user = docker.inspect(model_image)["Config"]["User"]
    assert user and user.split(":")[0] not in {"", "0", "root"}, user
    ids = docker.run(model_image, "id", "-u").stdout.strip()
    assert ids != "0"


def test_tini_is_pid_1(docker: Docker, model_image: str) -> None:
    config = docker.inspect(model_image)["Config"]
    assert config["Entrypoint"] == ["tini", "-g", "--"]
    assert config["Cmd"] == ["pictrain", "run"]
    cmdline = docker.run(model_image, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert cmdline[0].endswith("tini"), cmdline


def test_help_works_with_network_off(docker: Docker, model_image: str) -> None:
    proc = docker.run(model_image, "pictrain", "--help", flags=["--network", "none"], timeout=60)
    assert "run" in proc.stdout


def test_ultralytics_offline_assets_baked(docker: Docker, model_image: str) -> None:
    """Settings (sync off) and the font are in the image: nothing to download at run time."""
    script = (
        "import json, os, pathlib;"
        "d = pathlib.Path(os.environ['YOLO_CONFIG_DIR']) / 'Ultralytics';"
        "s = json.loads((d / 'settings.json').read_text());"
        "print(s['sync'], (d / 'Arial.ttf').stat().st_size > 0, os.environ['YOLO_OFFLINE'])"
    )
    out = docker.run(model_image, "python", "-c", script, flags=["--network", "none"])
    assert out.stdout.split() == ["False", "True", "1"]


def test_only_headless_opencv(docker: Docker, model_image: str) -> None:
    script = (
        "import importlib.metadata as m, cv2;"
        "names = {d.metadata['Name'].lower() for d in m.distributions()};"
        "print('opencv-python' in names, 'opencv-python-headless' in names)"
    )
    out = docker.run(model_image, "python", "-c", script, flags=["--network", "none"])
    assert out.stdout.split() == ["False", "True"]


def test_bytecode_compiled(docker: Docker, model_image: str) -> None:
    """Without .pyc files every process recompiles torch (~10 s)."""
    out = docker.run(
        model_image,
        "bash",
        "-c",
        "ls /opt/venv/lib/python3*/site-packages/torch/__pycache__ | head -1",
    )
    assert out.stdout.strip().endswith(".pyc")


def test_one_cuda_stack(docker: Docker, model_image: str) -> None:
    """torch's bundled CUDA is the only one: none from the distro, none under /usr/local/cuda."""
    script = "import torch; print(torch.version.cuda)"
    cuda = docker.run(model_image, "python", "-c", script).stdout.strip()
    flavour = docker.inspect(model_image)["Config"]["Labels"]["ai.picsellia.pictrain.cuda"]
    assert cuda.split(".")[0] == flavour.split(".")[0], (cuda, flavour)
    env = dict(e.split("=", 1) for e in docker.inspect(model_image)["Config"]["Env"])
    assert env["NVIDIA_REQUIRE_CUDA"] == f"cuda>={flavour.split('.')[0]}.0"
    libs = docker.run(
        model_image,
        "bash",
        "-c",
        "ls /usr/local/cuda*/lib64/libcublas* /usr/lib/*/libcublas* 2>/dev/null; true",
    )
    assert libs.stdout.strip() == ""


def test_writable_for_an_arbitrary_uid(docker: Docker, model_image: str) -> None:
    """Like platforms that run images under another UID with GID 0 (OpenShift, some k8s)."""
    docker.run(
        model_image,
        "bash",
        "-c",
        "touch /workspace/x /opt/pictrain/ultralytics/Ultralytics/settings.json "
        "&& mkdir -p /workspace/runs/x && touch $HOME/x",
        flags=["--user", "12345:0"],
    )


def test_labels(docker: Docker, model_image: str) -> None:
    labels = docker.inspect(model_image)["Config"]["Labels"]
    for key in ("title", "version", "source", "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert re.fullmatch(r".+-cu\d+", labels["org.opencontainers.image.version"])


def test_git_sha_baked(docker: Docker, model_image: str) -> None:
    """The run manifest's git_sha (pictrain.artifacts reads PICTRAIN_GIT_SHA) is not null."""
    if not checkout_sha():
        pytest.skip("not a git checkout: nothing to bake")
    env = dict(e.split("=", 1) for e in docker.inspect(model_image)["Config"]["Env"])
    assert env.get(GIT_SHA.name) == checkout_sha()


def test_model_config_baked(docker: Docker, model_image: str) -> None:
    env = dict(e.split("=", 1) for e in docker.inspect(model_image)["Config"]["Env"])
    path = env[MODEL_CONFIG.name]
    docker.run(
        model_image,
        "python",
        "-c",
        f"import tomllib; c = tomllib.load(open({path!r}, 'rb')); assert c['task']",
    )


def test_no_secret_in_image(docker: Docker, detection_image: str) -> None:
    """Neither the token (in .env, in the builder's env) nor the CA secret reaches a layer."""
    info = docker.inspect(detection_image)
    names = {e.split("=", 1)[0] for e in info["Config"]["Env"]}
    assert not names & {"api_token", "API_TOKEN", "PICSELLIA_TOKEN", "SSL_CERT_FILE"}
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", detection_image).stdout
    assert SENTINEL_TOKEN not in history
    assert "BEGIN CERTIFICATE" not in history
    docker.run(
        detection_image,
        "bash",
        "-c",
        "test ! -e /run/secrets/ca && ! ls -a / /src /workspace /opt/pictrain 2>/dev/null"
        " | grep -qx .env",
    )

    needles = [SENTINEL_TOKEN.encode()]
    ca_line = _host_only_ca_line(docker, detection_image)
    if ca_line:
        needles.append(ca_line)
    found = _scan_saved_image(docker, detection_image, needles)
    assert not found, f"found in the image's layers: {found}"


def _host_only_ca_line(docker: Docker, image: str) -> bytes | None:
    """A line of a certificate that the build's CA secret has and the image holds nowhere of
    its own: not in the distro's bundle, not in certifi's (Mozilla's roots, newer or older than
    the distro's: a host with another ca-certificates would pick one and find it there)."""
    ca = build_ca()
    if ca is None:
        return None
    script = (
        "import certifi, pathlib;"
        "bundles = ('/etc/ssl/certs/ca-certificates.crt', certifi.where());"
        "print(*(pathlib.Path(b).read_text() for b in bundles))"
    )
    own = docker.run(image, "python", "-c", script).stdout
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END", ca.read_text(), re.S)
    for block in blocks:
        lines = [ln for ln in block.splitlines() if len(ln) == 64]
        if lines and lines[len(lines) // 2] not in own:
            return lines[len(lines) // 2].encode()
    return None


def _scan_saved_image(docker: Docker, image: str, needles: list[bytes]) -> list[bytes]:
    """Stream `docker save` (uncompressed layer tars) and look for the needles in the bytes."""
    proc = subprocess.Popen([docker.cli, "save", image], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    found: set[bytes] = set()
    keep = max(len(n) for n in needles)
    tail = b""
    try:
        while chunk := proc.stdout.read(8 << 20):
            data = tail + chunk
            found.update(n for n in needles if n in data)
            tail = data[-keep:]
    finally:
        proc.stdout.close()
        assert proc.wait(timeout=600) == 0
    return sorted(found)


def test_sigterm_stops_a_local_run_with_its_weights(
    docker: Docker, detection_image: str, make_dataset, runs_dir: Path
) -> None:
    """tini forwards SIGTERM to a local run: it stops training, keeps the best weights and the
    checkpoint, and says why. (How long a stop takes is measured, not asserted:
    scripts/measure_stop.py, docs/stopping.md.)"""
    data = make_dataset(
        {"epochs": 1000, "batch_size": 4, "image_size": 64, "device": "cpu", "workers": 0}
    )
    container = docker.start(
        detection_image,
        "pictrain",
        "run",
        "--local",
        "/data",
        "--name",
        "sigterm",
        flags=offline_run_flags(data, runs_dir),
    )
    run = runs_dir / "sigterm"
    # training, with its signal handler, is under way once an epoch left its checkpoint
    container.wait_for((run / "train" / "weights" / "last.pt").exists)
    docker("kill", "--signal", "TERM", container.name)
    code = container.wait(timeout=300)
    logs = container.logs()[-3000:]
    assert code == 143, logs
    status = json.loads((run / "status.json").read_text())
    assert (status["status"], status["reason"]) == ("failed", "stopped by SIGTERM"), logs
    for name in (BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT):
        assert (run / "artifacts" / f"{name}.pt").is_file(), logs
