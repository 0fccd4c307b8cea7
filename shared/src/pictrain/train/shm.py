"""Dataloader workers that fit in /dev/shm.

Worker processes hand batches to the trainer through shared memory. Docker gives a container
64 MB of /dev/shm unless it is started with `--ipc host` (Picsellia's flags) or `--shm-size`;
past that, a worker dies with a bus error mid-epoch. Fewer workers train slower but finish.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from pictrain.train.devices import Devices

log = logging.getLogger(__name__)

SHM = Path("/dev/shm")
# Batches a worker holds in shared memory: ultralytics' training loader prefetches 4 per worker,
# its validation loader 2 of twice the batch.
BATCHES_IN_FLIGHT = 4 + 2 * 2
AUTO_BATCH_GUESS = 16  # per GPU, before AutoBatch has sized it (ultralytics' own default)


def worker_bytes(batch_per_gpu: int, image_size: int) -> int:
    """Shared memory one worker needs: its batches in flight as uint8 images."""
    return BATCHES_IN_FLIGHT * batch_per_gpu * 3 * image_size * image_size


def fit_workers(workers: int, devices: Devices, image_size: int, free: int | None = None) -> int:
    """`workers` per GPU, or fewer with one warning when /dev/shm (`free` bytes, default: as
    found) cannot hold their batches. On the CPU ultralytics loads in-process: nothing to check."""
    if workers == 0 or not devices.gpus:
        return workers
    if free is None:
        if not SHM.is_dir():
            return workers
        free = shutil.disk_usage(SHM).free
    gpus = len(devices.gpus)
    per_gpu = devices.batch // gpus if devices.batch >= 1 else AUTO_BATCH_GUESS
    # ultralytics starts at most cpu_count // GPUs workers per GPU
    effective = min(workers, (os.cpu_count() or 1) // gpus)
    each = worker_bytes(per_gpu, image_size)
    fitting = min(effective, free // (each * gpus))
    if fitting >= effective:
        return workers
    log.warning(
        "%s has %s free, %d dataloader workers per GPU need about %s: start the container with "
        "--ipc host (or --shm-size 8g); training with %d workers per GPU instead",
        SHM,
        _size(free),
        effective,
        _size(effective * gpus * each),
        fitting,
    )
    return int(fitting)


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
