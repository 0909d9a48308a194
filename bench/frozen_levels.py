"""The learner's frozen-features stage with descriptors of 1..k backbone stages, on the same split.

    .venv/bin/python bench/frozen_levels.py --datasets Pokemon Cifar --levels 1 4
    .venv/bin/python bench/frozen_levels.py --suite bench/runs/generality --datasets Cifar5 Signs2 \\
        --out bench/results/frozen-levels-generality

Per dataset and level count, the learner runs as under the harness (raw pixels, then frozen features:
the ridge, its penalty by leave-one-out, the mirror check) with fine-tuning off and an ample clock, so
the clock decides nothing and every arm fits the same train examples and holds out the same ones. The
frozen-features predictor is scored on the test set (with the mirrored test-time augmentation where the
learner chose it). Writes OUT/results.md and OUT/results.csv (stage_s: the train() call that fitted it,
reading the rest of the train set included), keeping rows of datasets not run now.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

from autoclint.data.dataset import AutoDLDataset  # noqa: E402
from autoclint.harness.layout import task_name  # noqa: E402
from autoclint.harness.scoring import read_solution  # noqa: E402
from autoclint.metrics import nauc  # noqa: E402
from autoclint.train.anytime import Anytime  # noqa: E402
from autoclint.train.config import TrainCfg  # noqa: E402
from autoclint.train.session import Session  # noqa: E402
from bench.augment_ablation import commit, kept_rows  # noqa: E402

log = logging.getLogger("autoclint")
COLUMNS = ["dataset", "levels", "width", "train_split", "valid_nauc", "test_nauc", "flip", "stage_s", "commit"]
AMPLE_S = 3600.0  # the clock never binds: the descriptor, not the time, is under test


def frozen_stage(data_dir: str, cfg: TrainCfg):
    """The frozen-features candidates of one learner run (pixels, then features, no fine-tune), in the order
    offered (the upsampled one last, where cfg lets that stage run), its session and the first stage's seconds."""
    train = AutoDLDataset(os.path.join(data_dir, "train"))
    test = AutoDLDataset(os.path.join(data_dir, "test"))
    session = Session(train.get_metadata().get_output_size(), cfg, train_size=train.get_metadata().size())
    offered = []
    offer = session.anytime.offer

    def remember(candidate):
        if candidate.kind == "features":
            offered.append(candidate)
        return offer(candidate)
    session.anytime.offer = remember
    seconds = 0.0
    while not session.done_training:
        before, started = len(offered), time.monotonic()
        session.train(train.get_dataset(), AMPLE_S)
        if len(offered) > before and not seconds:
            seconds = time.monotonic() - started
        session.test(test.get_dataset(), AMPLE_S)
    if not offered:
        raise SystemExit(f"{data_dir}: the learner fitted no frozen-features predictor ({session.stop_reason})")
    return offered, session, seconds


def add_suite_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default=os.path.join(REPO, "..", "shared", "data", "suite"),
                   help="folder of AutoDL datasets (default: the shared suite)")
    p.add_argument("--datasets", nargs="+", required=True, help="dataset folder names inside --suite")


def suite_datasets(suite: str, names: list[str]):
    """(name, data folder, test solution) of each named dataset in `suite`, after setting up logging and threads
    as every probe does; a clear exit for a missing one."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(os.cpu_count() or 1)
    for name in names:
        folder = os.path.join(suite, name)
        if not os.path.isdir(folder):
            raise SystemExit(f"{name}: not found in {suite}")
        data_dir = os.path.join(folder, f"{name}.data")
        yield name, data_dir, read_solution(os.path.join(folder, f"{task_name(data_dir)}.solution"))


def write_table(out: str, rows: list[dict]) -> None:
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    levels = sorted({int(r["levels"]) for r in rows})
    lines = ["Frozen-features ridge, test NAUC (held-out NAUC in brackets) by the number of backbone stages "
             "pooled into the descriptor; the same split and train examples in every column.", "",
             "| dataset | " + " | ".join(f"{k} level{'s' * (k > 1)}" for k in levels) + " | train split | commit |",
             "|---" * (len(levels) + 3) + "|"]
    for d in dict.fromkeys(r["dataset"] for r in rows):
        mine = {int(r["levels"]): r for r in rows if r["dataset"] == d}
        cells = [f"{float(mine[k]['test_nauc']):.4f} ({float(mine[k]['valid_nauc']):.4f})" if k in mine else ""
                 for k in levels]
        first = next(iter(mine.values()))
        lines.append(f"| {d} | " + " | ".join(cells) + f" | {first['train_split']} | {first['commit']} |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/frozen_levels.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_suite_arguments(p)
    p.add_argument("--levels", nargs="+", type=int, default=[1, 4], help="descriptor level counts to compare")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "frozen-levels"))
    args = p.parse_args(argv)
    rows = kept_rows(args.out, args.datasets)
    head = commit()
    for name, data_dir, solution in suite_datasets(args.suite, args.datasets):
        for levels in args.levels:
            cfg = dataclasses.replace(TrainCfg(), feature_levels=levels, finetune=False, upsample_share=0.0)
            offered, session, seconds = frozen_stage(data_dir, cfg)
            candidate = offered[-1]
            prediction = candidate.predict()
            row = dict(dataset=name, levels=levels, width=candidate.single.ridge.w.shape[0],
                       train_split=len(session.split.train), valid_nauc=f"{candidate.score.nauc:.4f}" if candidate.score else "nan",
                       test_nauc=f"{nauc(solution, prediction):.4f}", flip=candidate.single.tta,
                       stage_s=f"{seconds:.1f}", commit=head)
            print(f"{name}: {levels} level(s), {row['width']} features: test NAUC {row['test_nauc']} "
                  f"(held out {row['valid_nauc']}), {row['stage_s']} s", flush=True)
            rows.append(row)
            write_table(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
