"""`pictrain`: the container entrypoint and the local tools, one console script."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from pictrain import offline

MODEL_CONFIG_ENV = "PICTRAIN_MODEL_CONFIG"


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    _setup_logging()
    offline.configure_environment()
    sys.exit(args.command(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pictrain",
        description="Train, evaluate and export a model for a Picsellia experiment or a local "
        "COCO dataset folder.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the training job (the images' entrypoint)")
    run.add_argument("--local", type=Path, metavar="DIR", help="local dataset folder, no platform")
    run.add_argument("--name", help="run name (default: derived from the time)")
    run.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs are written")
    run.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    _add_config_flag(run)
    run.set_defaults(command=_run)

    demo = sub.add_parser("demo", help="make a synthetic dataset and train on it, no account")
    demo.add_argument("--data", type=Path, default=Path("data/demo-detect"))
    demo.add_argument("--name", default="demo-detect")
    demo.add_argument("--runs-dir", type=Path, default=Path("runs"))
    demo.add_argument("--images", type=int, default=240, help="synthetic images to generate")
    _add_config_flag(demo)
    demo.set_defaults(command=_demo)

    convert = sub.add_parser("convert", help="convert a COCO split to the ultralytics layout")
    convert.add_argument("--task", choices=["detect"], default="detect")
    convert.add_argument("--coco", type=Path, required=True)
    convert.add_argument("--images", type=Path, required=True)
    convert.add_argument("--out", type=Path, required=True)
    convert.add_argument("--split", choices=["train", "val", "test"], default="train")
    convert.set_defaults(command=_convert)

    setup = sub.add_parser(
        "setup-offline", help="write ultralytics settings and fonts (done at image build)"
    )
    setup.set_defaults(command=_setup_offline)
    return parser


def _add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get(MODEL_CONFIG_ENV),
        help=f"the image's model.toml (default: ${MODEL_CONFIG_ENV}, else YOLOv8n detection)",
    )


def _run(args: argparse.Namespace) -> int:
    from pictrain.config import load_model_config
    from pictrain.errors import UserError
    from pictrain.job import Job
    from pictrain.platform.env import read_context

    offline.install_assets()
    try:
        config = load_model_config(args.config)
        if args.local is not None:
            from pictrain.platform.local import LocalBackend

            run_dir = args.runs_dir / (args.name or datetime.now().strftime("run-%Y%m%d-%H%M%S"))
            return Job(LocalBackend(args.local, run_dir), run_dir, config).run()
        context = read_context(os.environ)
        if context is None:
            raise UserError(
                "no experiment: set experiment_id (or experiment_name and project_name) "
                "with api_token to train on Picsellia, or pass --local DIR"
            )
        run_dir = args.runs_dir / (args.name or context.experiment_id or context.experiment_name)
        if not args.worker:
            from pictrain.platform.supervisor import supervise

            worker = [sys.executable, "-m", "pictrain", *sys.argv[1:], "--worker"]
            return supervise(worker, context, run_dir / "job.log")
        from pictrain.platform.picsellia import PicselliaBackend

        backend = PicselliaBackend(context, config.task)
    except UserError as exc:
        logging.getLogger("pictrain").error("FAILED: %s", exc)
        return exc.exit_code
    return Job(backend, run_dir, config).run()


def _demo(args: argparse.Namespace) -> int:
    import json

    from pictrain.synthetic import make_detection_dataset

    if not (args.data / "train" / "annotations.json").exists():
        make_detection_dataset(args.data, n_images=args.images, image_size=160, seed=0)
        (args.data / "parameters.json").write_text(
            json.dumps({"epochs": 30, "image_size": 160, "batch_size": 16, "patience": 100})
        )
    code = _run(
        argparse.Namespace(
            local=args.data,
            name=args.name,
            runs_dir=args.runs_dir,
            config=args.config,
            worker=False,
        )
    )
    run_dir = args.runs_dir / args.name
    stats_file = run_dir / "evaluation" / "coco_stats.json"
    if code == 0 and stats_file.exists():
        stats = json.loads(stats_file.read_text())
        print(
            f"\nDemo done. Test mAP50 = {stats['mAP50']:.3f}, mAP50-95 = {stats['mAP50-95']:.3f}\n"
            f"Results: {run_dir}/ (metrics.jsonl, artifacts/, evaluation/, plots/, status.json)"
        )
    return code


def _convert(args: argparse.Namespace) -> int:
    from pictrain.data.convert import convert_detection, write_data_yaml
    from pictrain.data.labels import labelmap_from
    from pictrain.errors import UserError

    try:
        names = labelmap_from([args.coco])
        summary = convert_detection(args.coco, args.images, args.out, args.split, names)
    except UserError as exc:
        logging.getLogger("pictrain").error("FAILED: %s", exc)
        return exc.exit_code
    print(summary)
    converted = [s for s in ("train", "val", "test") if (args.out / "images" / s).is_dir()]
    if "train" in converted:
        print(f"wrote {write_data_yaml(args.out, names, converted)}")
    else:
        print("no data.yaml yet: convert a train split into the same --out")
    return 0


def _setup_offline(args: argparse.Namespace) -> int:
    print(f"ultralytics settings and fonts in {offline.install_assets()}")
    return 0


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
