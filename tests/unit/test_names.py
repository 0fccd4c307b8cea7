"""What a run stores is named once, nowhere else: in pictrain.platform.base, but for the names
that layers below the platform read too, each with what it names: the exports'
(pictrain.exportformats) and the starting weights' (pictrain.starting)."""

from __future__ import annotations

import re
from pathlib import Path

from pictrain import exportformats, starting
from pictrain.platform import base
from pictrain.train.runner import saved_weights

PACKAGE = Path(base.__file__).resolve().parents[1]
OWNERS = {Path(m.__file__).resolve(): m for m in (base, exportformats, starting)}
NAMES = {v for m in OWNERS.values() for k, v in vars(m).items() if k.endswith("_ARTIFACT")}
# Log names such as "parameters" are also ordinary words and dictionary keys: only the calls
# that read or write a log are scanned for them.
LOG_NAMES = {value for key, value in vars(base).items() if key.endswith("_LOG")}
# Files that other tools name, beside ours: ultralytics' TorchScript extra file.
THEIRS = ('"config.txt"',)
LOG_CALL = re.compile(r'(?:get_log\(|get_log, |\.log\()\s*"([^"]+)"')


def test_every_stored_name_is_spelled_once() -> None:
    assert {"model-latest", "config", "manifest", "best-model", "last-checkpoint"} <= NAMES
    assert {"pretrained-weights", "checkpoint-weights-latest"} <= NAMES
    spelled = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in OWNERS
        for name in NAMES
        if f'"{name}' in _without_theirs(path.read_text())
    ]
    assert not spelled, spelled


def _without_theirs(text: str) -> str:
    for name in THEIRS:
        text = text.replace(name, "")
    return text


def test_saved_weights_are_best_then_last(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    assert saved_weights(tmp_path) == []
    for name in ("last.pt", "best.pt"):
        (weights / name).write_bytes(b"w")
    assert saved_weights(tmp_path) == [weights / "best.pt", weights / "last.pt"]


def test_log_names_are_spelled_once() -> None:
    assert {"parameters", "labelmap", "failure reason"} <= LOG_NAMES
    spelled = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in LOG_CALL.findall(path.read_text())
        if name in LOG_NAMES
    ]
    assert not spelled, spelled
