"""ultralytics' AMP check without its reference-model download.

Its check downloads yolo26n.pt from GitHub on every GPU run: offline that fails (and AMP stays
on), online it fetches weights at run time, which our images must never do. We keep its one decisive
rule, the list of GPUs known to produce NaN losses under AMP, and skip the download.
"""

from __future__ import annotations

import re

import torch

_AMP_BROKEN_GPUS = re.compile(
    r"(nvidia|geforce|quadro|tesla).*?(1660|1650|1630|t400|t550|t600|t1000|t1200|t2000|k40m)",
    re.IGNORECASE,
)


def check_amp_offline(model: torch.nn.Module) -> bool:
    """Said on ultralytics' logger: in a DDP worker it is the one that reaches the job's log."""
    from ultralytics.utils import LOGGER

    device = next(model.parameters()).device
    if device.type != "cuda":
        return False
    name = torch.cuda.get_device_name(device)
    if _AMP_BROKEN_GPUS.search(name):
        LOGGER.warning(f"AMP: off, {name} is known to give NaN losses with it")
        return False
    LOGGER.info(f"AMP: on ({name}, checked offline)")
    return True


def install() -> None:
    """Replace the check where ultralytics' trainer looks it up."""
    from ultralytics.engine import trainer

    trainer.check_amp = check_amp_offline
