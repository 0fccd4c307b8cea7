"""Make ultralytics run with no network (no hub, no font or version fetch, no runtime pip) and
load weights files without running code from them (`pictrain.safeload`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pictrain.envvars import YOLO_CONFIG_DIR

# Read once at ultralytics import time, so this must run before anything imports it.
_ENV_DEFAULTS = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
    "YOLO_VERBOSE": "True",
    # importing the picsellia SDK otherwise replaces the root logging configuration
    "PICSELLIA_SDK_CUSTOM_LOGGING": "1",
}
# Forced, whatever the environment says: a weights file is never unpickled unrestricted.
_ENV_FORCED = {"ULTRALYTICS_SAFE_LOAD": "1"}
_SETTINGS = {
    "sync": False,
    "hub": False,
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "neptune": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
}


def configure_environment() -> None:
    """Set ultralytics' offline switches unless the user set them, and its safe loading in any
    case; call before importing it (processes it starts, DDP workers included, inherit them)."""
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.update(_ENV_FORCED)


def settings_dir() -> Path:
    """Where ultralytics looks for settings.json and fonts (mirrors its own rule on Linux)."""
    base = YOLO_CONFIG_DIR.read()
    root = Path(base) if base else Path.home() / ".config"
    return root / "Ultralytics"


def install_assets() -> Path:
    """Write the settings and the font ultralytics would otherwise download at every run.

    ultralytics fetches Arial.ttf for its plots even with plots off; any TTF under that name in
    its settings dir satisfies it, and matplotlib (one of its dependencies) ships DejaVuSans.
    """
    from matplotlib import get_data_path

    target = settings_dir()
    target.mkdir(parents=True, exist_ok=True)
    font = Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (target / name).exists():
            shutil.copyfile(font, target / name)
    # Through ultralytics' own manager: a hand-written settings.json with a key it does not
    # expect makes it reset every setting to its default (sync on).
    from ultralytics.utils import SETTINGS

    wanted = {k: v for k, v in _SETTINGS.items() if k in SETTINGS and SETTINGS[k] != v}
    if wanted:
        SETTINGS.update(wanted)
    return target
