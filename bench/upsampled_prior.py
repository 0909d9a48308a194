"""Frozen features at the learner's input size and upsampled towards the pretraining scale, on the same split.

    .venv/bin/python bench/upsampled_prior.py --datasets Pokemon Cifar Signs
    .venv/bin/python bench/upsampled_prior.py --suite bench/runs/generality --datasets Cifar5 Faces1

Per dataset the learner runs as under the harness (raw pixels, frozen features, the upsampled frozen
features) with fine-tuning off and an ample clock, so both ridges fit the same train examples and hold out
the same ones whatever the machine. Both predictors are scored on the test set, and the table says which
one the learner's any-time rule keeps. The question it answers: where the held-out split is too small or
too noisy to rank the two, should the upsampled one win by default (as pretrained features win over raw
pixels)? Writes OUT/results.md and OUT/results.csv, keeping rows of datasets not run now.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from autoclint.metrics import nauc  # noqa: E402
from autoclint.train.config import TrainCfg  # noqa: E402
from bench.augment_ablation import commit, kept_rows  # noqa: E402
from bench.frozen_levels import add_suite_arguments, frozen_stage, suite_datasets  # noqa: E402

COLUMNS = ["dataset", "train_split", "held_out", "small_hw", "small_valid", "small_loss", "small_test",
           "up_hw", "up_valid", "up_loss", "up_test", "kept", "commit"]


def write_table(out: str, rows: list[dict]) -> None:
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["Frozen-features ridge at the learner's input size and upsampled (same split, same train examples): "
             "test NAUC, held-out NAUC / calibrated loss in brackets; `kept`: what the any-time rule keeps.", "",
             "| dataset | train / held out | input | test (held out / loss) | upsampled | test (held out / loss) "
             "| test gain | kept | commit |", "|---" * 9 + "|"]
    for r in rows:
        gain = float(r["up_test"]) - float(r["small_test"])
        lines.append(f"| {r['dataset']} | {r['train_split']} / {r['held_out']} | {r['small_hw']} | {r['small_test']} "
                     f"({r['small_valid']} / {r['small_loss']}) | {r['up_hw']} | {r['up_test']} ({r['up_valid']} / "
                     f"{r['up_loss']}) | {gain:+.4f} | {r['kept']} | {r['commit']} |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/upsampled_prior.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_suite_arguments(p)
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "upsampled-prior"))
    args = p.parse_args(argv)
    rows = kept_rows(args.out, args.datasets)
    head = commit()
    for name, data_dir, solution in suite_datasets(args.suite, args.datasets):
        cfg = dataclasses.replace(TrainCfg(), finetune=False, upsample_share=1.0)  # the clock is ample
        offered, session, _ = frozen_stage(data_dir, cfg)
        if len(offered) < 2 or offered[-1].single.pre is None:
            print(f"{name}: no upsampled predictor (the stage was skipped: see the log above)")
            continue
        small, up = offered[-2], offered[-1]
        kept = session.anytime.best_single

        def held_out(candidate, measure: str) -> str:  # nan: nothing was held out
            return f"{getattr(candidate.score, measure):.4f}" if candidate.score is not None else "nan"
        row = dict(dataset=name, train_split=len(session.split.train), held_out=len(session.split.valid),
                   small_hw="x".join(map(str, session.runner.pre.net_hw)), small_valid=held_out(small, "nauc"),
                   small_loss=held_out(small, "loss"), small_test=f"{nauc(solution, small.predict()):.4f}",
                   up_hw="x".join(map(str, up.single.pre.net_hw)), up_valid=held_out(up, "nauc"),
                   up_loss=held_out(up, "loss"), up_test=f"{nauc(solution, up.predict()):.4f}",
                   kept="upsampled" if kept is up else "small" if kept is small else kept.kind, commit=head)
        print(f"{name}: test {row['small_test']} -> {row['up_test']} (held out {row['small_valid']} -> "
              f"{row['up_valid']}, loss {row['small_loss']} -> {row['up_loss']}), kept {row['kept']}", flush=True)
        rows.append(row)
        write_table(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
