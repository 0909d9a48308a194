"""The scoring program (official scoring v20191219, protocol section 5).

    python -m autoclint.harness.score --solution_dir=DATASET --prediction_dir=OUT --score_dir=SCORES

Waits for ingestion's start.txt, scores each new `<task>.predict_<k>` as it appears, kills ingestion at
start + T, and writes scores.txt, the learning curve and detailed_results.html. Run on a finished
prediction folder it scores what is there and returns at once.
"""
from __future__ import annotations

import argparse
import glob
import logging
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from autoclint.errors import AutoclintError
from autoclint import metrics
from autoclint.harness import scoring
from autoclint.harness.curves import plot_learning_curve, write_detailed_results
from autoclint.harness.layout import find_solution, read_key_values, task_name

log = logging.getLogger("autoclint.score")

START_WAIT_TRIES = 1800  # seconds to wait for start.txt (official since 2019-11-27: 1800)
KILL_GRACE_S = 5.0  # after SIGTERM, wait this long before SIGKILL
BOOTSTRAP_NAUC = 10  # official error bars: 10 bootstrap NAUCs of the last prediction
BOOTSTRAP_ALC = 5  # and 5 bootstrap ALCs


@dataclass
class Scoreboard:
    """What has been scored so far for one task."""
    task: str
    solution: np.ndarray
    score_dir: str
    time_budget_s: float = 0.0
    start_time: float = 0.0
    timestamps_s: list[float] = field(default_factory=list)
    naucs: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    top1: list[float] = field(default_factory=list)  # argmax accuracy, beside the kit's soft accuracy
    predictions: list[np.ndarray] = field(default_factory=list)
    failed: str | None = None  # set when a prediction could not be scored; later ones are ignored

    @property
    def multiclass(self) -> bool:
        return metrics.is_multiclass(self.solution)

    def alc(self) -> float:
        return metrics.alc(self.timestamps_s, self.naucs, self.time_budget_s)


def prediction_files(prediction_dir: str, task: str) -> list[str]:
    """`<task>.predict_<k>` files ordered by the integer k (`_10` after `_9`)."""
    pattern = re.compile(re.escape(task) + r"\.predict_(\d+)$")
    found = [(int(m.group(1)), p) for p in glob.glob(os.path.join(prediction_dir, f"{task}.predict_*"))
             if (m := pattern.search(os.path.basename(p)))]
    return [p for _, p in sorted(found)]


def score_new_predictions(board: Scoreboard, prediction_dir: str) -> None:
    if board.failed:
        return
    start_path = os.path.join(prediction_dir, "start.txt")
    stamps = read_key_values(start_path) if os.path.exists(start_path) else {}
    for k, path in enumerate(prediction_files(prediction_dir, board.task)):
        if k < len(board.naucs):
            continue
        if str(k) not in stamps:
            break  # timestamp is written before the file; re-read on the next pass
        try:
            pred = scoring.read_prediction(path, board.solution.shape)
            value = metrics.nauc(board.solution, pred)
        except (AutoclintError, ValueError) as e:
            board.failed = str(e) if isinstance(e, AutoclintError) else f"{path}: {e}"
            log.error("scoring stopped: %s", board.failed)
            return
        board.timestamps_s.append(float(stamps[str(k)]) - board.start_time)
        board.naucs.append(value)
        board.predictions.append(pred)
        if board.multiclass:
            board.accuracies.append(metrics.accuracy(board.solution, pred))
            board.top1.append(metrics.top1(board.solution, pred))
        log.info("prediction %d: t=%.1fs nauc=%.4f alc=%.4f", k, board.timestamps_s[-1], value, board.alc())
        write_scores(board)
        plot_learning_curve(os.path.join(board.score_dir, f"learning-curve-{board.task}.png"), board.task,
                            board.timestamps_s, board.naucs, board.time_budget_s, board.alc())
        write_detailed_results(board.score_dir, final=False)


def write_scores(board: Scoreboard, error_bars: dict[str, float] | None = None) -> None:
    lines = [f"score: {board.alc()}",
             f"Duration: {board.timestamps_s[-1] if board.timestamps_s else 0}",
             f"timestamps: {[float(t) for t in board.timestamps_s]}",
             f"nauc_scores: {[float(s) for s in board.naucs]}"]
    if board.multiclass:
        lines.append(f"accuracy: {[float(a) for a in board.accuracies]}")  # the kit's soft accuracy (its key)
        lines.append(f"top1_accuracy: {[float(a) for a in board.top1]}")  # share of rows whose argmax is right
    lines += [f"{k}: {float(v)}" for k, v in (error_bars or {}).items()]
    path = os.path.join(board.score_dir, "scores.txt")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def error_bars(board: Scoreboard, seed: int = 0) -> dict[str, float]:
    """Bootstrap spread of the last NAUC and of the ALC (official: unseeded; here seeded)."""
    if not board.naucs:
        return {}
    rng = np.random.default_rng(seed)
    n = board.solution.shape[0]

    def resampled_nauc(pred, idx):
        try:
            return metrics.nauc(board.solution[idx], pred[idx])
        except ValueError:
            return -1.0

    naucs = [resampled_nauc(board.predictions[-1], rng.integers(0, n, n)) for _ in range(BOOTSTRAP_NAUC)]
    alcs = []
    for _ in range(BOOTSTRAP_ALC):
        idx = rng.integers(0, n, n)
        alcs.append(metrics.alc(board.timestamps_s, [resampled_nauc(p, idx) for p in board.predictions],
                                board.time_budget_s))
    return {"nauc_mean": np.mean(naucs), "nauc_std": np.std(naucs), "nauc_var": np.var(naucs),
            "alc_mean": np.mean(alcs), "alc_std": np.std(alcs), "alc_var": np.var(alcs)}


def wait_for_start(prediction_dir: str, tries: int) -> dict[str, str]:
    path = os.path.join(prediction_dir, "start.txt")
    for _ in range(tries):
        if os.path.exists(path):
            info = read_key_values(path)
            if {"start_time", "time_budget", "ingestion_pid"} <= info.keys():
                return info
        time.sleep(1)
    raise AutoclintError(f"{path}: not written within {tries} s; did ingestion start?")


def kill_ingestion(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + KILL_GRACE_S
    while time.time() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of the runner counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _is_ingestion(pid: int) -> bool:
    """Guards the kill when scoring an old folder after the fact: its pid may now be another program."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"ingestion" in f.read()
    except OSError:
        return True  # no /proc: trust the pid, as the official scorer does


def run(solution_dir: str, prediction_dir: str, score_dir: str, start_wait_tries: int = START_WAIT_TRIES) -> Scoreboard:
    solution_path = find_solution(solution_dir)
    os.makedirs(score_dir, exist_ok=True)
    board = Scoreboard(task=task_name(solution_path), solution=scoring.read_solution(solution_path), score_dir=score_dir)
    write_detailed_results(score_dir, final=False)
    info = wait_for_start(prediction_dir, start_wait_tries)
    board.start_time = float(info["start_time"])
    board.time_budget_s = float(info["time_budget"])
    pid = int(info["ingestion_pid"])
    end_path = os.path.join(prediction_dir, "end.txt")
    write_scores(board)
    time_limit_exceeded = False
    while time.time() < board.start_time + board.time_budget_s:
        if os.path.exists(end_path):
            break
        time.sleep(1)
        score_new_predictions(board, prediction_dir)
    else:
        if _alive(pid) and _is_ingestion(pid):
            time_limit_exceeded = True
            log.warning("time budget of %g s exceeded: ingestion (pid %d) killed", board.time_budget_s, pid)
            kill_ingestion(pid)
    score_new_predictions(board, prediction_dir)
    end = read_key_values(end_path) if os.path.exists(end_path) else {}
    if end.get("ingestion_success", "1").strip() == "0":
        log.error("ingestion reported a failure (see its log); the predictions made before it are scored")
        write_scores(board)
    elif board.failed is None:
        write_scores(board, error_bars(board))
    if not end and not time_limit_exceeded:
        log.error("ingestion ended without end.txt")
    if board.naucs:
        plot_learning_curve(os.path.join(score_dir, f"learning-curve-{board.task}.png"), board.task,
                            board.timestamps_s, board.naucs, board.time_budget_s, board.alc())
    write_detailed_results(score_dir, final=True)
    return board


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoclint.harness.score", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solution_dir", default="AutoDL_sample_data", help="folder holding exactly one <task>.solution")
    parser.add_argument("--prediction_dir", default="AutoDL_sample_result_submission", help="ingestion's output folder")
    parser.add_argument("--score_dir", default="AutoDL_scoring_output", help="where scores.txt and the curve go")
    parser.add_argument("--start_wait_s", type=int, default=START_WAIT_TRIES, help="how long to wait for start.txt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="score: %(message)s", stream=sys.stderr)
    try:
        board = run(args.solution_dir, args.prediction_dir, args.score_dir, args.start_wait_s)
    except AutoclintError as e:
        print(f"score: error: {e}", file=sys.stderr)
        return 1
    print(f"score: {board.task}: ALC {board.alc():.4f} from {len(board.naucs)} prediction(s)", file=sys.stderr)
    return 1 if board.failed else 0


if __name__ == "__main__":
    sys.exit(main())
