"""The only way pictrain loads a weights or checkpoint file: without running code from it.

A `.pt` file is a pickle, and unpickling one with `weights_only=False` runs whatever it says,
inside a job that holds the organization's API token; whoever can store a file on an experiment
or a model version chooses the starting weights and the checkpoints a job reads. So every file
is loaded with `torch.load(weights_only=True)` against ultralytics' allow-list of checkpoint
types (`ultralytics.nn.tasks.torch_safe_load(..., safe_only=True)`), and ultralytics' own loads
are switched to the same by `ULTRALYTICS_SAFE_LOAD=1`, which `pictrain.offline` sets before
ultralytics is imported (in the job, in every command, inherited by the DDP workers);
`require_safe_mode` fails closed where it is not in force. A file that needs more than the
allow-list is refused (`UnsafeWeights`, exit 2); one that cannot be read at all (empty,
truncated, not a torch archive) is `UnreadableWeights`, for the caller to handle as before.

ultralytics 8.4.190's loads that can reach one of our files, and how each is kept safe:
- `nn.tasks.load_checkpoint` (YOLO(path) and RTDETR(path), a resume's `check_resume` and
  `setup_model`, the final validation's AutoBackend, the NaN recovery, `Model.train`'s reload
  of best.pt, our DDP AutoBatch probe): `torch_safe_load`, restricted under the switch.
- `utils.torch_utils.strip_optimizer` unpickles with `weights_only=False`: it runs in
  `stripped_copy` and in the trainer's `final_eval` (on last.pt and best.pt), and both load the
  file with the restricted unpickler first and stop if it fails. A full unpickler given bytes
  the restricted one accepted calls only the same allow-listed constructors with the same
  arguments; a file it did not accept (refused, damaged, not a torch archive) never gets there.
- the DDP file (`utils.dist.generate_ddp_file`, `weights_only=False`): a cloudpickle the parent
  writes to its own config dir from objects it holds (trainer class, arguments, callbacks, and
  a model built from safely loaded weights, or the checkpoint's path); no outside file.
- MultiTrainer, SAM, NAS and the YOLO-World/YOLOE text caches also use `weights_only=False`;
  pictrain uses none of them.
- a dataset's label cache (`data.utils.load_dataset_cache_file`, `np.load(allow_pickle=True)`)
  beside the labels pictrain writes: every conversion deletes the one a previous conversion
  left (`pictrain.data.images.prepare_output`) before ultralytics can read it.

A TorchScript export is no pickle but a program: its pickles hold only tensors (torch.jit's own
unpickler), but loading and running it runs its code, which may call any torch operator,
`torch.from_file(..., shared=True)` among them (it writes a file). `torchscript` reads the
program first and loads it only when every call in it is one ultralytics' exports make.
"""

from __future__ import annotations

import ast
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pictrain.errors import UserError, exception_chain

# Every call in ultralytics' TorchScript exports (yolov8, yolo11, yolo26 for each task, RT-DETR:
# tests/unit/test_safeload.py exports each and checks it): torch operators, with the builtins
# and submodule calls of torch.jit's serialized code. Tensor methods are serialized as
# `torch.<op>(tensor, ...)`, so this covers them too.
TORCHSCRIPT_OPERATORS = frozenset(
    f"torch.{name}"
    for name in [
        "_convolution",
        "adaptive_avg_pool2d",
        "add",
        "arange",
        "batch_norm",
        "bmm",
        "cat",
        "chunk",
        "clamp",
        "contiguous",
        "cos",
        "device",
        "div",
        "dropout",
        "dropout_",
        "expand",
        "flatten",
        "floor_divide",
        "gather",
        "gelu",
        "grid_sampler",
        "index",
        "layer_norm",
        "linear",
        "log",
        "matmul",
        "max",
        "max_pool2d",
        "meshgrid",
        "mul",
        "new_zeros",
        "pad",
        "permute",
        "pow",
        "reciprocal",
        "relu",
        "relu_",  # in place: a model loaded from a checkpoint (ultralytics sets inplace)
        "remainder",
        "repeat",
        "reshape",
        "rsub",
        "sigmoid",
        "silu",
        "silu_",
        "sin",
        "size",
        "slice",
        "softmax",
        "split",
        "split_with_sizes",
        "squeeze",
        "stack",
        "sub",
        "sum",
        "to",
        "topk",
        "transpose",
        "type_as",
        "unsqueeze",
        "upsample_nearest2d",
        "view",
    ]
)
TORCHSCRIPT_BUILTINS = frozenset({"annotate", "getattr", "int", "ops.prim.NumToTensor"})
# A submodule's method, itself in the archive's code (and checked there): `_0.forward1(x)`.
_SUBMODULE_CALL = re.compile(r"(?:[A-Za-z_]\w*\.)+forward\d*")


class UnsafeWeights(UserError):
    """A weights file whose unpickling needs more than the allow-list: never loaded."""


class UnreadableWeights(Exception):
    """A weights file the restricted loader cannot read (empty, truncated, not a torch
    archive): the caller decides, as for any damaged file; it never reaches an unsafe load."""


def require_safe_mode() -> None:
    """Fail closed where ultralytics would unpickle with `weights_only=False`: the switch was not
    in the environment when it was imported, or torch is too old for its restricted loading."""
    import torch
    from ultralytics.nn import tasks

    if not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):
        raise RuntimeError(f"torch {torch.__version__} cannot load weights safely (2.6+ can)")
    if not tasks.SAFE_LOAD:
        raise RuntimeError(
            "ultralytics was imported before ULTRALYTICS_SAFE_LOAD=1 was set "
            "(pictrain.offline.configure_environment): its loads would run code from files"
        )


def load(path: Path, what: str | None = None) -> dict[str, Any]:
    """The checkpoint's dictionary. `what` names the file in errors (default: its path)."""
    from ultralytics.nn.tasks import torch_safe_load

    return _guarded(path, what, lambda: torch_safe_load(path, safe_only=True)[0])


def model(family: Callable[[str], Any], path: Path, what: str | None = None) -> Any:
    """`family(path)` (ultralytics' YOLO or RTDETR) for a `.pt` file: one restricted load."""
    return _guarded(path, what, lambda: family(str(path)))


def network(path: Path, what: str | None = None) -> Any:
    """The checkpoint's network (its EMA if it has one), in float32 and eval mode."""
    from ultralytics.nn.tasks import load_checkpoint

    return _guarded(path, what, lambda: load_checkpoint(path)[0])


def stripped_copy(weights: Path, dest: Path) -> Path:
    """A copy without the optimizer state a training checkpoint carries (4-5x smaller: what
    deployment and fine-tuning read, as ultralytics leaves best.pt after training). `weights`
    itself when it is no ultralytics checkpoint, as ultralytics' `strip_optimizer` decides;
    that one unpickles unrestricted, so it only gets a file the restricted loader accepted."""
    from ultralytics.utils.torch_utils import strip_optimizer

    try:
        load(weights)
    except UnreadableWeights:
        return weights
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest if strip_optimizer(weights, str(dest)) else weights


def torchscript(path: Path, map_location: Any, what: str | None = None) -> Any:
    """`torch.jit.load(path)` of a TorchScript file whose program calls nothing but what
    ultralytics' exports call; refused (`UnsafeWeights`) before anything of it runs otherwise."""
    import torch

    what = what or str(path)
    if unknown := sorted(
        _torchscript_calls(path, what) - TORCHSCRIPT_OPERATORS - TORCHSCRIPT_BUILTINS
    ):
        raise UnsafeWeights(
            f"{what} refused: its TorchScript program calls {', '.join(unknown[:5])}"
            f"{', ...' if len(unknown) > 5 else ''}, which no ultralytics export calls"
        )
    return torch.jit.load(str(path), map_location=map_location)


def _torchscript_calls(path: Path, what: str) -> set[str]:
    """What the program's code calls, submodule methods aside: every `.py` entry of the
    archive (torch.jit compiles its `code/` folder), duplicates included."""
    try:
        with zipfile.ZipFile(path) as archive:
            sources = [archive.read(i) for i in archive.infolist() if i.filename.endswith(".py")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableWeights(f"{what} cannot be read: {_first_line(exc)}") from None
    if not sources:
        raise UnreadableWeights(f"{what} cannot be read: it holds no TorchScript program")
    calls: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source.decode("utf-8"))
        except (SyntaxError, ValueError) as exc:  # torch.jit reads a subset of Python
            raise UnsafeWeights(f"{what} refused: its program is not Python: {exc}") from None
        calls |= {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return {call for call in calls if not _SUBMODULE_CALL.fullmatch(call)}


def _guarded(path: Path, what: str | None, loader: Callable[[], Any]) -> Any:
    require_safe_mode()
    try:
        return loader()
    except Exception as exc:
        raise _failure(path, what or str(path), exc) from None


def _failure(path: Path, what: str, exc: Exception) -> Exception:
    """Refused by the restricted unpickler (a torch archive asking for more than the
    allow-list), or unreadable for any other reason."""
    chain = list(exception_chain(exc))
    refused = any(isinstance(e, pickle.UnpicklingError) for e in chain)
    if refused and zipfile.is_zipfile(path):
        return UnsafeWeights(f"{what} refused: {_refusal(path, chain[-1])}")
    if refused:
        return UnreadableWeights(f"{what} cannot be read: it is no torch archive")
    return UnreadableWeights(f"{what} cannot be read: {_first_line(chain[-1])}")


def _refusal(path: Path, innermost: BaseException) -> str:
    """The globals outside the allow-list (ultralytics registered the allowed ones it needs
    while trying), else what torch's restricted unpickler said."""
    import torch

    try:
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # a damaged archive: torch's own words below
        names = []
    if names:
        return (
            f"unpickling it would call {', '.join(names)}, which ultralytics' allow-list of "
            "checkpoint types does not hold"
        )
    return f"the restricted unpickler refused it ({_first_line(innermost)})"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
