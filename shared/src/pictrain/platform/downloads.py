"""Many files from presigned URLs, concurrently: sized for latency, bounded in memory, resumable.

The SDK's `MultiAsset.download` runs `cpu_count() + 4` threads over one shared session (whose
pool keeps 10 connections), swallows per-file failures, and takes any existing file as done,
even one cut short. Here: a session per thread (connections kept alive), each file streamed to
`<name>.part`, checked against its Content-Length and only then renamed, so a file under its
final name is complete and a relaunch fetches nothing it already has. Failures are retried with
the project's policy; what still fails is reported, never silently missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from pictrain.envvars import DOWNLOAD_WORKERS as WORKERS_ENV
from pictrain.errors import UserError
from pictrain.platform.connect import first_line
from pictrain.platform.retry import RetryPolicy

# A small file's download is mostly waiting: at 100 ms per request 8 threads fetch 80 files a
# second whatever the link. Throughput is threads / latency until the CPU (~1.5 ms of Python
# per file) or the link saturates; at 100 ms, 64 threads is where one Python process stops
# gaining (docs/benchmarks.md), and 64 connections are modest for any object store.
DOWNLOAD_WORKERS = 64
CHUNK_BYTES = 1 << 20  # memory per thread while streaming a file
TIMEOUT = (10, 60)  # connect, read (between bytes) in seconds
PARTIAL_SUFFIX = ".part"
FORBIDDEN = 403  # an expired presigned URL: ask for a new one, once per attempt


class IncompleteDownload(requests.ConnectionError):
    """Fewer bytes than the Content-Length: a connection cut short, retried like one."""


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch. `url` may call the platform (a presigned URL made on demand);
    `refresh` asks for a new one when the old has expired."""

    dest: Path
    url: Callable[[], str]
    refresh: Callable[[], str]


@dataclass
class DownloadReport:
    fetched: int = 0
    present: int = 0  # already there from an earlier attempt
    failed: dict[str, str] = field(default_factory=dict)  # file name -> reason


def download_workers() -> int:
    """`PICTRAIN_DOWNLOAD_WORKERS`, else the default."""
    value = WORKERS_ENV.read()
    if value is None:
        return DOWNLOAD_WORKERS
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{WORKERS_ENV.name} must be a positive whole number, not {value!r}")
    return int(value)


def download_all(
    files: list[RemoteFile], policy: RetryPolicy, workers: int | None = None
) -> DownloadReport:
    """Fetch every file not already present; never raises for one file: see `failed`."""
    report = DownloadReport()
    pending = iter(files)
    lock = threading.Lock()

    def work() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    remote = next(pending, None)
                if remote is None:
                    return
                if remote.dest.is_file():
                    with lock:
                        report.present += 1
                    continue
                error = _fetch(session, remote, policy)
                with lock:
                    if error is None:
                        report.fetched += 1
                    else:
                        report.failed[remote.dest.name] = error

    count = min(workers or download_workers(), len(files))
    threads = [threading.Thread(target=work, name=f"download-{k}") for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report


def _fetch(session: requests.Session, remote: RemoteFile, policy: RetryPolicy) -> str | None:
    """None once the file is in place, else why it is not (after the policy's retries)."""

    def attempt() -> None:
        try:
            _stream(session, remote.url(), remote.dest)
        except requests.HTTPError as exc:
            if exc.response is None or exc.response.status_code != FORBIDDEN:
                raise
            _stream(session, remote.refresh(), remote.dest)

    try:
        policy.call(f"download {remote.dest.name}", attempt)
    except Exception as exc:
        return first_line(exc)
    return None


def _stream(session: requests.Session, url: str, dest: Path) -> None:
    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    with session.get(url, stream=True, timeout=TIMEOUT) as response:
        response.raise_for_status()
        expected = response.headers.get("Content-Length")
        written = 0
        with partial.open("wb") as out:
            for chunk in response.iter_content(CHUNK_BYTES):
                out.write(chunk)
                written += len(chunk)
    if expected is not None and written != int(expected):
        raise IncompleteDownload(f"{dest.name}: {written} of {expected} bytes")
    partial.replace(dest)
