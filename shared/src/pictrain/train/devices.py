"""Which devices train: every GPU the container sees unless `device` says otherwise.

Resolved from the parameters before any download, so a GPU index that does not exist fails the
job at once. Picsellia gives an experiment's container N GPUs (`launch(gpus=N)`) and no way to
name them, so the default uses them all: DDP when there are several.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pictrain.errors import UserError

log = logging.getLogger(__name__)

HOST_DEVICES = ("cpu", "mps")  # no CUDA index to check


@dataclass(frozen=True)
class Devices:
    """What ultralytics gets as `device` and `batch`, and the GPUs that train, by name."""

    device: str  # "cpu", "0", "0,1,2,3" (ultralytics' canonical form)
    gpus: tuple[str, ...]  # names of the training GPUs, in `device` order; empty on the CPU
    batch: int  # over all GPUs (ultralytics splits it evenly); < 1: AutoBatch

    @property
    def distributed(self) -> bool:
        """More than one GPU: ultralytics trains in DDP worker processes."""
        return len(self.gpus) > 1

    @property
    def first(self) -> str:
        """The one device evaluation and export use."""
        return self.device.split(",")[0]

    def describe(self) -> str:
        if not self.gpus:
            return self.device.upper()
        indices = self.device.split(",")
        named = ", ".join(f"{i} ({name})" for i, name in zip(indices, self.gpus, strict=True))
        if self.distributed:
            return f"{len(self.gpus)} GPUs in DDP: {named}"
        return f"GPU {named}"

    def with_batch(self, batch: int) -> Devices:
        """The same devices with another batch (fitted to the data), rounded as at first."""
        devices = Devices(self.device, self.gpus, batch)
        return _rounded(devices) if devices.distributed else devices

    def manifest(self) -> dict[str, Any]:
        return {"device": self.device, "gpus": list(self.gpus), "batch": self.batch}


def visible_gpus() -> list[str]:
    """The names of the GPUs this process sees (CUDA_VISIBLE_DEVICES applies), by index."""
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def resolve_devices(device: str, batch: int, gpus: Sequence[str] | None = None) -> Devices:
    """`device` as the user gave it ("" = every visible GPU, else the CPU); `gpus` the visible
    GPUs' names (default: what torch sees). The batch is rounded to a multiple of the GPU count,
    as ultralytics gives each GPU batch // count images."""
    from ultralytics.utils.torch_utils import parse_device

    gpus = visible_gpus() if gpus is None else list(gpus)
    try:
        wanted = parse_device(device)  # "cuda:1" -> "1", "-1" -> an idle GPU, "" stays ""
    except Exception as exc:
        raise UserError(f"device {device!r} is not understood: {exc}") from None
    if wanted in HOST_DEVICES:
        return Devices(wanted, (), batch)
    if not wanted:
        if not gpus:
            return Devices("cpu", (), batch)
        wanted = ",".join(str(i) for i in range(len(gpus)))
    indices = _indices(device, wanted, len(gpus))
    chosen = Devices(wanted, tuple(gpus[i] for i in indices), batch)
    return _rounded(chosen) if chosen.distributed else chosen


def _indices(given: str, canonical: str, count: int) -> list[int]:
    parts = canonical.split(",")
    if not all(part.isdigit() for part in parts):
        raise UserError(
            f"device {given!r}: use '' (every GPU), 'cpu', a GPU index such as '0', or a list "
            "such as '0,1'"
        )
    indices = [int(part) for part in parts]
    if len(set(indices)) != len(indices):
        raise UserError(f"device {given!r} names a GPU twice")
    missing = [i for i in indices if i >= count]
    if missing and not count:
        raise UserError(
            f"device {given!r}: this machine has no GPU that torch can use; leave `device` empty "
            "or set it to 'cpu'"
        )
    if missing:
        raise UserError(
            f"device {given!r}: GPU {', '.join(map(str, missing))} does not exist; this machine "
            f"has {count} GPU{'s' if count > 1 else ''} ({', '.join(map(str, range(count)))}); "
            "leave `device` empty to train on all of them"
        )
    return indices


def _rounded(devices: Devices) -> Devices:
    """A batch that splits evenly over the GPUs: the nearest multiple of their count (at least
    one image per GPU). AutoBatch stays as is; it is sized per GPU when training starts."""
    count = len(devices.gpus)
    if devices.batch < 1 or devices.batch % count == 0:  # < 1: AutoBatch
        return devices
    per_gpu = max(1, (2 * devices.batch + count) // (2 * count))  # halves round up
    batch = per_gpu * count
    log.info(
        "batch_size %d rounded to %d, a multiple of the %d GPUs (%d images per GPU)",
        devices.batch,
        batch,
        count,
        per_gpu,
    )
    return Devices(devices.device, devices.gpus, batch)
