"""Write a synthetic COCO dataset (coloured shapes) for one task in the local folder contract."""

from __future__ import annotations

import argparse
from pathlib import Path

from pictrain.synthetic import DATASET_MAKERS


def parse_splits(text: str) -> dict[str, int]:
    """`train=80,val=10,test=10` -> {"train": 80, "val": 10, "test": 10}."""
    splits = {}
    for item in text.split(","):
        name, sep, weight = item.partition("=")
        if not sep or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected name=weight, got {item!r}")
        splits[name.strip()] = int(weight)
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    parser.add_argument("--task", choices=list(DATASET_MAKERS), default="detect")
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--splits",
        type=parse_splits,
        default=None,
        help="relative split sizes, e.g. train=80,val=10,test=10 (default: all in train)",
    )
    args = parser.parse_args()
    try:
        files = DATASET_MAKERS[args.task](
            args.out, args.n_images, args.image_size, args.seed, args.splits
        )
    except ValueError as err:
        parser.error(str(err))
    for split, coco_file in files.items():
        print(f"{split}: {coco_file}")


if __name__ == "__main__":
    main()
