"""The emulator in a child process, every request slowed by a fixed latency, for the platform
benchmarks: a real server is remote, so its request handling must not compete with the client
for this process's GIL and cores.

`python -m scripts.bench.remote ASSETS FILE_BYTES LATENCY` seeds one experiment whose `test`
version holds ASSETS files of FILE_BYTES random bytes (one box each), prints the job's variables
as one JSON line, and serves until its stdin closes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.emulator.emulator import Emulator, loopback_env

SDK_QUIET = {"PICSELLIA_SDK_CUSTOM_LOGGING": "1"}  # the SDK leaves root logging alone


@contextmanager
def remote_emulator(assets: int, file_bytes: int, latency: float) -> Iterator[dict[str, str]]:
    """The child's job variables; loopback kept off any proxy in this process too."""
    os.environ.update(loopback_env() | SDK_QUIET)
    command = [sys.executable, "-m", "scripts.bench.remote", str(assets), str(file_bytes)]
    process = subprocess.Popen(
        [*command, str(latency)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulator process exited with {process.wait()}")
        yield json.loads(line)
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def _seed_files(folder: Path, assets: int, file_bytes: int) -> tuple[Path, Path]:
    images = folder / "images"
    images.mkdir(parents=True)
    entries, annotations = [], []
    for k in range(assets):
        name = f"{k:06d}.jpg"
        (images / name).write_bytes(os.urandom(file_bytes))
        entries.append({"id": k, "file_name": name, "width": 640, "height": 480})
        box = [k % 500, k % 300, 40 + k % 100, 30 + k % 80]
        annotations.append({"id": k, "image_id": k, "category_id": k % 3, "bbox": box})
    categories = [{"id": k, "name": name} for k, name in enumerate(("cat", "dog", "fox"))]
    coco = folder / "annotations.json"
    document = {"images": entries, "annotations": annotations, "categories": categories}
    coco.write_text(json.dumps(document))
    return images, coco


def main() -> None:
    assets, file_bytes, latency = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    with tempfile.TemporaryDirectory(prefix="pictrain-bench-remote-") as tmp:
        split = _seed_files(Path(tmp), assets, file_bytes)
        with Emulator.start() as emulator:
            ids = emulator.seed_experiment({"test": split}, parameters={})
            emulator.faults.add("*", "*", latency=latency, times=None)
            print(json.dumps(emulator.job_env(ids)), flush=True)
            sys.stdin.read()


if __name__ == "__main__":
    main()
