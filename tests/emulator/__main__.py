"""`python -m tests.emulator --port 8080 --seed DIR`: serve a seeded emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from tests.emulator.dataset_dir import read_dataset_dir
from tests.emulator.emulator import Emulator, loopback_env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--token", default="emulator-token")
    parser.add_argument("--seed", type=Path, help="dataset folder to seed an experiment from")
    parser.add_argument("--dataset-type", default="OBJECT_DETECTION")
    parser.add_argument("--base-model-file", type=Path, help="stored as model-latest")
    args = parser.parse_args(argv)

    emulator = Emulator.start(token=args.token, port=args.port)
    try:
        print(f"# Picsellia emulator on {emulator.url}")
        if args.seed is not None:
            splits, parameters = read_dataset_dir(args.seed)
            base = {"model-latest": args.base_model_file} if args.base_model_file else None
            ids = emulator.seed_experiment(
                splits,
                dataset_type=args.dataset_type,
                parameters=parameters,
                base_model_files=base,
            )
            env = emulator.job_env(ids)
            if os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy"):
                env |= loopback_env()
            for name, value in env.items():
                print(f"export {name}={value}")
        print("# Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        for record in emulator.state.unknown_routes:
            print(f"# unknown route: {record.method} {record.path}")


if __name__ == "__main__":
    main()
