"""The workflow command group of `pictrain`: register, data, experiment, model, deploy, predict,
preannotate, ct. Each command reads the project file, checks everything it can before changing
anything, then converges: run twice, nothing is duplicated. Bad input is one line and exit 2
(`pictrain.cli` reports it).

Imports stay inside the handlers: `pictrain --help` must not load the SDK or torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pictrain.preannotate.cli import add_command as add_preannotate
from pictrain.workflow.project import DEFAULT_FILE

Handler = Callable[[argparse.Namespace], Iterable[str]]


def add_commands(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--project", type=Path, default=DEFAULT_FILE, help=f"project file (default {DEFAULT_FILE})"
    )
    common.add_argument(
        "--env-file", type=Path, default=Path(".env"), help="credentials file (default .env)"
    )

    register = sub.add_parser(
        "register", parents=[common], help="register images as model versions on Picsellia"
    )
    register.add_argument("images", nargs="*", metavar="IMAGE", help="images/<IMAGE> to register")
    register.add_argument("--all", action="store_true", help="every image of images/")
    register.add_argument("--registry", help="where the images are pushed (default: [image])")
    register.add_argument("--tag", help="the images' tag, also the version name (default: [image])")
    register.add_argument("--images-dir", type=Path, help="default: [image] images_dir or images")
    _handle(register, _register)

    data = sub.add_parser("data", help="datalake upload and dataset versions").add_subparsers(
        required=True, metavar="ACTION"
    )
    _handle(
        data.add_parser("upload", parents=[common], help="split folders to the datalake"), _upload
    )
    _handle(
        data.add_parser("dataset", parents=[common], help="dataset versions from tag queries"),
        _dataset,
    )

    experiment = sub.add_parser("experiment", help="create and launch the experiment")
    actions = experiment.add_subparsers(required=True, metavar="ACTION")
    _handle(actions.add_parser("create", parents=[common], help="on the registered image"), _create)
    launch = actions.add_parser("launch", parents=[common], help="train on Picsellia's GPUs")
    launch.add_argument("--gpus", type=int, help="GPUs (default: [experiment] gpus, 1)")
    launch.add_argument(
        "--again",
        action="store_true",
        help="launch although an earlier launch got no answer (none of its jobs is there)",
    )
    _handle(launch, _launch)

    model = sub.add_parser("model", help="publish the trained experiment").add_subparsers(
        required=True, metavar="ACTION"
    )
    gated = argparse.ArgumentParser(add_help=False)
    gated.add_argument(
        "--experiment",
        metavar="NAME",
        help="another experiment than [experiment] name, in [project] or the continuous-training "
        "project (a continuous-training run)",
    )
    gated.add_argument(
        "--force",
        action="store_true",
        help="even when its job found it scores below the champion it was compared with",
    )
    _handle(
        model.add_parser("publish", parents=[common, gated], help="as a model version"), _publish
    )

    _handle(
        sub.add_parser("deploy", parents=[common, gated], help="deploy the published version"),
        _deploy,
    )

    predict = sub.add_parser(
        "predict", parents=[common], help="predict on the deployment or with an exported file"
    )
    predict.add_argument("image_files", nargs="+", type=Path, metavar="IMAGE")
    predict.add_argument(
        "--model",
        type=Path,
        help="an export (model-latest.onnx, .zip, .torchscript, .engine): predict locally",
    )
    predict.add_argument(
        "--threshold",
        type=_score,
        help="with --model, 0 to 1 (default: the model's operating point, each class's "
        "threshold chosen on val; 0.25 for an export without one)",
    )
    predict.add_argument(
        "--no-monitor",
        dest="monitor",
        action="store_false",
        help="with the deployment: keep the images out of its monitoring (by default each "
        "becomes a prediction to review there, and a datalake data)",
    )
    predict.add_argument(
        "--out",
        type=Path,
        default=Path("predictions"),
        help="where the drawn PNGs go (predictions)",
    )
    _handle(predict, _predict)

    add_preannotate(sub, common, _handle, _preannotate_launch)

    ct = sub.add_parser("ct", help="feedback loop, continuous training and deployment")
    ct_actions = ct.add_subparsers(required=True, metavar="ACTION")
    _handle(ct_actions.add_parser("setup", parents=[common], help="on the deployment"), _ct)


def _score(text: str) -> float:
    """A score threshold, in the range the project file's [deployment] threshold has."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a score from 0 to 1")
    return value


def _handle(parser: argparse.ArgumentParser, handler: Handler) -> None:
    parser.set_defaults(command=lambda args: _run(handler, args))


def _run(handler: Handler, args: argparse.Namespace) -> int:
    """The handler's lines on stdout; its failures are `pictrain.cli`'s to report."""
    root = logging.getLogger()
    for handler_ in root.handlers:  # a command line tool's output, not a log
        handler_.setFormatter(logging.Formatter("%(message)s"))
    root.setLevel(logging.WARNING)  # the SDK logs its connections on the root logger
    logging.getLogger("pictrain").setLevel(logging.INFO)
    if not sys.stderr.isatty():  # the SDK's own bars; ours print lines (progress.py)
        os.environ.setdefault("TQDM_DISABLE", "1")
    for line in handler(args):
        print(line, flush=True)
    return 0


def _project(args: argparse.Namespace) -> Any:
    from pictrain.workflow.project import load_project

    return load_project(args.project)


def _platform(args: argparse.Namespace) -> Any:
    from pictrain.platform.session import open_platform

    return open_platform(args.env_file)


def _register(args: argparse.Namespace) -> list[str]:
    """Training images as model versions; processing images (`preannotate`) as processings."""
    from pictrain.errors import UserError
    from pictrain.workflow.preannotate import (
        available_processings,
        processing_registrations,
        register_processing,
    )
    from pictrain.workflow.register import available_images, register, registrations

    image = _project(args).image if args.project.is_file() else None
    images_dir = args.images_dir or (
        args.project.parent / image.images_dir if image else Path("images")
    )
    if args.all == bool(args.images):
        raise UserError("name the images to register, or --all")
    models, processings = available_images(images_dir), available_processings(images_dir)
    names = [*models, *processings] if args.all else args.images
    unknown = [n for n in names if n not in models and n not in processings]
    if unknown:
        raise UserError(
            f"unknown image {', '.join(unknown)}; images: {', '.join([*models, *processings])}"
        )
    registry = args.registry or (image.registry if image else "")
    tag = args.tag or (image.tag if image else "")
    if not tag:
        raise UserError("--tag is required (or a [image] tag in the project file)")
    trained = [n for n in names if n in models]
    planned = registrations(trained, images_dir, registry, tag) if trained else []
    planned_processings = processing_registrations(
        [n for n in names if n in processings], images_dir, registry, tag
    )
    platform = _platform(args)
    return [register(platform, registration) for registration in planned] + [
        register_processing(platform, registration) for registration in planned_processings
    ]


def _upload(args: argparse.Namespace) -> Iterator[str]:
    """The summary of every split, then exit 3 when a file could not be sent (a rerun sends
    it), or 2 when twins are left that only the user can remove (each line says how)."""
    from pictrain.errors import PlatformError, UserError
    from pictrain.workflow.datalake import plan_upload, upload

    project = _project(args)
    splits = project.need("data")
    plans = plan_upload({name: (project.path(s.images), s) for name, s in splits.items()})
    upload(_platform(args), plans)
    for plan in plans:
        yield plan.summary()
        yield from (f"  twins left: {line}" for line in plan.twins_left)
    failed = sum(len(plan.failed) for plan in plans)
    if failed:
        raise PlatformError(
            f"{failed} files were not uploaded (see above): run `pictrain data upload` again"
        )
    left = sum(len(plan.twins_left) for plan in plans)
    if left:
        raise UserError(f"{left} files have twins pictrain cannot remove alone (see above)")


def _dataset(args: argparse.Namespace) -> list[str]:
    from pictrain.workflow.dataset import build, plan_dataset

    project = _project(args)
    platform = _platform(args)
    return build(platform, plan_dataset(platform, project))


def _create(args: argparse.Namespace) -> list[str]:
    from pictrain.workflow.experiment import create, plan_experiment

    project = _project(args)
    platform = _platform(args)
    return [create(platform, plan_experiment(platform, project))]


def _launch(args: argparse.Namespace) -> list[str]:
    from pictrain.workflow.launch import launch

    project = _project(args)
    return [launch(_platform(args), project, args.gpus, args.again)]


def _publish(args: argparse.Namespace) -> list[str]:
    from pictrain.workflow.model import publish

    project = _project(args)
    return publish(_platform(args), project, args.experiment, args.force)


def _deploy(args: argparse.Namespace) -> list[str]:
    from pictrain.workflow.deploy import deploy

    project = _project(args)
    return deploy(_platform(args), project, args.experiment, args.force)


def _predict(args: argparse.Namespace) -> list[str]:
    from pictrain.errors import UserError
    from pictrain.workflow.predict import (
        draw,
        predict_deployed,
        predict_local,
        where_images_go,
    )

    missing = [str(p) for p in args.image_files if not p.is_file()]
    if missing:
        raise UserError(f"no image {', '.join(missing)}")
    if args.model is not None:
        predictions = [predict_local(args.model, p, args.threshold) for p in args.image_files]
    else:
        from pictrain.workflow.deploy import find_deployment

        project = _project(args)
        platform = _platform(args)
        deployment = find_deployment(platform, project)
        print(where_images_go(deployment.name, args.monitor), file=sys.stderr, flush=True)
        predictions = [
            predict_deployed(platform, deployment, p, args.monitor) for p in args.image_files
        ]
    lines = []
    for prediction, image in zip(predictions, args.image_files, strict=True):
        drawn = draw(prediction, image, args.out)
        lines.append(json.dumps({**prediction.as_json(), "drawn": str(drawn) if drawn else None}))
    return lines


def _preannotate_launch(args: argparse.Namespace) -> list[str]:
    from pictrain.workflow.preannotate import launch

    project = _project(args)
    return [launch(_platform(args), project, args.version, args.model, args.again)]


def _ct(args: argparse.Namespace) -> list[str]:
    from pictrain.workflow.ct import setup

    project = _project(args)
    return setup(_platform(args), project)
