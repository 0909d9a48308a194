"""The `autoclint` command: `autoclint convert | train | predict ...` (`autoclint COMMAND --help`)."""
from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator

from autoclint.errors import AutoclintError


def progress(iterable: Iterable, desc: str) -> Iterable:
    """A tqdm bar on an interactive terminal; silent otherwise (CI logs, pipes)."""
    if not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, desc=desc, unit="example", leave=False)


def budget_bar(seconds: float):
    """A tqdm bar over a time budget on an interactive terminal; None otherwise."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    return tqdm(total=round(seconds, 1), unit="s", desc="training",
                bar_format="{desc}: {bar} {n:.0f}/{total:.0f} s{postfix}")


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
    from autoclint.data import convert, source
    names = None
    if args.class_names:
        with open(args.class_names, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    collected = source.collect(args.source, args.y, names)
    name = args.name or source.default_name(args.source)
    root = convert.write_dataset(collected, args.out, name, args.test_size, args.seed, args.max_side,
                                 args.max_frames, args.overwrite, progress)
    print(f"wrote {root}: {len(collected.examples)} {collected.kind} examples, {len(collected.class_names)} classes")
    return 0


# ----------------------------------------------------------------------------- train

TRAIN_HELP = """Train the autoclint model on your data within a time budget and save the best predictor.

DATA is an AutoDL dataset, or anything `autoclint convert` reads (a folder of class folders, optionally
split into train/ and test/; a `path,labels` CSV; numpy arrays). A raw source is converted once into a
cache (~/.cache/autoclint/datasets, or $AUTOCLINT_CACHE_DIR), keyed by its files: the next run on the
same files reuses it, a changed folder is converted again; --test-size of each class is kept apart as a
test set unless the folder is split already.

Runs the same learner as the challenge submission (model.py), in this process, without the challenge
clock's harness: train() is called until the model stops or the budget is spent. When the dataset has
a test set, a prediction is made on it whenever validation improves, and scored when <name>.solution
is present. The saved folder is what `autoclint predict` reads.
Examples:  autoclint train photos/ --budget 60 --save models/photos
           autoclint train datasets/Photos --budget 300 --save models/photos
"""


def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train on an AutoDL dataset and save the best model",
                              description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATA", help="AutoDL dataset (its root or <name>.data folder), or a folder "
                   "of class folders, a .csv, .npz or .npy to convert")
    p.add_argument("--save", required=True, help="folder for the trained model (written once training ends; an "
                   "earlier saved model there is replaced, a folder holding other files is refused)")
    p.add_argument("--overwrite", action="store_true", help="replace the --save folder even if it holds other files")
    p.add_argument("--budget", type=float, default=300.0, help="seconds of training (default 300)")
    p.add_argument("--backbone", default="", help="network (default: the best pretrained one available)")
    p.add_argument("--test-size", type=float, default=0.2, help="share of each class kept apart as a test set "
                   "when DATA is converted (default 0.2)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a learner setting (autoclint/train/config.py, where each has its reason), e.g. "
                        "--set lr=0.01 --set search.min_candidates=4; repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of the learner (default 0); choices that depend on "
                   "the machine's speed may still differ between runs")
    p.set_defaults(func=run_train)


def _data_dir(path: str) -> str:
    from autoclint.harness.layout import find_data_dir
    path = os.path.abspath(path.rstrip("/"))
    if not os.path.isdir(path):
        raise AutoclintError(f"{path}: no such dataset folder.")
    return path if path.endswith(".data") else find_data_dir(path)


def _class_names(data_dir: str, dataset) -> list[str]:
    """`<name>_label.name` beside the .data folder when present, else the metadata's label map."""
    from autoclint.harness.layout import task_name
    path = os.path.join(os.path.dirname(data_dir), f"{task_name(data_dir)}_label.name")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == dataset.get_metadata().get_output_size():
            return names
    return dataset.get_class_labels()


def run_train(args: argparse.Namespace) -> int:
    # Arguments first: a mistake is reported before seconds of TensorFlow and torch imports.
    if not args.budget > 0:
        raise AutoclintError(f"--budget={args.budget:g}: must be positive.")
    if not 0 < args.test_size < 1:
        raise AutoclintError(f"--test-size={args.test_size:g}: must be between 0 and 1.")
    from autoclint.train.config import TrainCfg, with_overrides
    try:
        cfg = with_overrides(TrainCfg(backbone=args.backbone, seed=args.seed), args.set)
    except ValueError as e:
        raise AutoclintError(f"--set {e}.") from None
    from autoclint.files import check_model_destination
    check_model_destination(args.save, args.overwrite)  # before the budget is spent, not after
    from autoclint.data.source import as_autodl_dataset
    root = as_autodl_dataset(args.dataset, args.test_size, progress=progress)
    from autoclint.data.dataset import AutoDLDataset, check_records
    from autoclint.harness.layout import task_name
    from autoclint.harness.scoring import read_solution
    from autoclint.nets import list_models
    from autoclint.train.checkpoint import save_trained
    from autoclint.train.session import Session
    if args.backbone and args.backbone not in list_models():
        raise AutoclintError(f"--backbone={args.backbone}: unknown; known: {', '.join(list_models())}.")
    data_dir = _data_dir(root)
    check_records(os.path.join(data_dir, "train"))
    train = AutoDLDataset(os.path.join(data_dir, "train"))
    test = None
    if os.path.isdir(os.path.join(data_dir, "test")):
        check_records(os.path.join(data_dir, "test"))
        test = AutoDLDataset(os.path.join(data_dir, "test"))
    solution_path = os.path.join(os.path.dirname(data_dir), f"{task_name(data_dir)}.solution")
    solution = read_solution(solution_path) if test is not None and os.path.isfile(solution_path) else None
    session = Session(train.get_metadata().get_output_size(), cfg,
                      train_size=train.get_metadata().size())
    start = time.monotonic()
    bar = budget_bar(args.budget)
    with contextlib.ExitStack() as stack:
        if bar is not None:  # log lines go above the bar instead of through it
            from tqdm.contrib.logging import logging_redirect_tqdm
            stack.enter_context(logging_redirect_tqdm())  # the root logger's handler (main's basicConfig)
        interrupted = False
        try:
            _train_until_done(session, train, test, solution, args.budget, start, bar)
        except KeyboardInterrupt:  # Ctrl-C: what was learned so far is still worth saving
            interrupted = True
            if bar is not None:
                bar.close()
    exported = session.export()
    if interrupted:
        if exported is None:
            raise AutoclintError("interrupted before any predictor was fitted; nothing saved.")
        print(f"interrupted at {time.monotonic() - start:.1f} s: saving the best predictor so far", file=sys.stderr)
    folder = save_trained(exported, args.save, _class_names(data_dir, train), args.overwrite)
    validated = "" if exported.valid_nauc != exported.valid_nauc else f", valid NAUC {exported.valid_nauc:.4f}"
    print(f"saved {folder}: {exported.kind} predictor{validated}")
    return 0


def _train_until_done(session, train, test, solution, budget: float, start: float, bar) -> None:
    """train() and test() in turn, as the challenge's ingestion does, with a line per new prediction."""
    from autoclint.metrics import nauc
    shown = None
    while not session.done_training and time.monotonic() - start < budget:
        session.train(train.get_dataset(), budget - (time.monotonic() - start))
        if test is not None:
            prediction = session.test(test.get_dataset(), budget - (time.monotonic() - start))
            if prediction is not shown:
                shown = prediction
                score = f", test NAUC {nauc(solution, prediction):.4f}" if solution is not None else ""
                status = session.status()
                line = f"t={time.monotonic() - start:.1f}s new prediction ({status.kind}): {status.score}{score}"
                print(line, flush=True) if bar is None else bar.write(line)
        if bar is not None:
            status = session.status()
            bar.set_postfix_str(f"{status.stage}, {status.score}")
            bar.update(min(budget, time.monotonic() - start) - bar.n)
    if bar is not None:
        bar.update(min(budget, time.monotonic() - start) - bar.n)
        bar.close()


# ----------------------------------------------------------------------------- predict

PREDICT_HELP = """Predict classes with a model saved by `autoclint train`.

INPUT is an AutoDL dataset (its test set, or --subset train), or image / video files and folders of
them (searched recursively; a folder holding only images counts as images, not as one clip). Writes a
CSV: example, predicted class(es), then one probability column per class, P(class): calibrated on the
held-out part of the training data; they sum to 1 over classes, except for multi-label models, where
each is the probability of that class alone and a class is predicted above its own threshold (fitted on
held-out data, saved with the model).
Example:  autoclint predict models/photos new_photos/ --out predictions.csv
"""


def add_predict_parser(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict with a saved model on a dataset or on files",
                              description=PREDICT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="folder written by `autoclint train --save`")
    p.add_argument("inputs", nargs="+", help="an AutoDL dataset, or image / video files and folders")
    p.add_argument("--out", default="-", help="CSV file to write (default: standard output)")
    p.add_argument("--subset", default="test", choices=["train", "test"], help="AutoDL dataset subset (default test)")
    p.set_defaults(func=run_predict)


def _media_files(inputs: list[str]) -> list[str]:
    from autoclint.data.convert import _media_kind
    files = []
    for path in inputs:
        if os.path.isfile(path):
            if _media_kind(path) is None:
                raise AutoclintError(f"{path}: not an image or video file this tool reads.")
            files.append(path)
        elif os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files += [os.path.join(root, n) for n in sorted(names) if _media_kind(n)]
        else:
            raise AutoclintError(f"{path}: no such file or folder.")
    if not files:
        raise AutoclintError(f"{', '.join(inputs)}: no image or video file found.")
    return files


def _file_examples(files: list[str]) -> Iterator:
    """(T, H, W, C) float32 in [0, 1] per file, as the AutoDL reader yields them."""
    import numpy as np
    from autoclint.data.convert import _media_kind, load_image, load_video
    for path in progress(files, "reading"):
        pixels = load_video(path) if _media_kind(path) == "video" else load_image(path)[0][None]
        yield pixels.astype(np.float32) / 255.0, np.zeros(1, np.float32)


def run_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import tensorflow as tf
    from autoclint.train.checkpoint import load_trained
    model = load_trained(args.model)
    first = args.inputs[0].rstrip("/")
    from autoclint.data.source import is_autodl_dataset
    if len(args.inputs) == 1 and is_autodl_dataset(first):
        from autoclint.data.dataset import AutoDLDataset, check_records
        subset = os.path.join(_data_dir(first), args.subset)
        check_records(subset)
        dataset = AutoDLDataset(subset)
        if dataset.get_metadata().get_output_size() != model.num_classes:
            raise AutoclintError(f"{subset}: has {dataset.get_metadata().get_output_size()} classes, the model "
                                 f"{model.num_classes}.")
        scores = model.predict_dataset(dataset.get_dataset())
        names = [f"{args.subset}-{i}" for i in range(len(scores))]
    else:
        names = _media_files(args.inputs)
        spec = (tf.TensorSpec((None, None, None, None), tf.float32), tf.TensorSpec((1,), tf.float32))
        examples = tf.data.Dataset.from_generator(lambda: _file_examples(names), output_signature=spec)
        scores = model.predict_dataset(examples)
    classes = model.class_names or [str(i) for i in range(model.num_classes)]
    out = sys.stdout if args.out == "-" else open(args.out, "w", newline="", encoding="utf-8")
    try:
        writer = csv.writer(out)
        writer.writerow(["example", "predicted"] + [f"P({c})" for c in classes])
        for name, row, chosen in zip(names, scores, model.calibration.decide(scores)):
            predicted = " ".join(classes[k] for k in np.flatnonzero(chosen))
            writer.writerow([name, predicted] + [f"{v:.6g}" for v in row])
    finally:
        if out is not sys.stdout:
            out.close()
    if args.out != "-":
        print(f"wrote {args.out}: {len(scores)} predictions", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    from autoclint import __version__
    parser = argparse.ArgumentParser(prog="autoclint", description="Any-time image and video classification "
                                     "under the AutoDL challenge protocol.")
    parser.add_argument("--version", action="version", version=f"autoclint {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_convert_parser(subparsers)
    add_train_parser(subparsers)
    add_predict_parser(subparsers)
    return parser


def quiet_tensorflow() -> None:
    """TensorFlow's start-up banner (oneDNN, CPU instructions, absl) says nothing a user can act on."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except AutoclintError as e:
        print(f"autoclint: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
