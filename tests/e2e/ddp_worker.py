"""One DDP worker on the CPU: `torch.distributed.run ... ddp_worker.py GENERATED_FILE NOTES_DIR`.

ultralytics trains DDP on GPUs only, and two lines of it assume one:
- for a CPU device its trainer counts no DDP device and never opens the process group
  (`BaseTrainer._setup_ddp`): this opens it with gloo, from the variables torch.distributed.run
  sets, as `_setup_ddp` would on GPUs;
- the final validation of best.pt in a DDP worker takes the rank's CUDA device
  (`BaseValidator.__call__`): this gives it the CPU instead.
Then it runs ultralytics' generated file unchanged, and at exit notes which AMP check
ultralytics' trainer module holds in this worker, and whether its weights loads are restricted.
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys
from pathlib import Path

import torch
import torch.distributed as dist


def final_validation_on_the_cpu() -> None:
    from ultralytics.engine import validator

    class NoCuda:
        @staticmethod
        def current_device() -> int:
            return 0

    backend = validator.AutoBackend
    validator.get_torch_device_backend = lambda device_type: NoCuda
    validator.AutoBackend = lambda *args, device, **kwargs: backend(
        *args, device=torch.device("cpu"), **kwargs
    )


def note_amp_check_and_safe_load(notes: Path) -> None:
    from ultralytics.engine import trainer
    from ultralytics.nn import tasks

    check = trainer.check_amp
    rank = os.environ["RANK"]
    (notes / f"amp-check-rank{rank}.txt").write_text(f"{check.__module__}.{check.__qualname__}")
    (notes / f"safe-load-rank{rank}.txt").write_text(str(tasks.SAFE_LOAD))


if __name__ == "__main__":
    generated, notes = sys.argv[1], Path(sys.argv[2])
    dist.init_process_group("gloo")
    final_validation_on_the_cpu()
    atexit.register(note_amp_check_and_safe_load, notes)
    sys.argv = [generated]
    runpy.run_path(generated, run_name="__main__")
    dist.destroy_process_group()
