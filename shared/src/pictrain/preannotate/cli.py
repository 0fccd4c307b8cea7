"""`pictrain preannotate`: the processing image's command (a Picsellia job: `job_id` and the
credentials in the environment), the same pass on a local folder (`--local DIR --model FILE
--out FILE.json`), and the arguments of `pictrain preannotate launch` (the processing on a
dataset version: a workflow command, `launch` is its handler, so this folder never imports
workflow/). Imports stay inside the handlers: `pictrain --help` loads neither the SDK nor
onnxruntime."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_command(
    sub: Any,
    common: argparse.ArgumentParser,
    handle: Callable[..., None],
    launch_handler: Callable[[argparse.Namespace], list[str]],
) -> None:
    parser = sub.add_parser(
        "preannotate",
        help="pre-annotate with a trained export: a Picsellia processing job (the "
        "preannotate image's command), a local folder (--local), or `launch` one",
    )
    parser.add_argument("--local", type=Path, metavar="DIR", help="a folder of images, no platform")
    parser.add_argument("--model", type=Path, metavar="FILE", help="with --local: the export")
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="with --local: COCO file")
    parser.add_argument(
        "--threshold",
        type=float,
        help="with --local: keep predictions from this score (default: the export's "
        "operating point, else 0.25)",
    )
    parser.add_argument(
        "--to-label", type=int, default=20, help="with --local: images to mark (default 20)"
    )
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="job's working folder")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(command=_preannotate)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    launch = actions.add_parser(
        "launch", parents=[common], help="run the registered processing on a dataset version"
    )
    launch.add_argument(
        "--version", help="dataset version: a version of [dataset], or its id ([preannotate])"
    )
    launch.add_argument(
        "--model", help="model version: NAME (its latest), NAME/VERSION or an id ([preannotate])"
    )
    launch.add_argument(
        "--again",
        action="store_true",
        help="launch although an earlier launch got no answer (none of its jobs is there)",
    )
    handle(launch, launch_handler)


def _preannotate(args: argparse.Namespace) -> int:
    if args.local is not None:
        return _local(args)
    from pictrain.errors import UserError
    from pictrain.platform.env import read_context
    from pictrain.redact import add_secret

    context = read_context(os.environ)
    if context is None or not context.job_id:
        raise UserError(
            "no job_id: on Picsellia the processing sets it; locally pass --local DIR "
            "--model FILE --out FILE.json"
        )
    add_secret(context.api_token.get_secret_value())
    run_dir = args.runs_dir / context.job_id
    if not args.worker:
        from pictrain.platform.supervisor import supervise

        worker = [sys.executable, "-m", "pictrain", *sys.argv[1:], "--worker"]
        return supervise(worker, context, run_dir, experiment=False)
    from pictrain.preannotate.job import run_job

    return run_job(context, run_dir)


def _local(args: argparse.Namespace) -> int:
    from pictrain.errors import UserError
    from pictrain.preannotate.local import LocalFolder
    from pictrain.preannotate.model import Predictor
    from pictrain.preannotate.params import read_parameters
    from pictrain.preannotate.run import preannotate

    if args.model is None or args.out is None:
        raise UserError("--local needs --model FILE (an export) and --out FILE.json")
    given = {"to_label": args.to_label}
    if args.threshold is not None:
        given["confidence_threshold"] = args.threshold
    params = read_parameters(given).params
    predictor = Predictor.load(
        args.model, "--model", params.confidence_threshold, args.to_label > 0
    )
    folder = LocalFolder(args.local, args.out, predictor.model)
    print(f"keeping predictions at {predictor.thresholds.chosen_by}", flush=True)
    summary, done = preannotate(folder, predictor, params)
    for line in [*summary.lines(), *done, f"wrote {folder.save()}"]:
        print(line, flush=True)
    return 0
