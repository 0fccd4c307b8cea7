"""The text files users write by hand (the project file, parameters): read as UTF-8, or refused
in one line that says where they are not. (A folder in a file's place is `errors.user_facing`'s
to say.)"""

from __future__ import annotations

from pathlib import Path

from pictrain.errors import UserError


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
