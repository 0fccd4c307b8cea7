"""`pictrain experiment launch`: the experiment trains on Picsellia's GPUs, once.

The SDK cannot list an experiment's jobs, so the jobs this project folder launched are kept in
`.pictrain/launches.json` (experiment id -> job id). A launch is sent at most once
(`Platform.send_once`): one whose answer was lost is recorded as unconfirmed, and the next launch
refuses while the experiment still waits (a job may be queued) unless told `--again`. Two
launches at once from one folder take turns (a lock beside the file), so the second sees the
first's job. From two folders or machines only the platform can refuse the second (a 409).
"""

from __future__ import annotations

from pictrain.errors import PlatformError, UserError
from pictrain.platform.enums import ExperimentStatus, JobRunStatus
from pictrain.platform.session import AlreadyThere, MaybeDone, Platform, Refused
from pictrain.workflow.experiment import find_experiment
from pictrain.workflow.project import ProjectFile
from pictrain.workflow.records import RECORDS_DIR, Records

LAUNCHES_FILE = RECORDS_DIR / "launches.json"  # experiment id -> job id, or UNCONFIRMED
UNCONFIRMED = "unconfirmed"  # sent, no answer: a job may exist
UNFINISHED = (JobRunStatus.PENDING, JobRunStatus.QUEUED, JobRunStatus.RUNNING)


def launch(platform: Platform, project: ProjectFile, gpus: int | None, again: bool = False) -> str:
    """Once: a running or queued experiment is refused, a finished one is left as it is."""
    gpus = gpus if gpus is not None else project.need("experiment").gpus
    if gpus < 1:
        raise UserError(f"--gpus {gpus}: at least one GPU")
    experiment = find_experiment(platform, project)
    name = experiment.name
    with Records.locked(
        project.path(LAUNCHES_FILE),
        "check the experiment's jobs on Picsellia, then delete the file",
    ) as launches:
        platform.call("read the experiment", experiment.sync)
        if experiment.status == ExperimentStatus.RUNNING:
            raise UserError(f"experiment {name} is already running")
        if experiment.status == ExperimentStatus.SUCCESS:
            return f"experiment {name} already trained (SUCCESS): nothing launched"
        earlier = launches.get(experiment.id)
        if earlier == UNCONFIRMED:
            if experiment.status == ExperimentStatus.WAITING and not again:
                raise UserError(
                    f"experiment {name}: an earlier launch got no answer and may be queued: "
                    "look at the experiment's jobs in Picsellia; if none is there, run "
                    "`pictrain experiment launch --again`"
                )
        elif earlier:
            job = platform.find(f"job {earlier}", platform.client.get_job_by_id, earlier)
            if job is not None and job.status in UNFINISHED:
                raise UserError(
                    f"experiment {name} was already launched: job {earlier} is {job.status.value}"
                )
        try:
            job = platform.send_once(f"launch {name}", experiment.launch, gpus=gpus)
        except AlreadyThere:
            raise UserError(f"experiment {name} is already running") from None
        except Refused as exc:
            raise UserError(f"Picsellia refused to launch {name}: {exc}") from None
        except MaybeDone as exc:
            launches.record(experiment.id, UNCONFIRMED)
            raise PlatformError(
                f"{exc}; it may have started: look at the experiment before launching again"
            ) from None
        launches.record(experiment.id, str(job.id))
    return f"experiment {name} launched on {gpus} GPU(s): job {job.id} ({job.status.value})"
