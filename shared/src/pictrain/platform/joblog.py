"""The job's live logs, sent the way Picsellia's own log monitor sends them.

Read from picselliahq/picsellia-cv-base-docker `base/logs/monitor.py`: every entry is one line
ending in a newline, under a chapter (`part`) named `--#--...` whose first line is its own name;
a progress bar is redrawn in place by posting its line number again; a burst of lines is one
post of a list with `special="buffer"` taking as many line numbers; the run ends with an
`exit_code` entry; the whole log is stored as `{part: {datetime, logs: {line_nb: line}},
exit_code: {exit_code, datetime}}`.

The SDK's `send_logging` posts `job.line_nb` and then increments it, so a blind retry would
post the same line twice: each post sets `line_nb` itself, and a retry lands on the same lines.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from pictrain.platform.logstream import LogLine

log = logging.getLogger(__name__)

LOG_PART = "--#--Training"
EXIT_PART = "--#--End job"  # the monitor's chapter for the exit code
BUFFER = "buffer"
EXIT_CODE = "exit_code"


class JobLogForwarder:
    """Lines are numbered as they come and sent together every `period` seconds, so a chatty
    job costs one request per period, never one per line. `call` runs one platform call (the
    supervisor's best-effort caller): lines it could not send miss from the live view only, the
    stored logging file has them all."""

    def __init__(self, job: Any, call: Callable[..., Any], period: float = 3.0) -> None:
        self._job = job
        self._call = call
        self._period = period
        self._lines: dict[int, str] = {}  # the view as it must end: line number -> line
        self._unsent: set[int] = set()
        self._next = 0
        self._open: int | None = None  # a partial line the next one redraws
        self._started = datetime.now().isoformat()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.add([LogLine(LOG_PART)])
        self._thread = threading.Thread(target=self._loop, name="forward-job-log", daemon=True)
        self._thread.start()

    def add(self, lines: list[LogLine]) -> None:
        with self._lock:
            for line in lines:
                if self._open is not None:
                    number = self._open
                else:
                    number, self._next = self._next, self._next + 1
                self._lines[number] = f"{line.text}\n"
                self._unsent.add(number)
                self._open = number if line.partial else None

    def close(self, exit_code: int, log_file: Path) -> Path:
        """Send what is left, store the whole log as `log_file` (the monitor's JSON layout),
        then the `exit_code` entry; return the file."""
        self._stop.set()
        self._thread.join()
        self._send()
        try:
            log_file.write_text(json.dumps(self._layout(exit_code), indent=1))
        except OSError as exc:  # a full disk: every line was sent all the same
            log.warning("%s not written, not stored: %s", log_file, exc.strerror or exc)
        else:
            self._call("store the logging file", self._job.store_logging_file, str(log_file))
        self._call(
            "send the exit code", self._post, self._next, str(exit_code), EXIT_PART, EXIT_CODE
        )
        return log_file

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            self._send()

    def _send(self) -> None:
        with self._lock:
            numbers, self._unsent = sorted(self._unsent), set()
            lines = dict(self._lines)
        # Runs of consecutive numbers: a redrawn bar and the lines after it are one run.
        for _, run in groupby(enumerate(numbers), key=lambda pair: pair[1] - pair[0]):
            batch = [number for _, number in run]
            texts = [lines[number] for number in batch]
            if len(texts) == 1:
                self._call("send job logs", self._post, batch[0], texts[0], LOG_PART, False)
            else:
                self._call("send job logs", self._post, batch[0], texts, LOG_PART, BUFFER)

    def _post(self, line_nb: int, log: str | list[str], part: str, special: str | bool) -> None:
        self._job.line_nb = line_nb
        self._job.send_logging(log, part, special=special)

    def _layout(self, exit_code: int) -> dict[str, Any]:
        with self._lock:
            logs = {str(number): line for number, line in sorted(self._lines.items())}
        return {
            LOG_PART: {"datetime": self._started, "logs": logs},
            EXIT_CODE: {"exit_code": exit_code, "datetime": datetime.now().isoformat()},
        }
