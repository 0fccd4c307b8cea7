"""Peak memory of one call, measured in a fresh process: `peak_mib("module:function", *args)`.

The child imports the module, resets the kernel's peak-RSS mark (`/proc/self/clear_refs`,
Linux), calls the function with the string arguments and prints how far the resident set rose
above where it stood before the call: the call's own peak, imports and earlier runs left out.
"""

from __future__ import annotations

import gc
import importlib
import subprocess
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")


def available() -> bool:
    """Whether peak memory can be measured here (Linux with /proc)."""
    return STATUS.is_file() and Path("/proc/self/clear_refs").exists()


def peak_mib(target: str, *args: str, preload: tuple[str, ...] = ()) -> float:
    """MiB the call `target(*args)` ("package.module:function") added at its peak; the
    `preload` modules are imported first, so that their import is not counted."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench.memory", ",".join(preload), target, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{target} failed in its own process:\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def _kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in {STATUS}")


def _main(preload: str, target: str, *args: str) -> None:
    for name in filter(None, preload.split(",")):
        importlib.import_module(name)
    module, _, function = target.partition(":")
    call = getattr(importlib.import_module(module), function)
    gc.collect()
    before = _kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS mark := current RSS
    call(*args)
    print(f"{(_kib('VmHWM') - before) / 1024:.1f}")


if __name__ == "__main__":
    _main(*sys.argv[1:])
