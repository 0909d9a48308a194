"""The `autoclint` command: `autoclint convert | train | predict | report | cv | models` (`autoclint COMMAND --help`)."""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
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
Writes <name>/files.csv (split, index, source file, labels) beside the dataset: `predict` names the
rows of its test set by those files.
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
    p.add_argument("--skip-unreadable", action="store_true", help="leave out files that cannot be decoded (each "
                   "named in the log, then their count) instead of stopping")
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
                                 args.max_frames, args.overwrite, progress, skip_unreadable=args.skip_unreadable)
    print(f"wrote {root}: {len(collected.examples)} {collected.kind} examples, {len(collected.class_names)} classes")
    return 0


# ----------------------------------------------------------------------------- train

SAVE_EVERY = 0.1  # share of the budget between two saves of the run folder while training: a save takes
#   ~0.1-0.3 s (calibration, the weights), ten of them cost a percent of the budget at most

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
The run folder (--out) holds the saved model (what `autoclint predict` reads), metrics.json (every
prediction made while training, with its held-out and test NAUC, and what the learner chose),
config.json (the settings used), log.txt and curve.png; `autoclint report RUN` adds a report.
Examples:  autoclint train photos/ --budget 60 --out runs/photos
           autoclint train datasets/Photos --budget 300 --out runs/photos --set lr=0.01
"""


def add_learner_arguments(p) -> None:
    p.add_argument("--backbone", default="", help="network (default: the best pretrained one available)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a learner setting (autoclint/train/config.py, where each has its reason), e.g. "
                        "--set lr=0.01 --set search.min_candidates=4; repeatable")
    p.add_argument("--config", default=None, metavar="FILE", help="a JSON file of settings, e.g. the config.json "
                   "of an earlier run folder (--set and --seed apply on top)")
    p.add_argument("--seed", type=int, default=None, help="seed of the learner (default 0); choices that depend on "
                   "the machine's speed may still differ between runs")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: a CUDA GPU when there is one)")
    p.add_argument("--max-params", type=int, default=None, metavar="N", help="only networks of at most N parameters "
                   "(head included; `autoclint models` lists their sizes)")
    p.add_argument("--min-precision", type=float, default=None, metavar="P", help="save the best predictor whose "
                   "macro precision on the held-out data reaches P (0-1); when none does, say so and save the most "
                   "precise one")


def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train on an AutoDL dataset and save the best model",
                              description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATA", help="AutoDL dataset (its root or <name>.data folder), or a folder "
                   "of class folders, a .csv, .npz or .npy to convert")
    p.add_argument("--out", "--save", dest="out", required=True, metavar="RUN",
                   help="run folder: the trained model and the record of its training (written at the first "
                        "prediction, again every tenth of the budget and when training ends or on Ctrl-C / SIGTERM, "
                        "each time with the best predictor so far and atomically: a killed run leaves a usable "
                        "model; metrics.json's state says training, finished or interrupted; an earlier run "
                        "there is replaced, a folder holding other files is refused)")
    p.add_argument("--overwrite", action="store_true", help="replace the --out folder even if it holds other files")
    p.add_argument("--budget", type=float, default=300.0, help="seconds of training (default 300); starting up "
                   "(TensorFlow and torch imports, opening the data: ~5-10 s) and the final save come on top, the "
                   "last line says how long the command took in all")
    p.add_argument("--test-size", type=float, default=0.2, help="share of each class kept apart as a test set "
                   "when DATA is converted (default 0.2)")
    add_learner_arguments(p)
    p.set_defaults(func=run_train)


def _data_dir(path: str) -> str:
    from autoclint.data.source import data_dir_of
    return data_dir_of(path)


def _solution_path(data_dir: str) -> str:
    from autoclint.data.source import solution_path_of
    return solution_path_of(data_dir)


def _learner_config(args: argparse.Namespace):
    """TrainCfg from --config, then --backbone / --seed / --device, then --set; one sentence when wrong."""
    from autoclint.train.config import TrainCfg, settings_from_file, with_overrides
    cfg = TrainCfg()
    if args.config:
        try:
            cfg = with_overrides(cfg, settings_from_file(args.config))
        except ValueError as e:
            message = str(e)
            raise AutoclintError(message if message.startswith(args.config) else f"{args.config}: {message}.") from None
    if args.min_precision is not None and not 0 < args.min_precision <= 1:
        raise AutoclintError(f"--min-precision={args.min_precision:g}: must be in (0, 1].")
    given = [f"backbone={args.backbone}"] * bool(args.backbone) + [f"seed={args.seed}"] * (args.seed is not None)
    given += [f"min_precision={args.min_precision}"] * (args.min_precision is not None)
    try:
        cfg = with_overrides(cfg, given + [f"device={args.device}"] * bool(args.device) + args.set)
    except ValueError as e:
        raise AutoclintError(f"--set {e}.") from None
    _check_device(cfg.device)
    if args.max_params is not None and args.max_params < 1:
        raise AutoclintError(f"--max-params={args.max_params}: must be positive.")
    return cfg


def run_train(args: argparse.Namespace) -> int:
    started = time.monotonic()
    # Arguments first: a mistake is reported before seconds of TensorFlow and torch imports.
    if not args.budget > 0:
        raise AutoclintError(f"--budget={args.budget:g}: must be positive.")
    if not 0 < args.test_size < 1:
        raise AutoclintError(f"--test-size={args.test_size:g}: must be between 0 and 1.")
    cfg = _learner_config(args)
    from autoclint.files import check_model_destination
    check_model_destination(args.out, args.overwrite)  # before the budget is spent, not after
    from autoclint.data.source import as_autodl_dataset
    root = as_autodl_dataset(args.dataset, args.test_size, progress=progress)
    folder, kind, valid_nauc, _ = _train_run(root, cfg, args.budget, args.out, args.overwrite,
                                             {"data": os.path.abspath(args.dataset), "test_size": args.test_size},
                                             args.max_params)
    validated = "" if valid_nauc != valid_nauc else f", valid NAUC {valid_nauc:.4f}"
    print(f"saved {folder}: {kind} predictor{validated} ({time.monotonic() - started:.1f} s in all: training "
          f"stays within --budget, starting up and saving come on top)")
    return 0


def _train_run(root: str, cfg, budget: float, out: str, overwrite: bool, about: dict,
               max_params: int | None = None) -> tuple[str, str, float, bool]:
    """Train on the AutoDL dataset `root` for `budget` seconds and write the run folder `out`; `about` goes
    into its metrics.json. Returns the folder, the saved predictor's kind, its held-out NAUC and whether
    Ctrl-C ended training (the best predictor so far is saved then)."""
    from autoclint.data.source import open_dataset
    from autoclint.nets import list_models
    from autoclint.train.checkpoint import save_trained
    from autoclint.train.session import Session
    if cfg.backbone and cfg.backbone not in list_models():
        raise AutoclintError(f"--backbone={cfg.backbone}: unknown; known: {', '.join(list_models())}.")
    opened = open_dataset(root)
    data_dir, train, test, solution = opened.data_dir, opened.train, opened.test, opened.solution
    if max_params is not None:
        from autoclint.nets import default_backbone
        from autoclint.nets.registry import backbone_within
        preferred = cfg.backbone or default_backbone()
        try:
            chosen = backbone_within(max_params, train.get_metadata().get_output_size(), preferred,
                                     levels=cfg.feature_levels)
        except ValueError as e:
            raise AutoclintError(f"--max-params={max_params}: {e}.") from None
        if chosen != preferred:
            logging.getLogger("autoclint").warning("--max-params=%d: %s is the largest network within it", max_params,
                                                   chosen)
        cfg = dataclasses.replace(cfg, backbone=chosen)
    session = Session(train.get_metadata().get_output_size(), cfg,
                      train_size=train.get_metadata().size())
    start = time.monotonic()
    bar = budget_bar(budget)
    predictions: list[dict] = []
    log_text = io.StringIO()  # the run folder's log.txt: the learner's lines and the prediction lines

    def save(exported, state: str) -> str:
        run = {**about, "dataset": os.path.dirname(data_dir), "budget_s": budget,
               "elapsed_s": round(time.monotonic() - start, 2), "state": state,
               "interrupted": state == "interrupted", "seed": cfg.seed, "version": _version(),
               "predictions": predictions, "learner": session.choices()}
        extra = {"metrics.json": json.dumps(run, indent=1).encode(),
                 "config.json": json.dumps(dataclasses.asdict(cfg), indent=1).encode(),
                 "log.txt": log_text.getvalue().encode()}
        if state != "training":  # the figure costs a matplotlib import; `report` draws it from metrics.json
            from autoclint.report import curve_png
            extra["curve.png"] = curve_png(predictions, budget)
        return save_trained(exported, out, opened.class_names, overwrite, extra)

    saved_at = [-math.inf]

    def save_while_training() -> None:
        """A usable run folder as soon as there is a prediction, then every SAVE_EVERY of the budget, so a
        killed run (SIGKILL, out of memory, power cut) leaves its latest predictor; atomic, as every save."""
        now = time.monotonic() - start
        if now - saved_at[0] >= SAVE_EVERY * budget:
            exported = session.export(warn=False)
            if exported is not None:
                save(exported, "training")
                saved_at[0] = now

    handler = logging.StreamHandler(log_text)
    handler.setFormatter(logging.Formatter("%(message)s"))
    learner_log = logging.getLogger("autoclint")
    with contextlib.ExitStack() as stack:
        learner_log.addHandler(handler)
        stack.callback(learner_log.removeHandler, handler)
        if learner_log.getEffectiveLevel() > logging.INFO:  # log.txt holds the learner's lines whatever the caller set
            stack.callback(learner_log.setLevel, learner_log.level)
            learner_log.setLevel(logging.INFO)
        if bar is not None:  # log lines go above the bar instead of through it
            from tqdm.contrib.logging import logging_redirect_tqdm
            stack.enter_context(logging_redirect_tqdm())  # the root logger's handler (main's basicConfig)
        interrupted = False
        stack.enter_context(_terminate_as_interrupt())
        try:
            _train_until_done(session, train, test, solution, budget, start, bar, predictions, log_text,
                              save_while_training)
        except KeyboardInterrupt:  # Ctrl-C or `kill`: what was learned so far is still worth saving
            interrupted = True
            if bar is not None:
                bar.close()
        elapsed = time.monotonic() - start
        exported = session.export()  # inside: its warning (a precision not reached) goes to log.txt too
    if interrupted:
        if exported is None:
            raise AutoclintError("interrupted before any predictor was fitted; nothing saved.")
        print(f"interrupted at {elapsed:.1f} s: saving the best predictor so far", file=sys.stderr)
    folder = save(exported, "interrupted" if interrupted else "finished")
    return folder, exported.kind, exported.valid_nauc, interrupted


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (`kill`, a job scheduler's time limit) ends training as Ctrl-C does: the best predictor so far
    is saved. Only in the main thread, where Python delivers signals."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_device(device: str) -> None:
    """A device that is not there is one sentence now, not a CUDA error after the first seconds of training."""
    if not device or device == "cpu":
        return
    if not device.startswith("cuda"):
        raise AutoclintError(f"--device={device}: expected cpu, cuda or cuda:N.")
    import torch
    index = device.partition(":")[2]
    if not torch.cuda.is_available():
        raise AutoclintError(f"--device={device}: no CUDA GPU is available here (torch sees none); use --device cpu.")
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise AutoclintError(f"--device={device}: this machine has {torch.cuda.device_count()} CUDA GPU(s).")


def _version() -> str:
    from autoclint import __version__
    return __version__


def _train_until_done(session, train, test, solution, budget: float, start: float, bar,
                      predictions: list[dict], transcript: io.StringIO, after_prediction=None) -> None:
    """train() and test() in turn, as the challenge's ingestion does, with a line per new prediction
    (also written to `transcript`, and appended to `predictions`: time, predictor, held-out and test NAUC);
    `after_prediction()` is called after each new one (the run folder's saves)."""
    from autoclint.metrics import nauc
    shown = None
    while not session.done_training and time.monotonic() - start < budget:
        session.train(train.get_dataset(), budget - (time.monotonic() - start))
        if test is not None:
            prediction = session.test(test.get_dataset(), budget - (time.monotonic() - start))
            if prediction is not shown:
                shown = prediction
                test_nauc = nauc(solution, prediction) if solution is not None else None
                score = f", test NAUC {test_nauc:.4f}" if test_nauc is not None else ""
                status = session.status()
                t = time.monotonic() - start
                predictions.append({"t": round(t, 2), "kind": status.kind,
                                    "valid_nauc": status.score.nauc if status.score else None,
                                    "valid_loss": status.score.loss if status.score else None,
                                    "test_nauc": test_nauc})
                line = f"t={t:.1f}s new prediction ({status.kind}): {status.score}{score}"
                print(line, flush=True) if bar is None else bar.write(line)
                transcript.write(line + "\n")
                if after_prediction is not None:
                    after_prediction()
        if bar is not None:
            status = session.status()
            bar.set_postfix_str(f"{status.stage}, {status.score}")
            bar.update(min(budget, time.monotonic() - start) - bar.n)
    if bar is not None:
        if session.done_training:  # a bar left at 11/15 s says nothing of why: the learner's reason does
            bar.set_postfix_str(f"done early: {session.stop_reason}" if session.stop_reason else "done")
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
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: a CUDA GPU when there is one)")
    p.add_argument("--top-k", type=int, default=0, metavar="K", help="also write the K most probable classes and "
                   "their probabilities (class_1, p_1, ...) before the P(class) columns")
    p.add_argument("--batch-size", type=int, default=256, help="examples decoded and predicted at a time "
                   "(default 256; lower it for large images or little memory)")
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


def _file_examples(files: list[str], unreadable: set[str], model) -> Iterator:
    """(T, H, W, C) float32 in [0, 1] per file, as the AutoDL reader yields them, decoded one at a time.
    A file that cannot be decoded is one log line and goes into `unreadable`; the others go on. Input
    unlike what the model was trained on (a still image for a video model, colour for a grey one) is
    predicted, with a warning once."""
    import numpy as np
    from autoclint.data.convert import _media_kind, load_image_as_stored, load_video
    log = logging.getLogger("autoclint")
    warned = set()
    for path in progress(files, "reading"):
        try:  # decoded as a converted dataset's reader would, so both routes give the same scores
            pixels = load_video(path) if _media_kind(path) == "video" else load_image_as_stored(path)[None]
        except AutoclintError as e:
            log.warning("%s; its row is marked unreadable, the other files are predicted", e)
            unreadable.add(path)
            continue
        frames, channels = pixels.shape[0], pixels.shape[-1]
        if model.shape.frames > 1 and frames == 1 and "still" not in warned:
            warned.add("still")
            log.warning("%s: a still image, but the model was trained on clips of %d frames: it is scored as a "
                        "clip of one repeated frame, which the model has not seen", path, model.shape.frames)
        if channels != model.shape.channels and "channels" not in warned:
            warned.add("channels")
            log.warning("%s: %d channel(s), but the model was trained on %d: channels are %s to match", path,
                        channels, model.shape.channels, "averaged" if channels > model.shape.channels else "repeated")
        yield pixels.astype(np.float32) / 255.0, np.zeros(1, np.float32)


def run_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import tensorflow as tf
    from autoclint.train.checkpoint import load_trained
    if args.top_k < 0 or args.batch_size < 1:
        raise AutoclintError(f"--top-k={args.top_k} / --batch-size={args.batch_size}: --top-k must be 0 or more, "
                             f"--batch-size 1 or more.")
    _check_device(args.device or "")
    model = load_trained(args.model, args.device)
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
        scores = model.predict_dataset(dataset.get_dataset(), args.batch_size)
        names = _dataset_row_names(_data_dir(first), args.subset, len(scores))
        unreadable: set[str] = set()
    else:
        names = _media_files(args.inputs)
        unreadable = set()
        spec = (tf.TensorSpec((None, None, None, None), tf.float32), tf.TensorSpec((1,), tf.float32))
        examples = tf.data.Dataset.from_generator(lambda: _file_examples(names, unreadable, model),
                                                  output_signature=spec)
        try:
            scores = model.predict_dataset(examples, args.batch_size)
        except AutoclintError:
            if len(unreadable) == len(names):
                raise AutoclintError(f"none of the {len(names)} file(s) could be read; nothing written.") from None
            raise
    classes = model.class_names or [str(i) for i in range(model.num_classes)]
    decisions = iter(model.calibration.decide(scores))
    rows = iter(scores)
    k = min(args.top_k, len(classes)) if args.top_k else 0
    header = ["example", "predicted"] + [c for i in range(1, k + 1) for c in (f"class_{i}", f"p_{i}")]
    out = sys.stdout if args.out == "-" else open(args.out, "w", newline="", encoding="utf-8")
    try:
        writer = csv.writer(out)
        writer.writerow(header + [f"P({c})" for c in classes])
        for name in names:
            if name in unreadable:
                writer.writerow([name, "UNREADABLE"] + [""] * (2 * k + len(classes)))
                continue
            row, chosen = next(rows), next(decisions)
            top = np.argsort(-row, kind="stable")[:k]
            writer.writerow([name, " ".join(classes[c] for c in np.flatnonzero(chosen))]
                            + [v for c in top for v in (classes[c], f"{row[c]:.6g}")] + [f"{v:.6g}" for v in row])
    finally:
        if out is not sys.stdout:
            out.close()
    if args.out != "-":
        skipped = f" ({len(unreadable)} unreadable file(s) marked UNREADABLE)" if unreadable else ""
        print(f"wrote {args.out}: {len(scores)} predictions{skipped}", file=sys.stderr)
    return 0


def _dataset_row_names(data_dir: str, subset: str, count: int) -> list[str]:
    """Rows of a converted dataset are named by their source files (convert's files.csv); others by position."""
    path = os.path.join(os.path.dirname(data_dir), "files.csv")
    if os.path.isfile(path):
        with open(path, newline="", encoding="utf-8") as f:
            named = {int(r["index"]): r["file"] for r in csv.DictReader(f) if r["split"] == subset}
        if len(named) == count:
            return [named[i] for i in range(count)]
    return [f"{subset}-{i}" for i in range(count)]


# ----------------------------------------------------------------------------- report

REPORT_HELP = """Write a report a person reads on a run folder made by `autoclint train --out RUN`.

Scores the saved model on a labelled test set (by default the one kept apart when RUN was trained) and
writes one self-contained HTML page, RUN/report/index.html (images embedded: it can be mailed or
archived alone), and the same figures as PNG beside it: the learning curve during training, the
confusion matrix (single-label) or per-class precision and recall at the saved thresholds
(multi-label), and the worst-classified test examples with their true and predicted classes. The page
also gives NAUC, top-1, macro and micro precision / recall / F1, a per-class table, and what the
learner chose (input size, backbone, augmentation, stages, time).
Examples:  autoclint report runs/photos
           autoclint report runs/photos --test more_photos/ --out reports/more
"""


def add_report_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="an HTML report (and PNGs) on a trained run and a labelled test set",
                              description=REPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="run folder written by `autoclint train --out`")
    p.add_argument("--test", default=None, metavar="DATA", help="labelled data to score on: an AutoDL dataset with a "
                   "solution, or a folder / CSV `convert` reads (its test part) (default: the run's own test set)")
    p.add_argument("--out", default=None, help="report folder (default RUN/report)")
    p.add_argument("--overwrite", action="store_true", help="replace the --out folder even if it holds other files")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from autoclint.files import REPORT_FILES, check_destination
    run_dir = os.path.abspath(args.run.rstrip("/"))
    if not os.path.isfile(os.path.join(run_dir, "model.json")):
        raise AutoclintError(f"{args.run}: not a run folder (no model.json); make one with `autoclint train DATA "
                             f"--out {args.run}`.")
    out = os.path.abspath(args.out or os.path.join(run_dir, "report"))
    check_destination(out, REPORT_FILES, "index.html", args.overwrite, "--overwrite")
    run = {}
    metrics_path = os.path.join(run_dir, "metrics.json")
    if os.path.isfile(metrics_path):
        try:
            with open(metrics_path, encoding="utf-8") as f:
                run = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise AutoclintError(f"{metrics_path}: not valid JSON ({e}).") from None
    data = args.test or run.get("dataset")
    if not data:
        raise AutoclintError(f"{args.run}: records no dataset (a model saved without a run); pass --test DATA.")
    from autoclint.data.source import as_autodl_dataset
    root = as_autodl_dataset(data, run.get("test_size", 0.2), progress=progress)
    from autoclint.data.dataset import AutoDLDataset, check_records
    from autoclint.harness.scoring import read_solution
    from autoclint.report import evaluate, write_report
    from autoclint.train.checkpoint import read_json, load_trained
    data_dir = _data_dir(root)
    test_dir = os.path.join(data_dir, "test")
    solution_path = _solution_path(data_dir)
    if not (os.path.isdir(test_dir) and os.path.isfile(solution_path)):
        raise AutoclintError(f"{data}: has no labelled test set (test/ and {os.path.basename(solution_path)}) to "
                             f"report on; pass --test DATA with one.")
    check_records(test_dir)
    model = load_trained(run_dir)
    test = AutoDLDataset(test_dir)
    if test.get_metadata().get_output_size() != model.num_classes:
        raise AutoclintError(f"{test_dir}: has {test.get_metadata().get_output_size()} classes, the model "
                             f"{model.num_classes}.")
    evaluation = evaluate(model, test.get_dataset(), read_solution(solution_path))
    classes = model.class_names or [str(k) for k in range(model.num_classes)]
    title = f"autoclint report: {os.path.basename(run_dir)}"
    shown = args.test or run.get("data") or os.path.dirname(data_dir)  # what the user named, not the cache
    path = write_report(out, title, run, read_json(os.path.join(run_dir, "model.json")), evaluation, classes,
                        shown + ("" if args.test else " (its test part)"), args.overwrite)
    s = evaluation.summary
    print(f"wrote {path}: test NAUC {s.nauc:.4f}, top-1 {s.top1:.4f}, macro F1 {s.macro[2]:.4f} "
          f"({len(evaluation.solution)} examples)")
    return 0


# ----------------------------------------------------------------------------- cv

CV_HELP = """Cross-validate the learner on your data: stratified k-fold, the folds one after another.

DATA is a folder of class folders, a `path,labels` CSV or arrays (what `convert` reads). Every example
is in the test fold once: the learner trains on the other folds for --budget-per-fold seconds and its
saved model is scored on the held-out fold. Writes OUT/fold-1 ... OUT/fold-K (a run folder each, which
`autoclint report` reads), OUT/cv.json (every fold's figures) and OUT/cv.md (a per-fold table, then the
mean +- sd of each metric over the folds). The folds are converted once into the cache and reused.
Example:  autoclint cv tissue/ --folds 10 --budget-per-fold 60 --out runs/tissue-cv
"""

CV_METRICS = [("nauc", "NAUC"), ("top1", "top-1"), ("macro_precision", "macro precision"),
              ("macro_recall", "macro recall"), ("macro_f1", "macro F1"), ("micro_f1", "micro F1")]


def add_cv_parser(subparsers) -> None:
    p = subparsers.add_parser("cv", help="stratified k-fold cross-validation of the learner on raw files",
                              description=CV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATA", help="a folder of class folders, a .csv, .npz or .npy")
    p.add_argument("--folds", type=int, default=5, help="number of folds K (default 5)")
    p.add_argument("--budget-per-fold", type=float, default=60.0, help="seconds of training per fold (default 60)")
    p.add_argument("--out", required=True, help="folder for the folds' run folders and the summary")
    p.add_argument("--overwrite", action="store_true", help="replace the --out folder even if it holds other files")
    add_learner_arguments(p)
    p.set_defaults(func=run_cv)


def run_cv(args: argparse.Namespace) -> int:
    if not args.budget_per_fold > 0:
        raise AutoclintError(f"--budget-per-fold={args.budget_per_fold:g}: must be positive.")
    if not 2 <= args.folds <= 100:
        raise AutoclintError(f"--folds={args.folds}: must be between 2 and 100.")
    cfg = _learner_config(args)
    from autoclint.files import check_destination, replace_folder
    own = frozenset({"cv.json", "cv.md"} | {f"fold-{k}" for k in range(1, 101)})
    out = os.path.abspath(args.out)
    check_destination(out, own, "cv.json", args.overwrite, "--overwrite")
    from autoclint.data.source import fold_datasets
    roots = fold_datasets(args.dataset, args.folds, progress=progress)
    import shutil
    import tempfile
    import numpy as np
    from autoclint.data.dataset import AutoDLDataset
    from autoclint.harness.scoring import read_solution
    from autoclint.report import evaluate
    from autoclint.train.checkpoint import load_trained
    os.makedirs(os.path.dirname(out), exist_ok=True)
    work = tempfile.mkdtemp(prefix=".cv-partial-", dir=os.path.dirname(out))
    rows = []
    try:
        for k, root in enumerate(roots, 1):
            print(f"fold {k}/{len(roots)}: training for {args.budget_per_fold:g} s", file=sys.stderr)
            folder, kind, _, interrupted = _train_run(root, cfg, args.budget_per_fold, os.path.join(work, f"fold-{k}"),
                                                      True, {"data": os.path.abspath(args.dataset), "fold": k,
                                                             "folds": len(roots)}, args.max_params)
            data_dir = _data_dir(root)
            solution = read_solution(_solution_path(data_dir))
            s = evaluate(load_trained(folder), AutoDLDataset(os.path.join(data_dir, "test")).get_dataset(),
                         solution).summary
            rows.append({"fold": k, "test_examples": len(solution), "predictor": kind, "nauc": s.nauc, "top1": s.top1,
                         "macro_precision": s.macro[0], "macro_recall": s.macro[1], "macro_f1": s.macro[2],
                         "micro_f1": s.micro[2]})
            print(f"fold {k}/{len(roots)}: " + ", ".join(f"{label} {rows[-1][key]:.4f}" for key, label in CV_METRICS))
            if interrupted:
                print(f"interrupted: keeping the {k} fold(s) done", file=sys.stderr)
                break
        summary = {key: {"mean": float(np.mean([r[key] for r in rows])),
                         "sd": float(np.std([r[key] for r in rows], ddof=1)) if len(rows) > 1 else 0.0}
                   for key, _ in CV_METRICS}
        with open(os.path.join(work, "cv.json"), "w", encoding="utf-8") as f:
            json.dump({"data": os.path.abspath(args.dataset), "folds": args.folds, "folds_done": len(rows),
                       "budget_per_fold_s": args.budget_per_fold, "summary": summary, "per_fold": rows}, f, indent=1)
        lines = [f"Cross-validation of autoclint on {args.dataset}: {len(rows)} of {args.folds} stratified folds, "
                 f"{args.budget_per_fold:g} s of training each; scores of each fold's saved model on that fold.", "",
                 "| fold | test examples | predictor | " + " | ".join(label for _, label in CV_METRICS) + " |",
                 "|---" * (3 + len(CV_METRICS)) + "|"]
        lines += [f"| {r['fold']} | {r['test_examples']} | {r['predictor']} | "
                  + " | ".join(f"{r[key]:.4f}" for key, _ in CV_METRICS) + " |" for r in rows]
        lines.append("| mean +- sd | | | " + " | ".join(f"{summary[key]['mean']:.4f} +- {summary[key]['sd']:.4f}"
                                                      for key, _ in CV_METRICS) + " |")
        with open(os.path.join(work, "cv.md"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        replace_folder(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out}: " + ", ".join(f"{label} {summary[key]['mean']:.4f} +- {summary[key]['sd']:.4f}"
                                       for key, label in CV_METRICS[:3]))
    return 0


# ----------------------------------------------------------------------------- models

def add_models_parser(subparsers) -> None:
    p = subparsers.add_parser("models", help="the networks the learner can use, their sizes, and whether their "
                              "pretrained weights are here", description="The networks the learner can use: "
                              "parameters without the head (a K-class head adds features x K + K), and whether "
                              "their ImageNet weights are on this machine (without them a network starts from "
                              "random weights and scores far lower). `train --backbone NAME` picks one; "
                              "`--max-params N` keeps to those of at most N parameters.")
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    from autoclint.nets import default_backbone
    from autoclint.nets.registry import FROM_SCRATCH, model_info
    from autoclint.train.config import TrainCfg
    default = default_backbone()
    print(f"{'network':<22}{'parameters':>12}{'features':>10}  pretrained weights")
    for info in model_info(levels=TrainCfg().feature_levels):
        mark = " (default)" if info.name == default else ""
        weights = ("present" if info.pretrained else "none: trained from scratch" if info.name in FROM_SCRATCH
                   else "missing: random init")
        print(f"{info.name:<22}{info.backbone_params:>12,}{info.num_features:>10}  "
              f"{weights}{mark}")
    return 0


# ----------------------------------------------------------------------------- search

SEARCH_HELP = """Search the learner's configurations for the best model, with Optuna (TPE + Hyperband).

Each trial is `autoclint train` with one configuration (network, input size, the fine-tune stage on or
off, lr, weight decay, label smoothing, batch size, augmentation) for up to --trial-time seconds,
reporting the held-out NAUC after each step: weak trials are stopped early (Hyperband), so many more
configurations start than end. The default configuration is the first trial; every trial holds out the
same examples. --max-params leaves larger networks out; --min-precision is a constraint on held-out
macro precision (when no trial meets it, the most precise is kept and the command says so).

The run folder (--out) gets: model/ (the incumbent's saved model, for `autoclint predict`),
incumbent.json (its settings, for `autoclint train --config`), trials.csv (every trial), budgets.md (per
training budget: configurations run, the incumbent, the mean), best-over-time.png, study.db (the
study; --resume continues it after Ctrl-C or a crash) and logs/ (each worker's learner log).

--workers K runs K trials at a time, each a process with cores/K threads, so a trial's clock is its own.
--storage postgresql://user:password@host/db shares one study between workers on several machines (the
same --study name on each); the default is SQLite in the run folder.
Examples:  autoclint search photos/ --time 1800 --out runs/photos-search
           autoclint search photos/ --time 600 --max-params 2000000 --min-precision 0.8 --out runs/small
"""


def add_search_parser(subparsers) -> None:
    p = subparsers.add_parser("search", help="search configurations for the best model under constraints",
                              description=SEARCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATA", help="AutoDL dataset, or a folder of class folders, a .csv, .npz or "
                   ".npy to convert")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder for the study and its results")
    p.add_argument("--time", type=float, required=True, metavar="S", help="seconds of searching (wall clock)")
    p.add_argument("--trial-time", type=float, default=None, metavar="S", help="seconds one trial may train, its "
                   "full fidelity (default: a quarter of --time, at most 300)")
    p.add_argument("--workers", type=int, default=1, metavar="K", help="trials run at a time (default 1)")
    p.add_argument("--storage", default="", metavar="URL", help="a database URL shared by workers (default: "
                   "SQLite in the run folder)")
    p.add_argument("--study", default="", metavar="NAME", help="the study's name in --storage (default: the run "
                   "folder's name)")
    p.add_argument("--resume", action="store_true", help="continue the search in RUN for --time more seconds")
    p.add_argument("--overwrite", action="store_true", help="replace RUN even if it holds other files")
    p.add_argument("--test-size", type=float, default=0.2, help="share of each class kept apart as a test set "
                   "when DATA is converted (default 0.2)")
    add_learner_arguments(p)
    p.set_defaults(func=run_search)


def run_search(args: argparse.Namespace) -> int:
    if not args.time > 0:
        raise AutoclintError(f"--time={args.time:g}: must be positive.")
    trial_s = args.trial_time if args.trial_time is not None else min(300.0, args.time / 4)
    if not trial_s > 0:
        raise AutoclintError(f"--trial-time={trial_s:g}: must be positive.")
    if trial_s > args.time:
        raise AutoclintError(f"--trial-time={trial_s:g}: longer than the search (--time={args.time:g}).")
    if args.workers < 1:
        raise AutoclintError(f"--workers={args.workers}: must be at least 1.")
    if args.resume and args.overwrite:
        raise AutoclintError("--resume and --overwrite: choose one (continue the search, or replace it).")
    cfg = _learner_config(args)
    from autoclint.search import SEARCH_FILES, min_trial_s
    if args.time < min_trial_s(trial_s):
        raise AutoclintError(f"--time={args.time:g}: too short for one trial's first rung "
                             f"({min_trial_s(trial_s):.0f} s with --trial-time={trial_s:g}).")
    out = os.path.abspath(args.out)
    if not args.resume:
        from autoclint.files import check_destination
        if os.path.isfile(os.path.join(out, "search.json")) and not args.overwrite:
            raise AutoclintError(f"{out}: holds an earlier search; pass --resume to continue it, or --overwrite to "
                                 f"replace it.")
        check_destination(out, SEARCH_FILES, "search.json", args.overwrite, "--overwrite")
        if args.overwrite and os.path.isdir(out) and not args.storage:
            import shutil
            shutil.rmtree(out)
    from autoclint.search import Request, run
    request = Request(args.dataset, out, args.time, trial_s, cfg, args.max_params, args.min_precision or 0.0,
                      args.storage, args.study, args.workers, args.resume, args.test_size)
    if cfg.backbone:
        import dataclasses as dc
        request = dc.replace(request, base=dc.replace(cfg, backbone=""), only_backbone=cfg.backbone)
    best = run(request, progress=progress)
    if best is None:
        print(f"{out}: no trial completed; nothing to keep (trials.csv says why)")
        return 1
    with open(os.path.join(out, "budgets.md"), encoding="utf-8") as f:
        print(f.read(), end="")
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    model = os.path.join(out, "model")
    where = f"model in {model}, " if os.path.isdir(model) else ""
    print(f"incumbent: trial {best.number}, held-out NAUC {best.value:.4f}, macro precision {best.precision:.4f} "
          f"({params}); {where}settings in {os.path.join(out, 'incumbent.json')}")
    if not best.feasible:
        print(f"no trial reached the held-out macro precision {args.min_precision:g} asked for: kept the most "
              f"precise one ({best.precision:.4f})")
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
    add_report_parser(subparsers)
    add_cv_parser(subparsers)
    add_search_parser(subparsers)
    add_models_parser(subparsers)
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
