"""The ingestion program (official ingestion v20191204, protocol section 4).

    python -m autoclint.harness.ingestion --dataset_dir=DATASET --output_dir=OUT --code_dir=CODE --time_budget=T

Builds the model outside the clock (at most 20 min), then calls train() and test() in turn until the
model sets done_training, test() returns None, the budget is spent, or the model raises. Each
prediction's time is appended to start.txt before `<task>.predict_<k>` is written atomically.

Like the challenge (TensorFlow 1.13), the datasets handed to the model are built in graph mode
(`tf.compat.v1.disable_v2_behavior()`): they cannot be iterated in Python, only through an iterator and
a session. --eager builds them eagerly instead (today's TensorFlow default).
"""
from __future__ import annotations

import argparse
import glob
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

import numpy as np
import tensorflow as tf

from autoclint.data.dataset import AutoDLDataset, check_records
from autoclint.errors import AutoclintError
from autoclint.harness.layout import find_data_dir, task_name

log = logging.getLogger("autoclint.ingestion")

INIT_BUDGET_S = 1200.0  # v20191204: the constructor runs outside the clock, at most 20 min


class BadPredictionShapeError(Exception):
    pass


class InitTimeout(Exception):
    pass


def write_prediction(output_dir: str, task: str, k: int, prediction: np.ndarray) -> None:
    """`<task>.predict_<k>`, 6 significant digits per value, via a temp file and rename."""
    fd, tmp = tempfile.mkstemp(prefix="temp_prediction_file_", dir=output_dir)
    with os.fdopen(fd, "w") as f:
        np.savetxt(f, np.asarray(prediction, dtype=np.float64), fmt="%g", delimiter=" ")
    os.replace(tmp, os.path.join(output_dir, f"{task}.predict_{k}"))


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def build_model(code_dir: str, metadata, init_budget_s: float):
    """`from model import Model; Model(metadata)` under an alarm; failures are logged, not raised."""
    for path in (os.path.join(code_dir, "AutoDL_sample_code_submission"), code_dir):
        if path not in sys.path:
            sys.path.insert(0, path)

    def on_alarm(signum, frame):
        raise InitTimeout

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(math.ceil(init_budget_s)))
    try:
        if not os.path.exists(os.path.join(code_dir, "model.py")):
            raise AutoclintError(f"{code_dir}: no model.py in this folder.")
        sys.modules.pop("model", None)  # a model imported by an earlier in-process run is not this one
        import model as user_module
        if not hasattr(user_module, "Model"):
            raise AutoclintError(f"{user_module.__file__}: defines no class Model.")
        return user_module.Model(metadata)
    except InitTimeout:
        log.error("model construction exceeded its %g s allowance; no model", init_budget_s)
    except AutoclintError as e:
        log.error("%s", e)
    except Exception as e:  # the official program only logs this; the run then scores 0
        log.error("building the model failed: %s: %s", type(e).__name__, e)
        log.debug("%s", traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return None


def run(dataset_dir: str, output_dir: str, code_dir: str, time_budget_s: float, score_dir: str | None = None,
        init_budget_s: float = INIT_BUDGET_S, eager: bool = False) -> bool:
    """Run one task; returns ingestion_success. Dataset problems raise AutoclintError before start.txt.

    eager=False switches TensorFlow to graph mode for the rest of the process (as the challenge ran).
    """
    os.makedirs(output_dir, exist_ok=True)  # not emptied, as official (protocol trap 16)
    data_dir = find_data_dir(dataset_dir)
    task = task_name(data_dir)
    train_dir, test_dir = os.path.join(data_dir, "train"), os.path.join(data_dir, "test")
    for subset in (train_dir, test_dir):
        check_records(subset)  # before the clock: a corrupt record is named here, not deep in the model
    if not eager:
        tf.compat.v1.disable_v2_behavior()
    log.info("TensorFlow in %s mode", "eager" if tf.executing_eagerly() else "graph (TF1, as the challenge)")
    d_train, d_test = AutoDLDataset(train_dir), AutoDLDataset(test_dir)
    expected = (d_test.get_metadata().size(), d_test.get_metadata().get_output_size())

    model = build_model(code_dir, d_train.get_metadata(), init_budget_s)

    start = time.time()
    start_path = os.path.join(output_dir, "start.txt")
    with open(start_path, "w", encoding="utf-8") as f:
        f.write(f"ingestion_pid: {os.getpid()}\ntask_name: {task}\ntime_budget: {float(time_budget_s)}\n"
                f"start_time: {start}\n")
    success = True
    try:
        if model is None:
            raise AutoclintError("there is no model to run (see the error above).")
        if not (hasattr(model, "train") and hasattr(model, "test")):
            raise AutoclintError(f"{code_dir}/model.py: Model needs methods train and test.")
        use_done = hasattr(model, "done_training")
        k = 0
        while not (use_done and model.done_training):
            model.train(d_train.get_dataset(), remaining_time_budget=start + time_budget_s - time.time())
            prediction = model.test(d_test.get_dataset(), remaining_time_budget=start + time_budget_s - time.time())
            if prediction is None:
                break
            shape = tuple(getattr(prediction, "shape", ()))
            if shape != expected:
                raise BadPredictionShapeError(
                    f"Model.test returned shape {shape}; expected {expected} (test sample_count, output_dim).")
            _append(start_path, f"{k}: {time.time()}")
            write_prediction(output_dir, task, k, prediction)
            log.info("prediction %d written at %.1f s", k, time.time() - start)
            k += 1
            if start + time_budget_s - time.time() <= 0:
                break
    except Exception as e:
        success = False
        trace_path = os.path.join(output_dir, "ingestion_traceback.txt")
        with open(trace_path, "w", encoding="utf-8") as f:
            f.write(traceback.format_exc())
        log.error("%s: %s (earlier predictions are kept; traceback in %s)", type(e).__name__, e, trace_path)
    end = time.time()
    log.info("ended at %.1f s of %g s (margin %.1f s)", end - start, time_budget_s, start + time_budget_s - end)
    with open(os.path.join(output_dir, "end.txt"), "w", encoding="utf-8") as f:
        f.write(f"ingestion_duration: {end - start}\ningestion_success: {int(success)}\nend_time: {end}\n")
    if score_dir and os.path.abspath(score_dir) != os.path.abspath(output_dir):
        os.makedirs(score_dir, exist_ok=True)
        for path in glob.glob(os.path.join(output_dir, "*")):
            if os.path.isfile(path):
                shutil.copy2(path, score_dir)
    return success


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoclint.harness.ingestion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_dir", default="AutoDL_sample_data", help="dataset root holding one <task>.data")
    parser.add_argument("--output_dir", default="AutoDL_sample_result_submission", help="where predictions go")
    parser.add_argument("--ingestion_program_dir", default=None, help="accepted for kit compatibility; unused")
    parser.add_argument("--code_dir", default="AutoDL_sample_code_submission", help="folder holding model.py")
    parser.add_argument("--score_dir", default=None, help="output files are copied here at the end")
    parser.add_argument("--time_budget", type=float, default=1200.0, help="seconds for train+test (default 1200)")
    parser.add_argument("--init_budget", type=float, default=INIT_BUDGET_S, help="seconds allowed to build the model")
    parser.add_argument("--eager", action="store_true",
                        help="build the datasets eagerly (default: TF1 graph mode, as the challenge ran)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="ingestion: %(message)s", stream=sys.stderr)
    if args.dataset_dir.endswith("run/input") and args.code_dir.endswith("run/program"):
        args.dataset_dir = args.dataset_dir.replace("run/input", "run/input_data")
        args.code_dir = args.code_dir.replace("run/program", "run/submission")
    try:
        run(args.dataset_dir, args.output_dir, os.path.abspath(args.code_dir), args.time_budget, args.score_dir,
            args.init_budget, args.eager)
    except AutoclintError as e:
        print(f"ingestion: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
