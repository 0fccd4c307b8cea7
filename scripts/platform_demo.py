"""`make platform-demo`: the README's "From data to deployment", every command against the
bundled Picsellia emulator, with no account: upload -> dataset -> register -> experiment ->
the registered image's job -> publish -> deploy -> continuous-training set-up -> pre-annotate
the next batch (the preannotate processing's job; the emulator plays the reviewer, checking it
against the synthetic truth, and the reviewed images join train) -> production images
predicted by the deployment, reviewed (with their true boxes) and submitted until the trigger
fires; that job trains on train plus the reviewed images, starts from the deployed weights,
and is compared with them; publishing it is refused if it is worse.

The end-to-end test runs the same path (`run_path`) and checks what the platform holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "picsellia.example.toml"
PRODUCTION = "production"  # the demo data's folder of images the deployment is asked about
NEXT = "next"  # the demo data's folder of the next batch to label, pre-annotated
TRUTH_FILE = "truth.json"  # the next batch's true objects: the reviewer's, never uploaded

Command = Callable[[list[str]], tuple[int, str]]


@dataclass
class JobRun:
    experiment_id: str
    code: int
    log: Path
    manifest: dict[str, Any] | None = None  # the experiment's `manifest` artifact, as stored

    @property
    def starting_weights(self) -> dict[str, Any] | None:
        """`source`, `file`, `sha256` of what the run started from (its manifest)."""
        return self.manifest["inputs"]["starting_weights"] if self.manifest else None


@dataclass
class PathRun:
    outputs: dict[str, str] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    jobs: list[JobRun] = field(default_factory=list)
    reviewed: list[str] = field(default_factory=list)  # data ids submitted to the feedback loop
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
    production: Path,
    say: Callable[[str], None] = print,
) -> PathRun:
    """Every step in order; a step that fails stops the path with its output. `production`:
    a folder of images and their COCO file, what the deployment is asked about and the reviewer
    corrects (at least the continuous-training threshold of them)."""
    from pictrain.platform.base import BEST_MODEL_ARTIFACT
    from pictrain.workflow.project import load_project

    project = project.resolve()  # jobs run in `work`
    config = load_project(project)
    run = PathRun()

    def step(title: str, *args: str, refusal_expected: bool = False) -> str:
        say(f"\n== {title}: pictrain {' '.join(args)}")
        code, output = pictrain(
            [*args, "--project", str(project), "--env-file", str(work / "none.env")]
        )
        say(output.rstrip())
        run.outputs[" ".join(args)] = output
        run.codes[" ".join(args)] = code
        if code != 0 and not (refusal_expected and code == 2):
            raise StepFailed(f"pictrain {' '.join(args)} exited {code}")
        return output

    def train(title: str, job: Any) -> JobRun:
        say(f"\n== {title}: the platform runs {job.launch.docker_image}:{job.launch.docker_tag}")
        log = job_log(work, job)
        say(f"job {job.id} running, its log in {log} (minutes on a CPU: `tail -f` it)")
        done = run_launched_job(emulator, job, config.path(config.image.images_dir), work, job_env)
        run.jobs.append(done)
        say(f"job {job.id}: exit {done.code}")
        if done.code != 0:
            raise StepFailed(f"the job of experiment {done.experiment_id} failed: {done.log}")
        return done

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
    step("9. feedback loop, continuous training and deployment", "ct", "setup")
    run.review = preannotate_next_batch(emulator, config, project, work, step, job_env, say)
    images = sorted((production / "images").iterdir())
    step(
        "14. predict with the deployment: the images go to its monitoring",
        "predict",
        *map(str, images),
        "--out",
        str(work / "predictions"),
    )
    retrain = review(emulator, production, run)
    if retrain is None:
        raise StepFailed(
            f"{len(images)} reviews did not reach the continuous-training threshold "
            f"({config.continuous_training.threshold})"
        )
    say(f"\n== 15. {len(run.reviewed)} predictions reviewed and submitted: the trigger fired")
    retrained = train("16. the platform's continuous training", retrain)
    published = hashlib.sha256(emulator.state.artifact_bytes(experiment.id, BEST_MODEL_ARTIFACT))
    started = retrained.starting_weights or {}
    if started.get("sha256") != published.hexdigest():
        raise StepFailed(f"continuous training started from {started}, not the deployed weights")
    say(
        f"continuous training started from the deployed weights ({started['file']}, sha256 "
        f"{started['sha256'][:16]}...)"
    )
    name = emulator.state.experiments[uuid.UUID(retrained.experiment_id)].name
    step(
        "17. publish the retrained model, unless it scores below the deployed one",
        "model",
        "publish",
        "--experiment",
        name,
        refusal_expected=True,
    )
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
    say(f"\n== 12. the platform runs {processing.docker_image}:{processing.docker_tag}")
    images_dir = config.path(config.image.images_dir)
    name = processing.docker_image.rsplit("/", 1)[-1]
    if not (images_dir / name / "processing.toml").is_file():
        raise StepFailed(f"{processing.docker_image} is not a processing image of {images_dir}")
    log = job_log(work, job)
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
        f"\n== 13. a reviewer checks the {review.assets} pre-annotated images against the "
        f"synthetic truth: kept {review.kept} of {review.predicted} pre-annotated boxes (IoU >= "
        f"{KEPT_IOU} with a true object of the same label), removed "
        f"{review.predicted - review.kept}, drew the {review.truths - review.kept} the model "
        "missed; the reviewed images join the train version"
    )
    return review


def review(emulator: Any, production: Path, run: PathRun) -> Any:
    """The reviewer: each monitored prediction of a production image corrected to its true
    boxes and submitted to the feedback loop; the job of the training it triggered, if any."""
    coco = json.loads((production / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    boxes: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {}
    by_id = {image["id"]: image["file_name"] for image in coco["images"]}
    for annotation in coco["annotations"]:
        box = tuple(round(v) for v in annotation["bbox"])
        boxes.setdefault(by_id[annotation["image_id"]], []).append(
            (names[annotation["category_id"]], box)
        )
    (deployment,) = emulator.state.deployments.values()
    triggered = None
    for prediction in list(deployment.predictions):
        if prediction.data_id is None or prediction.status == "SUBMITTED":
            continue
        if prediction.filename not in by_id.values():
            continue
        job = emulator.submit_review(
            deployment.id, prediction.data_id, boxes.get(prediction.filename, [])
        )
        run.reviewed.append(str(prediction.data_id))
        triggered = triggered or job
    return triggered


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
    artifact = emulator.state.experiments[job.launch.experiment_id].artifacts.get("manifest")
    manifest = json.loads(emulator.state.storage.get(artifact.object_name)) if artifact else None
    return JobRun(experiment_id, code, log, manifest)


def job_log(work: Path, job: Any) -> Path:
    """A training job's log by its experiment, a processing's by its job."""
    return work / f"job-{job.launch.experiment_id if job.launch else job.id}.log"


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


def make_data(folder: Path, images: int, production: int) -> None:
    """The splits; the next batch to label (a quarter as many images, no annotation file: its
    true objects are the reviewer's); `production` images the deployment is asked about."""
    from pictrain.synthetic import make_detection_dataset

    if not (folder / "test" / "annotations.json").is_file():
        splits = {"train": 70, "val": 15, "test": 15}
        make_detection_dataset(folder, n_images=images, image_size=160, seed=0, splits=splits)
    if not (folder / NEXT / TRUTH_FILE).is_file():
        make_next(folder, images // 4, 160)
    if not (folder / PRODUCTION / "annotations.json").is_file():
        make_production(folder, production, 160)


def make_next(folder: Path, images: int, image_size: int) -> Path:
    """`folder/next/`: the next batch to label, its true objects in `truth.json`."""
    return make_batch(folder, NEXT, images, image_size, seed=1, coco_name=TRUTH_FILE)


def make_production(folder: Path, images: int, image_size: int) -> Path:
    """`folder/production/`: what the deployment is asked about and the reviewer submits."""
    return make_batch(folder, PRODUCTION, images, image_size, seed=2)


def make_batch(
    folder: Path,
    name: str,
    images: int,
    image_size: int,
    seed: int,
    coco_name: str = "annotations.json",
) -> Path:
    """`folder/<name>/`: images of another seed, named apart from the splits' files (a
    camera's names are its own), with their true boxes in `coco_name`."""
    import shutil

    from pictrain.synthetic import make_detection_dataset

    made = folder / f".{name}"
    shutil.rmtree(made, ignore_errors=True)
    (coco_path,) = make_detection_dataset(made, images, image_size, seed=seed).values()
    coco = json.loads(coco_path.read_text())
    for image in coco["images"]:
        renamed = f"{name}-{image['file_name']}"
        (coco_path.parent / "images" / image["file_name"]).rename(
            coco_path.parent / "images" / renamed
        )
        image["file_name"] = renamed
    coco_path.unlink()
    (coco_path.parent / coco_name).write_text(json.dumps(coco))
    target = folder / name
    shutil.rmtree(target, ignore_errors=True)
    coco_path.parent.rename(target)
    made.rmdir()
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path, default=EXAMPLE.relative_to(REPO))
    parser.add_argument("--work", type=Path, default=Path("runs/platform-demo"))
    parser.add_argument("--images", type=int, default=240, help="synthetic images to make")
    args = parser.parse_args()
    os.environ.setdefault("PICSELLIA_SDK_CUSTOM_LOGGING", "1")
    from pictrain.workflow.project import load_project
    from tests.emulator import Emulator
    from tests.emulator.emulator import loopback_env

    data = Path("data/platform-demo")
    threshold = load_project(args.project).need("continuous_training").threshold
    make_data(data, args.images, threshold)
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
                data / PRODUCTION,
            )
        except StepFailed as exc:
            print(f"\nplatform demo stopped: {exc}", file=sys.stderr)
            return 1
    minutes = (time.monotonic() - started) / 60
    print(f"\nplatform demo done in {minutes:.1f} min; files in {args.work}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
