"""`pictrain fetch-weights`, the image build's step: every pinned file in place, from the
builder's folder or the release, and a file whose sha256 differs from its pin fails the build."""

from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pictrain.errors import UserError
from pictrain.pretrained import Pin, install
from tests.emulator.emulator import loopback_env

PICTRAIN = [sys.executable, "-m", "pictrain"]


def _pin(model: str, content: bytes) -> Pin:
    return Pin(model, hashlib.sha256(content).hexdigest())


@pytest.fixture
def release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A release host on 127.0.0.1 serving `release/` (yolov8s.pt only), reached directly."""
    for name, value in loopback_env().items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "yolov8s.pt").write_bytes(b"released s")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_local_files_first_the_others_from_the_release(tmp_path: Path, release: str) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "yolov8n.pt").write_bytes(b"local n")
    dest = tmp_path / "weights"
    install([_pin("yolov8n", b"local n"), _pin("yolov8s", b"released s")], dest, local, release)
    assert (dest / "yolov8n.pt").read_bytes() == b"local n"
    assert (dest / "yolov8s.pt").read_bytes() == b"released s"
    assert sorted(p.name for p in dest.iterdir()) == ["yolov8n.pt", "yolov8s.pt"]


def test_a_file_whose_checksum_differs_is_not_baked(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "yolov8n.pt").write_bytes(b"tampered")
    dest = tmp_path / "weights"
    pin = _pin("yolov8n", b"the real one")
    with pytest.raises(
        UserError, match=rf"yolov8n\.pt from .* has sha256 \w+, not the {pin.sha256}"
    ):
        install([pin], dest, local, "")
    assert list(dest.iterdir()) == []


def test_a_file_the_release_does_not_have_fails_naming_it(tmp_path: Path, release: str) -> None:
    with pytest.raises(UserError, match=r"could not download .*/yolo11n\.pt: HTTP 404"):
        install([_pin("yolo11n", b"x")], tmp_path / "weights", None, release)


def test_without_a_release_url_a_missing_local_file_fails(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"yolov8n\.pt is not in .* and no release URL is set"):
        install([_pin("yolov8n", b"x")], tmp_path / "weights", tmp_path, "")


@pytest.mark.parametrize("text", ["yolov8n", "yolov8n=abc", "../x=" + "0" * 64, "=" + "0" * 64])
def test_a_malformed_pin_is_refused(text: str) -> None:
    with pytest.raises(UserError, match="is not <model>=<sha256"):
        Pin.parse(text)


def test_the_command_fails_the_build_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "yolov8n.pt").write_bytes(b"tampered")
    pin = f"yolov8n={hashlib.sha256(b'real').hexdigest()}"
    done = subprocess.run(
        [*PICTRAIN, "fetch-weights", "--into", str(tmp_path / "w"), "--local", str(tmp_path), pin],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "not the" in errors[0] and "Traceback" not in done.stderr
