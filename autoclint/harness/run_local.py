"""Run ingestion and scoring side by side on one dataset, like the kit's run_local_test.py.

Prints the final ALC and final NAUC as its last two lines. Predictions go to RESULT_DIR/predictions,
scores, the learning curve and detailed_results.html to RESULT_DIR/scores.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from autoclint.errors import AutoclintError
from autoclint.harness.layout import check_names_match, find_data_dir, find_solution, float_list, read_key_values

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DATASET = os.path.join(REPO_ROOT, "data", "Faces")
DEFAULT_BUDGET_S = 60.0  # for the bundled dataset: a quick demonstration
CHALLENGE_BUDGET_S = 1200.0  # the challenge's T, the default for any other dataset


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_local_test.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Flags take one or two dashes: -dataset_dir=DIR and --dataset_dir=DIR are the same.")
    p.add_argument("-dataset_dir", "--dataset_dir", default=None,
                   help=f"AutoDL dataset root holding <task>.data and <task>.solution (default: the bundled {DEFAULT_DATASET})")
    p.add_argument("-code_dir", "--code_dir", default=REPO_ROOT,
                   help="folder holding the model.py to run (default: this project's)")
    p.add_argument("-time_budget", "--time_budget", type=float, default=None,
                   help=f"seconds for train+test (default: {DEFAULT_BUDGET_S:g} for the bundled dataset, "
                        f"{CHALLENGE_BUDGET_S:g} otherwise)")
    p.add_argument("-eager", "--eager", action="store_true",
                   help="ingestion builds the datasets eagerly (default: TF1 graph mode, as the challenge ran)")
    p.add_argument("-result_dir", "--result_dir", default=None,
                   help="where predictions/ and scores/ go (default: results/<dataset name>); both are replaced")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.dataset_dir is None:
        args.dataset_dir = DEFAULT_DATASET
        args.time_budget = DEFAULT_BUDGET_S if args.time_budget is None else args.time_budget
    args.time_budget = CHALLENGE_BUDGET_S if args.time_budget is None else args.time_budget
    args.dataset_dir = os.path.abspath(args.dataset_dir)
    name = os.path.basename(os.path.normpath(args.dataset_dir))
    args.result_dir = os.path.abspath(args.result_dir or os.path.join("results", name))
    args.code_dir = os.path.abspath(args.code_dir)
    return args


def check_inputs(args: argparse.Namespace) -> None:
    """Problems the two programs would only hit later, named now in one sentence."""
    if not os.path.isdir(args.dataset_dir):
        raise AutoclintError(f"{args.dataset_dir}: no such dataset folder.")
    if not os.path.isfile(os.path.join(args.code_dir, "model.py")):
        raise AutoclintError(f"{args.code_dir}: no model.py in this folder.")
    if args.time_budget <= 0:
        raise AutoclintError(f"-time_budget={args.time_budget:g}: must be positive.")
    data_dir = find_data_dir(args.dataset_dir)
    solution = find_solution(args.dataset_dir)
    check_names_match(data_dir, solution)
    from autoclint.data.metadata import parse_metadata
    test_count = parse_metadata(os.path.join(data_dir, "test", "metadata.textproto")).sample_count
    with open(solution, encoding="utf-8") as f:
        rows = sum(1 for line in f if line.strip())
    if rows != test_count:
        raise AutoclintError(f"{solution}: has {rows} rows but the test set has {test_count} examples "
                             f"(test/metadata.textproto sample_count).")


def run(args: argparse.Namespace) -> int:
    check_inputs(args)
    prediction_dir = os.path.join(args.result_dir, "predictions")
    score_dir = os.path.join(args.result_dir, "scores")
    for d in (prediction_dir, score_dir):  # stale predictions would be scored (protocol trap 16)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    ingestion = subprocess.Popen(
        [sys.executable, "-m", "autoclint.harness.ingestion", f"--dataset_dir={args.dataset_dir}",
         f"--output_dir={prediction_dir}", f"--code_dir={args.code_dir}", f"--time_budget={args.time_budget}"]
        + (["--eager"] if args.eager else []), env=env)
    scorer = subprocess.Popen(
        [sys.executable, "-m", "autoclint.harness.score", f"--solution_dir={args.dataset_dir}",
         f"--prediction_dir={prediction_dir}", f"--score_dir={score_dir}"], env=env)
    start_path = os.path.join(prediction_dir, "start.txt")
    try:
        while scorer.poll() is None:
            if ingestion.poll() not in (None, 0) and not os.path.exists(start_path):
                scorer.terminate()  # ingestion failed before the clock: nothing will ever be scored
                scorer.wait()
                print(f"run_local_test: ingestion failed before starting the clock (exit {ingestion.returncode})",
                      file=sys.stderr)
                return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        ingestion.terminate()
        scorer.terminate()
        raise
    if ingestion.poll() is None:  # the scorer ended first (e.g. it could not score): stop the run
        ingestion.terminate()
    ingestion.wait()
    return report(score_dir, scorer.returncode)


def report(score_dir: str, scorer_rc: int) -> int:
    scores_path = os.path.join(score_dir, "scores.txt")
    if not os.path.exists(scores_path):
        print("run_local_test: no scores were written", file=sys.stderr)
        return 1
    scores = read_key_values(scores_path)
    naucs = float_list(scores.get("nauc_scores", "[]"))
    print(f"Results in {os.path.dirname(score_dir)} (learning curve: {score_dir}/detailed_results.html)")
    print(f"ALC: {float(scores['score']):.4f}")
    print(f"final NAUC: {naucs[-1]:.4f}" if naucs else "final NAUC: none (no prediction was made)")
    return 0 if scorer_rc == 0 else 1


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except AutoclintError as e:
        print(f"run_local_test: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
