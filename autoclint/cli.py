"""The `autoclint` command: `autoclint convert ...` (more commands: `autoclint --help`)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable

from autoclint.errors import AutoclintError


def progress(iterable: Iterable, desc: str) -> Iterable:
    """A tqdm bar on an interactive terminal; silent otherwise (CI logs, pipes)."""
    if not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, desc=desc, unit="example", leave=False)


# ----------------------------------------------------------------------------- convert

CONVERT_HELP = """Turn your data into an AutoDL dataset (train/test TFRecords, metadata, solution).

Inputs, chosen by what SOURCE is:
  a folder of class sub-folders      images (jpg png bmp tif pgm ...), videos (avi mp4 ...) or
                                     sub-folders of frames (one clip each); optionally inside
                                     train/ and test/ (or training/ validation/ test/) folders
  a .csv file                        header `path,labels`; labels are space-separated names
                                     (several per row = multi-label); paths relative to the CSV
  a .npz file (x, y) or x.npy        x (N,H,W[,C]) or (N,T,H,W,C), uint8 or float; y (N,) class
                                     indices or (N,K) multi-hot; y.npy beside x.npy or --y
Example:  autoclint convert photos/ --out datasets/ --name Photos
"""


def add_convert_parser(subparsers) -> None:
    p = subparsers.add_parser("convert", help="turn images, videos, arrays or a CSV into an AutoDL dataset",
                              description=CONVERT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="folder, .csv, .npz or x.npy")
    p.add_argument("--out", required=True, help="folder in which the dataset folder <name> is created")
    p.add_argument("--name", default=None, help="dataset name (default: the source's name)")
    p.add_argument("--y", default=None, help="labels .npy for an x.npy source (default: y.npy beside it)")
    p.add_argument("--class-names", default=None, help="file with one class name per line (numpy input)")
    p.add_argument("--test-size", type=float, default=0.2, help="share of each class held out for test (default 0.2)")
    p.add_argument("--seed", type=int, default=42, help="seed of the stratified split (default 42)")
    p.add_argument("--max-side", type=int, default=0, help="shrink larger images to this many pixels on the long side")
    p.add_argument("--max-frames", type=int, default=0, help="keep at most this many evenly spaced frames per video")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from autoclint.data import convert
    source = args.source.rstrip("/")
    if source.endswith(".csv"):
        collected = convert.collect_csv(source)
    elif source.endswith((".npz", ".npy")):
        x, y = convert.load_arrays(source, args.y)
        names = None
        if args.class_names:
            with open(args.class_names, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
        collected = convert.collect_arrays(x, y, names, origin=source)
    else:
        collected = convert.collect_folder(source)
    # a CSV is named after its folder: `pokemon/labels.csv` -> pokemon
    stem_of = os.path.dirname(os.path.abspath(source)) if source.endswith(".csv") else source
    name = args.name or os.path.splitext(os.path.basename(stem_of))[0]
    root = convert.write_dataset(collected, args.out, name, args.test_size, args.seed, args.max_side,
                                 args.max_frames, args.overwrite, progress)
    print(f"wrote {root}: {len(collected.examples)} {collected.kind} examples, {len(collected.class_names)} classes")
    return 0


# ----------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoclint", description="Any-time image and video classification "
                                     "under the AutoDL challenge protocol.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_convert_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except AutoclintError as e:
        print(f"autoclint: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
