"""What this project folder did on the platform that the SDK cannot read back (the jobs it
launched, the continuous-training set-up it posted): a JSON object in `.pictrain/`, read and
written while holding a lock beside the file, so two commands at once take turns."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pictrain.errors import UserError

RECORDS_DIR = Path(".pictrain")


class Records:
    """key -> a JSON value; each `record` is written through at once (a command stopped half
    way keeps what it did)."""

    def __init__(self, path: Path, known: dict[str, Any]) -> None:
        self.path, self._known = path, known

    @classmethod
    @contextmanager
    def locked(cls, path: Path, if_damaged: str) -> Iterator[Records]:
        """`if_damaged`: what the user does about a file that is not what pictrain writes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.with_name(f"{path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield cls(path, _read(path, if_damaged))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def get(self, key: Any) -> Any:
        return self._known.get(str(key))

    def record(self, key: Any, value: Any) -> None:
        self._known[str(key)] = value
        partial = self.path.with_name(f"{self.path.name}.part")
        partial.write_text(json.dumps(self._known, indent=1))
        partial.replace(self.path)


def _read(path: Path, if_damaged: str) -> dict[str, Any]:
    """A damaged file (cut off by a crash or a full disk before it was written whole) is
    refused, not read as "nothing done": what it records keeps a command from acting twice."""
    if not path.is_file():
        return {}
    try:
        known = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        known = None
    if not isinstance(known, dict):
        raise UserError(f"{path} is damaged (not the JSON object pictrain writes): {if_damaged}")
    return known
