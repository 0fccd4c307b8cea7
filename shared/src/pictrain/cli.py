"""`pictrain`: the container entrypoint, the local tools and the platform workflow, one console
script."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from pictrain import offline
from pictrain.config import TASKS
from pictrain.envvars import MODEL_CONFIG
from pictrain.splitnames import SPLITS
from pictrain.workflow.cli import add_commands as add_workflow_commands

DEMO_IMAGE_SIZE = 160
# Learns the synthetic shapes in ~3 minutes on 2 CPU cores; patience high so it never stops early.
DEMO_PARAMETERS = {"epochs": 30, "image_size": DEMO_IMAGE_SIZE, "batch_size": 16, "patience": 100}


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    _setup_logging()
    offline.configure_environment()
    sys.exit(_command(args))


def _command(args: argparse.Namespace) -> int:
    """The command's exit code (README's). Whatever the user can fix (bad input, a full disk,
    a read-only folder) and Ctrl-C end in one line, every command alike; only a bug shows its
    traceback."""
    from pictrain.errors import user_facing
    from pictrain.redact import redact

    try:
        return args.command(args)
    except KeyboardInterrupt:
        print(f"stopped by {signal.SIGINT.name}", file=sys.stderr, flush=True)
        return 128 + signal.SIGINT
    except Exception as exc:
        known = user_facing(exc, getattr(args, "out", None))  # --out: where it writes
        if known is None:
            raise
        print(f"error: {redact(str(known))}", file=sys.stderr, flush=True)
        return known.exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pictrain",
        description="Train, evaluate and export a model for a Picsellia experiment or a local "
        "COCO dataset folder.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the training job (the images' entrypoint)")
    run.add_argument("--local", type=Path, metavar="DIR", help="local dataset folder, no platform")
    run.add_argument(
        "--name", help="run name (default: the experiment id, or run-<date>-<time> with --local)"
    )
    run.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs are written")
    run.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    _add_config_flag(run)
    run.set_defaults(command=_run)

    demo = sub.add_parser("demo", help="make a synthetic dataset and train on it, no account")
    demo.add_argument("--data", type=Path, help="dataset folder (default: data/demo-<task>)")
    demo.add_argument("--name", help="run name (default: demo-<task>)")
    demo.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs are written")
    demo.add_argument(
        "--images",
        type=int,
        default=240,
        help="synthetic images to make when --data has none yet (default: 240)",
    )
    demo.add_argument(
        "--data-only", action="store_true", help="make the dataset, do not train (`make emulator`)"
    )
    _add_config_flag(demo)
    demo.set_defaults(command=_demo)

    convert = sub.add_parser("convert", help="convert a COCO split to the ultralytics layout")
    convert.add_argument("--task", choices=TASKS, default="detect", help="(default: detect)")
    convert.add_argument("--coco", type=Path, required=True, help="the split's COCO file")
    convert.add_argument(
        "--images", type=Path, required=True, help="the folder its file_name entries are in"
    )
    convert.add_argument(
        "--out", type=Path, required=True, help="dataset folder (other splits go beside)"
    )
    convert.add_argument(
        "--split", choices=SPLITS, default="train", help="which split it is (default: train)"
    )
    convert.set_defaults(command=_convert)

    setup = sub.add_parser(
        "setup-offline", help="write ultralytics settings and fonts (done at image build)"
    )
    setup.set_defaults(command=_setup_offline)

    fetch = sub.add_parser(
        "fetch-weights",
        help="put the image's pretrained weights in place, each checked against its sha256 "
        "(done at image build)",
    )
    fetch.add_argument("--into", type=Path, required=True, help="the image's weights folder")
    fetch.add_argument(
        "--local", type=Path, help="take the files found here instead of downloading them"
    )
    fetch.add_argument("--url", default="", help="the release the other files are downloaded from")
    fetch.add_argument("pins", nargs="*", metavar="MODEL=SHA256", help="the files, pinned")
    fetch.set_defaults(command=_fetch_weights)
    add_workflow_commands(sub)
    return parser


def _add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=MODEL_CONFIG.read(),
        help=f"the image's model.toml (default: ${MODEL_CONFIG.name})",
    )
    parser.add_argument(
        "--task",
        choices=TASKS,
        help="without a model.toml: train this task's default model (default: detect)",
    )


def _run(args: argparse.Namespace) -> int:
    from pictrain.config import load_model_config
    from pictrain.errors import JobInterrupted, UserError, user_facing
    from pictrain.job import Job
    from pictrain.platform.env import NO_EXPERIMENT, read_context
    from pictrain.redact import add_secret
    from pictrain.runstatus import report_failure

    offline.install_assets()
    # Every failure, even before the job starts, leaves its reason in the run folder.
    run_dir = args.runs_dir / (args.name or datetime.now().strftime("run-%Y%m%d-%H%M%S"))
    try:
        if args.local is not None:
            from pictrain.platform.local import LocalBackend
            from pictrain.train.progress import one_line_per_bar_unless_terminal

            one_line_per_bar_unless_terminal()
            config = load_model_config(args.config, args.task)
            return Job(LocalBackend(args.local, run_dir), run_dir, config).run()
        context = read_context(os.environ)
        if context is None:
            raise UserError(NO_EXPERIMENT)
        add_secret(context.api_token.get_secret_value())
        run_dir = args.runs_dir / (
            args.name or context.experiment_id or context.experiment_name or context.job_id
        )
        if not args.worker:
            from pictrain.platform.supervisor import supervise

            worker = [sys.executable, "-m", "pictrain", *sys.argv[1:], "--worker"]
            return supervise(worker, context, run_dir)
        from pictrain.platform.picsellia import PicselliaBackend

        config = load_model_config(args.config, args.task)
        backend = PicselliaBackend(context, config.task)
    except KeyboardInterrupt:  # before the job starts: no platform to tell
        stop = JobInterrupted(signal.SIGINT.name, 0.0)
        return report_failure(run_dir, stop.reason, stop.exit_code)
    except Exception as exc:
        known = user_facing(exc, run_dir)
        if known is None:
            raise
        return report_failure(run_dir, str(known), known.exit_code)
    return Job(backend, run_dir, config).run()


def _demo(args: argparse.Namespace) -> int:
    import json

    from pictrain.config import load_model_config
    from pictrain.synthetic import DATASET_MAKERS

    task = args.task or (load_model_config(args.config).task if args.config else "detect")
    data = args.data or Path("data") / f"demo-{task}"
    name = args.name or f"demo-{task}"
    if not (data / "train" / "annotations.json").exists():
        DATASET_MAKERS[task](data, n_images=args.images, image_size=DEMO_IMAGE_SIZE, seed=0)
        (data / "parameters.json").write_text(json.dumps(DEMO_PARAMETERS))
    if args.data_only:
        print(f"demo dataset in {data}/")
        return 0
    run = argparse.Namespace(
        local=data,
        name=name,
        runs_dir=args.runs_dir,
        config=args.config,
        task=args.task,
        worker=False,
    )
    code = _run(run)
    if code == 0:
        print(f"\nDemo done: {_headline(task, args.runs_dir / name / 'metrics.jsonl')}")
        print(
            f"Results in {args.runs_dir / name}/ (artifacts/, evaluation/, plots/, metrics.jsonl)"
        )
    return code


def _headline(task: str, metrics_file: Path) -> str:
    """The test metrics a newcomer looks at first, from the run's own metrics file."""
    import json

    from pictrain.config import task_spec

    wanted = [f"test/{name}" for name in task_spec(task).headline]
    values = {}
    for line in metrics_file.read_text().splitlines():
        record = json.loads(line)
        if record["name"] in wanted:
            values[record["name"]] = record["value"]
    return ", ".join(f"{k} = {v:.3f}" for k, v in values.items())


def _convert(args: argparse.Namespace) -> int:
    from pictrain.config import task_spec
    from pictrain.data.coco import load_coco
    from pictrain.data.convert import write_data_yaml
    from pictrain.data.labels import labelmap_from
    from pictrain.data.prepare import converter, dataset_layout
    from pictrain.errors import UserError

    if not args.images.is_dir():
        raise UserError(f"image folder {args.images} does not exist")
    index = load_coco(args.coco, keep=task_spec(args.task).coco_fields)
    names = labelmap_from([index])
    keypoints = dataset_layout(args.task, [index], names)
    summary = converter(args.task, keypoints)(index, args.images, args.out, args.split, names)
    print(summary)
    if task_spec(args.task).per_image:
        print(f"class folders in {args.out / args.split}")
        return 0
    converted = [s for s in SPLITS if (args.out / "images" / s).is_dir()]
    if "train" in converted:
        print(f"wrote {write_data_yaml(args.out, names, converted, keypoints)}")
    else:
        print("no data.yaml yet: convert a train split into the same --out")
    return 0


def _setup_offline(args: argparse.Namespace) -> int:
    print(f"ultralytics settings and fonts in {offline.install_assets()}")
    return 0


def _fetch_weights(args: argparse.Namespace) -> int:
    from pictrain.errors import UserError
    from pictrain.pretrained import Pin, install
    from pictrain.runstatus import FAILURE_MARK

    try:
        install([Pin.parse(pin) for pin in args.pins], args.into, args.local, args.url)
    except UserError as exc:
        logging.getLogger("pictrain").error("%s%s", FAILURE_MARK, exc)
        return exc.exit_code
    return 0


def _setup_logging() -> None:
    from pictrain.redact import RedactingFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
