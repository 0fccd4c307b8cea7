"""Which weights a run starts from, in one documented order, and the record of that choice.

1. `experiment`: the experiment's `pretrained-weights` file (locally, the dataset folder's
   `pretrained-weights.pt`);
2. `model-version`: the base model version's trained file (`pictrain.platform.weights` says
   which), as in fine-tuning and continuous training;
3. `image`: the image's own pretrained weights for the `model` asked,
   `PICTRAIN_WEIGHTS_DIR/<model>.pt` (each image carries its family's official weights);
4. `none`: from scratch (the architecture's config), with a warning that says why.

`pretrained: false` goes straight to 4, as ultralytics' own `pretrained=False` trains from
scratch whatever weights the model was loaded from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pictrain.checksums import sha256
from pictrain.envvars import WEIGHTS_DIR

log = logging.getLogger(__name__)

# The starting weights a user attaches: an experiment file of this name, `<name>.pt` in a local
# dataset folder.
PRETRAINED_ARTIFACT = "pretrained-weights"

Source = Literal["experiment", "model-version", "image", "none"]
# The log line of a run that starts from a file, as tools read it back from a job's log.
LOGGED = re.compile(r"starting weights: (\S+) (\S+), sha256 ([0-9a-f]{64})")


@dataclass(frozen=True)
class StartingWeights:
    """Where training starts: a file and its checksum, or nothing and why."""

    source: Source
    path: Path | None = None
    sha256: str | None = None
    why: str = ""  # for `none`: why there are no starting weights

    @classmethod
    def found(cls, source: Source, path: Path) -> StartingWeights:
        return cls(source, path, sha256(path))

    @classmethod
    def scratch(cls, why: str) -> StartingWeights:
        return cls("none", why=why)

    def record(self) -> dict[str, str | None]:
        """The run manifest's `starting_weights`."""
        name = self.path.name if self.path else None
        return {"source": self.source, "file": name, "sha256": self.sha256}

    def log(self, model: str) -> None:
        """The one log line that says what `record()` holds; a warning when from scratch."""
        if self.path is None:
            log.warning("starting weights: none, training %s from scratch: %s", model, self.why)
        else:
            log.info("starting weights: %s %s, sha256 %s", self.source, self.path.name, self.sha256)


def choose(
    pretrained: bool, model: str, attached: Callable[[], StartingWeights | None]
) -> StartingWeights:
    """The starting weights of a run training `model`; `attached()` fetches the ones the
    experiment brings (1 and 2), and is not called when `pretrained` is false."""
    if not pretrained:
        chosen = StartingWeights.scratch("the parameter pretrained is false")
    else:
        chosen = attached() or image_weights(model)
    chosen.log(model)
    return chosen


def image_weights(model: str) -> StartingWeights:
    """The image's pretrained weights for `model`, else why there are none."""
    folder = WEIGHTS_DIR.read()
    if folder is None:
        return StartingWeights.scratch(
            f"the experiment brings no weights and {WEIGHTS_DIR.name} is not set (each image "
            "sets it to the pretrained weights it carries)"
        )
    path = Path(folder) / f"{model}.pt"
    if path.is_file():
        return StartingWeights.found("image", path)
    carried = sorted(p.stem for p in Path(folder).glob("*.pt"))
    return StartingWeights.scratch(
        f"the experiment brings no weights and the image has no pretrained weights for "
        f"{model} (it has {', '.join(carried) or 'none'}, in {folder})"
    )
