"""The job's live logs reach a jobv2 as Picsellia's log monitor sends them (the real SDK against
the emulator): lines in buffers, a progress bar redrawn at its own line number, the exit code
last, the logging file in the monitor's layout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pictrain.platform.joblog import JobLogForwarder
from pictrain.platform.logstream import LogLine
from tests.emulator import Emulator, SeededIds


def call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def numbered(post: Any) -> list[tuple[int, str]]:
    """The (line number, line) pairs one post covers: a buffer spans its lines' count."""
    texts = post.log if isinstance(post.log, list) else [post.log]
    return list(enumerate(texts, start=post.line_nb))


def test_buffers_a_bar_redrawn_in_place_and_the_exit_code(
    emulator: Emulator, seeded: SeededIds, tmp_path: Path
) -> None:
    job = emulator.client().get_job_by_id(str(seeded.job_id))
    posts = emulator.state.jobs[seeded.job_id].logging
    forwarder = JobLogForwarder(job, call, period=0.05)
    forwarder.add([LogLine("starting"), LogLine("epoch 1/2  10%", partial=True)])
    deadline = time.monotonic() + 30
    while not any("epoch 1/2  10%\n" in post.log for post in posts):
        assert time.monotonic() < deadline, "the bar was never sent"
        time.sleep(0.05)
    forwarder.add([LogLine("epoch 1/2 100%"), LogLine("epoch 2/2"), LogLine("done")])
    stored = forwarder.close(0, tmp_path / "job-log.json")

    view = emulator.state.jobs[seeded.job_id].view
    lines = ["--#--Training", "starting", "epoch 1/2 100%", "epoch 2/2", "done"]
    assert view == {n: f"{line}\n" for n, line in enumerate(lines)}
    *entries, exit_code = posts
    for post in entries:  # one line per post, or a list of lines as a buffer
        assert (post.special, type(post.log)) in {(False, str), ("buffer", list)}, post
    assert entries[-1].special == "buffer" and entries[-1].line_nb == 2  # the last three
    at_the_bar = [text for post in entries for n, text in numbered(post) if n == 2]
    assert at_the_bar == ["epoch 1/2  10%\n", "epoch 1/2 100%\n"]  # redrawn at its number
    assert (exit_code.line_nb, exit_code.special, exit_code.log) == (5, "exit_code", "0")
    layout = json.loads(stored.read_text())
    assert layout["--#--Training"]["logs"] == {str(n): line for n, line in view.items()}
    assert layout["exit_code"]["exit_code"] == 0
    assert emulator.state.jobs[seeded.job_id].logging_object_name is not None
