"""The facts a timing depends on: cores, CPU, load, accelerator, library versions."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

LIBRARIES = ("torch", "ultralytics", "pycocotools", "faster-coco-eval", "numpy", "pillow")


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu: str
    load: str  # 1-minute load average when the benchmark started
    gpu: str
    python: str
    versions: dict[str, str]

    @property
    def short(self) -> str:
        """One line for each benchmark's table."""
        return (
            f"{self.cores} cores ({self.cpu}), {self.gpu}, "
            f"torch {self.versions['torch']}, ultralytics {self.versions['ultralytics']}"
        )


def describe() -> Machine:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return Machine(
        cores=os.cpu_count() or 0,
        cpu=_cpu_model(),
        load=f"{os.getloadavg()[0]:.2f}",
        gpu=gpu,
        python=platform.python_version(),
        versions={name: version(name) for name in LIBRARIES},
    )


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or platform.machine()
