"""`make platform-demo`: the README's "From data to deployment", every command against the
bundled Picsellia emulator, with no account: upload -> dataset -> register -> experiment ->
the registered image's job -> publish -> deploy -> predict -> pre-annotate the next batch (the
preannotate processing's job) -> a reviewer checks it against the synthetic truth and adds it
to the training version -> continuous training, whose job starts from the published weights.

The end-to-end test runs the same path (`run_path`) and checks what the platform holds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "picsellia.example.toml"
TRUTH_FILE = "truth.json"  # the next batch's true objects: the reviewer's, never uploaded

Command = Callable[[list[str]], tuple[int, str]]


@dataclass
class JobRun:
    experiment_id: str
    code: int
    log: Path

    @property
    def starting_weights_sha256(self) -> str | None:
        from pictrain.starting import LOGGED

        match = LOGGED.search(self.log.read_text())
        return match.group(3) if match else None


@dataclass
class PathRun:
    outputs: dict[str, str] = field(default_factory=dict)
    jobs: list[JobRun] = field(default_factory=list)
    review: Any = None  # what the reviewer kept of the pre-annotations (tests/emulator/review.py)


class StepFailed(Exception):
    pass


def clean_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment without any platform variable of the user's: the demo's platform is
    the emulator, and no real token may reach it (or a job)."""
    from pictrain.envvars import PLATFORM

    names = {name for var in PLATFORM.values() for name in var.names}
    return {k: v for k, v in environ.items() if k not in names}


def run_path(
    emulator: Any,
    project: Path,
    work: Path,
    pictrain: Command,
    job_env: Mapping[str, str],
    say: Callable[[str], None] = print,
) -> PathRun:
    """Every step in order; a step that fails stops the path with its output."""
    from pictrain.platform.base import BEST_MODEL_ARTIFACT
    from pictrain.workflow.project import load_project

    project = project.resolve()  # jobs run in `work`
    config = load_project(project)
    run = PathRun()

    def step(title: str, *args: str) -> str:
        say(f"\n== {title}: pictrain {' '.join(args)}")
        code, output = pictrain(
            [*args, "--project", str(project), "--env-file", str(work / "none.env")]
        )
        say(output.rstrip())
        run.outputs[" ".join(args)] = output
        if code != 0:
            raise StepFailed(f"pictrain {' '.join(args)} exited {code}")
        return output

    def train(title: str, job: Any) -> None:
        say(f"\n== {title}: the platform runs {job.launch.docker_image}:{job.launch.docker_tag}")
        log = job_log(work, job)
        say(f"job {job.id} running, its log in {log} (minutes on a CPU: `tail -f` it)")
        done = run_launched_job(emulator, job, config.path(config.image.images_dir), work, job_env)
        run.jobs.append(done)
        say(f"job {job.id}: exit {done.code}")
        if done.code != 0:
            raise StepFailed(f"the job of experiment {done.experiment_id} failed: {done.log}")

    step("1. upload the split folders to the datalake, tagged", "data", "upload")
    step("2. a dataset version per split, from tag queries", "data", "dataset")
    step("3. register the training image as a model version", "register", config.image.name)
    step("4. an experiment on it, versions attached, parameters set", "experiment", "create")
    step("5. launch it on Picsellia's GPUs", "experiment", "launch")
    (experiment,) = [
        e for e in emulator.state.experiments.values() if e.name == config.experiment.name
    ]
    (job,) = emulator.launched_jobs(experiment.id)
    train("6. training", job)
    step("7. publish the trained experiment as a model version", "model", "publish")
    step("8. deploy the published version", "deploy")
    image = sorted(config.path(config.data["test"].images).iterdir())[0]
    step(
        "9. predict with the deployment", "predict", str(image), "--out", str(work / "predictions")
    )
    run.review = preannotate_next_batch(emulator, config, project, work, step, job_env, say)
    step("13. feedback loop, continuous training and deployment", "ct", "setup")
    (deployment,) = emulator.state.deployments.values()
    retrain = emulator.trigger_continuous_training(deployment.id)
    train("14. the platform's continuous training, on the reviewed batch too", retrain)
    published = hashlib.sha256(emulator.state.artifact_bytes(experiment.id, BEST_MODEL_ARTIFACT))
    started_from = run.jobs[-1].starting_weights_sha256
    if started_from != published.hexdigest():
        raise StepFailed(
            f"continuous training started from {started_from}, not the published weights"
        )
    say(f"continuous training started from the published weights (sha256 {started_from[:16]}...)")
    return run


def preannotate_next_batch(
    emulator: Any,
    config: Any,
    project: Path,
    work: Path,
    step: Callable[..., str],
    env: Mapping[str, str],
    say: Callable[[str], None],
) -> Any:
    """Register and launch the pre-annotation on [preannotate] version, run its job as the
    platform would, then play the reviewer: each pre-annotated box the synthetic truth confirms
    (IoU >= 0.5, same label) is kept, the others fixed; the reviewed images join train."""
    from pictrain.preannotate.job import PREANNOTATED_TAG
    from tests.emulator.review import KEPT_IOU

    step("10. register the pre-annotation processing", "register", "preannotate")
    step("11. pre-annotate the next batch with the published model", "preannotate", "launch")
    versions = {v.version: v for v in emulator.state.dataset_versions.values()}
    batch = versions[config.preannotate.version]
    (job,) = emulator.launched_processings(batch.id)
    processing = emulator.state.processings[job.processing.processing_id]
    say(f"\n== the platform runs {processing.docker_image}:{processing.docker_tag}")
    log = work / f"job-{job.id}.log"
    images_dir = config.path(config.image.images_dir)
    name = processing.docker_image.rsplit("/", 1)[-1]
    if not (images_dir / name / "processing.toml").is_file():
        raise StepFailed(f"{processing.docker_image} is not a processing image of {images_dir}")
    with log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "pictrain", "preannotate"],  # the image's command
            cwd=work,
            env={**env, **emulator.processing_env(job)},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
        ).returncode
    say("\n".join(line.split(": ", 1)[-1] for line in log.read_text().splitlines()[-4:]))
    if code != 0:
        raise StepFailed(f"the pre-annotation job failed ({code}): {log}")
    truth = config.path(config.data[config.preannotate.version].images).parent / TRUTH_FILE
    review = emulator.review_preannotations(batch.id, truth, PREANNOTATED_TAG, versions["train"].id)
    say(
        f"\n== 12. a reviewer checks the {review.assets} pre-annotated images against the "
        f"synthetic truth: kept {review.kept} of {review.predicted} pre-annotated boxes (IoU >= "
        f"{KEPT_IOU} with a true object of the same label), removed "
        f"{review.predicted - review.kept}, drew the {review.truths - review.kept} the model "
        "missed; the reviewed images join the train version"
    )
    return review


def run_launched_job(
    emulator: Any, job: Any, images_dir: Path, work: Path, env: Mapping[str, str]
) -> JobRun:
    """What the platform does with a launched job: run the model version's image with the
    container variables; here the image is `pictrain run` with that image's model.toml."""
    from pictrain.envvars import MODEL_CONFIG

    name = job.launch.docker_image.rsplit("/", 1)[-1]
    config = images_dir / name / "model.toml"
    if not config.is_file():
        raise StepFailed(f"{job.launch.docker_image} is not an image of {images_dir}")
    experiment_id = str(job.launch.experiment_id)
    log = job_log(work, job)
    with log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "pictrain", "run"],
            cwd=work,
            env={**env, **emulator.launch_env(job), MODEL_CONFIG.name: str(config)},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
        ).returncode
    return JobRun(experiment_id, code, log)


def job_log(work: Path, job: Any) -> Path:
    return work / f"job-{job.launch.experiment_id}.log"


def subprocess_command(env: Mapping[str, str]) -> Command:
    def command(args: list[str]) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-m", "pictrain", *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return done.returncode, done.stdout

    return command


def make_data(folder: Path, images: int, image_size: int = 160) -> None:
    """The splits, and the next batch: images with no annotation file (the true objects kept
    beside them, for the reviewer only)."""
    from pictrain.synthetic import make_detection_dataset

    if not (folder / "test" / "annotations.json").is_file():
        splits = {"train": 70, "val": 15, "test": 15}
        make_detection_dataset(
            folder, n_images=images, image_size=image_size, seed=0, splits=splits
        )
    if not (folder / "next" / TRUTH_FILE).is_file():
        staging = folder / "next-staging"
        (coco,) = make_detection_dataset(staging, images // 4, image_size, seed=1).values()
        coco.rename(coco.with_name(TRUTH_FILE))
        coco.parent.rename(folder / "next")
        staging.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path, default=EXAMPLE.relative_to(REPO))
    parser.add_argument("--work", type=Path, default=Path("runs/platform-demo"))
    parser.add_argument("--images", type=int, default=240, help="synthetic images to make")
    args = parser.parse_args()
    os.environ.setdefault("PICSELLIA_SDK_CUSTOM_LOGGING", "1")
    from tests.emulator import Emulator
    from tests.emulator.emulator import loopback_env

    make_data(Path("data/platform-demo"), args.images)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with Emulator.start() as emulator:
        base = {**clean_env(), **loopback_env()}
        print(f"# Picsellia emulator on {emulator.url} (no account, nothing leaves this machine)")
        try:
            run_path(
                emulator,
                args.project,
                args.work.resolve(),
                subprocess_command({**base, **emulator.user_env()}),
                base,
            )
        except StepFailed as exc:
            print(f"\nplatform demo stopped: {exc}", file=sys.stderr)
            return 1
    minutes = (time.monotonic() - started) / 60
    print(f"\nplatform demo done in {minutes:.1f} min; files in {args.work}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
