"""The parallel downloader over the emulator's presigned URLs: a file is under its final name
only when complete, failures are reported per file, a relaunch asks only for what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pictrain.errors import UserError
from pictrain.platform.downloads import (
    WORKERS_ENV,
    RemoteFile,
    download_all,
    download_workers,
)
from pictrain.platform.retry import RetryPolicy
from tests.emulator import Emulator

POLICY = RetryPolicy(attempts=3, base_delay=0.01)


def stored_files(emu: Emulator, folder: Path, count: int) -> list[RemoteFile]:
    files = []
    for k in range(count):
        name = f"data/{k}/file-{k}.bin"
        emu.state.storage.put(name, bytes([k % 256]) * (1000 + k))
        url = emu.state.storage.download_url(name)
        files.append(RemoteFile(folder / f"{k}.bin", lambda url=url: url, lambda url=url: url))
    return files


def test_every_file_arrives_whole_with_more_threads_than_files(
    emulator: Emulator, tmp_path: Path
) -> None:
    files = stored_files(emulator, tmp_path, 20)
    report = download_all(files, POLICY, workers=64)
    assert (report.fetched, report.present, report.failed) == (20, 0, {})
    assert [f.dest.read_bytes() for f in files] == [
        bytes([k]) * (1000 + k) for k in range(len(files))
    ]
    assert all(r.status == 200 for r in emulator.requests("GET", "/_storage/*"))


def test_a_cut_off_body_is_retried_and_never_left_under_the_final_name(
    emulator: Emulator, tmp_path: Path
) -> None:
    files = stored_files(emulator, tmp_path, 2)
    emulator.faults.add("GET", "/_storage/object/data/0/*", truncate=True)
    emulator.faults.add("GET", "/_storage/object/data/1/*", truncate=True, times=None)
    report = download_all(files, POLICY, workers=2)
    assert report.fetched == 1 and files[0].dest.read_bytes() == bytes([0]) * 1000
    assert list(report.failed) == ["1.bin"] and not files[1].dest.exists()
    again = download_all(files, POLICY, workers=2)  # a relaunch: only the missing one is asked
    assert again.present == 1 and list(again.failed) == ["1.bin"]


def test_the_thread_count_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKERS_ENV.name, "12")
    assert download_workers() == 12
    monkeypatch.setenv(WORKERS_ENV.name, "0")
    with pytest.raises(UserError, match=f"{WORKERS_ENV.name} must be a positive whole number"):
        download_workers()
