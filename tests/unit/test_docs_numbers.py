"""The numbers the docs quote (periods, timeouts, limits) are the ones the code uses."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from pictrain.evaluate.parity import FAIL_ABOVE, WARN_ABOVE
from pictrain.evaluate.predict import INFERENCE_BATCH
from pictrain.job import DEFAULT_STOP_TIMEOUT_S, STOP_RESERVE_S
from pictrain.platform.assets import EXPORT_BATCH
from pictrain.platform.downloads import DOWNLOAD_WORKERS
from pictrain.platform.evaluations import EVALUATIONS_PER_CALL
from pictrain.platform.joblog import JobLogForwarder
from pictrain.platform.logstream import ProgressCollapser
from pictrain.platform.picsellia import FRESH_CHECKPOINT_MINUTES
from pictrain.preannotate.model import SCORING_FLOOR
from pictrain.preannotate.scoring import MIN_KEPT, NEAR_DUPLICATE_COSINE, SPARE_PER_PICK
from pictrain.train.checkpoint import DEFAULT_INTERVAL_MINUTES
from pictrain.train.relay import DEFAULT_STALL_MINUTES, HEARTBEAT_S, POLL_S, STOP_GRACE_S

REPO = Path(__file__).resolve().parents[2]


def _default(function: object, name: str) -> object:
    return inspect.signature(function).parameters[name].default


QUOTED = [
    ("docs/resume.md", "every {:g} minutes while training", DEFAULT_INTERVAL_MINUTES),
    ("docs/picsellia.md", "redrawn in place every {:g} s", _default(ProgressCollapser, "interval")),
    ("docs/picsellia.md", "sent in batches every {:g} s", _default(JobLogForwarder, "period")),
    ("docs/picsellia.md", "URLs, {:d} at a time", DOWNLOAD_WORKERS),
    ("docs/picsellia.md", "{:,d} assets per call", EXPORT_BATCH),
    ("docs/picsellia.md", "over {:g} apart a warning", WARN_ABOVE),
    ("docs/picsellia.md", "over {:g} the job fails", FAIL_ABOVE),
    ("docs/run-folder.md", "≤{:d} per call", EVALUATIONS_PER_CALL),
    ("docs/evaluation.md", "Over {:g} the table and the log carry a warning", WARN_ABOVE),
    ("docs/evaluation.md", "over {:g} the job fails", FAIL_ABOVE),
    ("docs/evaluation.md", "the weights {:d} images per inference call", INFERENCE_BATCH),
    ("docs/gpus.md", "as it grows (every {:g} s", POLL_S),
    ("docs/gpus.md", "(at most every {:g} s)", HEARTBEAT_S),
    ("docs/gpus.md", "SIGKILL {:g} s later", STOP_GRACE_S),
    ("docs/gpus.md", "`PICTRAIN_DDP_STALL_MINUTES` (default {:g})", DEFAULT_STALL_MINUTES),
    ("docs/stopping.md", "less than {:g} minutes ago", FRESH_CHECKPOINT_MINUTES),
    ("docs/preannotate.md", "files ({:d} at a time, whole or not at all)", DOWNLOAD_WORKERS),
    ("docs/preannotate.md", "every prediction down to {:g}", SCORING_FLOOR),
    ("docs/preannotate.md", "cosine {:g} or more", NEAR_DUPLICATE_COSINE),
    ("docs/preannotate.md", "keeps the best `{:d} x to_label` candidates", SPARE_PER_PICK),
    ("docs/preannotate.md", "(at least {:d})", MIN_KEPT),
    ("docs/stopping.md", "(default {:g} s)", DEFAULT_STOP_TIMEOUT_S),
    ("docs/stopping.md", "less {:g} s kept for the status calls", STOP_RESERVE_S),
    (
        "docs/stopping.md",
        "`PICTRAIN_CHECKPOINT_MINUTES`, {:g} by default",
        DEFAULT_INTERVAL_MINUTES,
    ),
]


@pytest.mark.parametrize(("doc", "phrase", "value"), QUOTED, ids=[q[1] for q in QUOTED])
def test_the_docs_quote_the_code(doc: str, phrase: str, value: float) -> None:
    text = " ".join((REPO / doc).read_text().split())  # line breaks are spaces
    assert phrase.format(value) in text, f"{doc}: {phrase.format(value)!r}"
