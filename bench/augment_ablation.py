"""Augmentation ablation from one starting state at equal clock (issue 11).

    .venv/bin/python bench/augment_ablation.py --datasets Pokemon Faces --seconds 40 --seeds 0 1

Per dataset, the learner runs as it does under the harness (crop and flip only) until fine-tuning
saturates (the moment the policy trigger fires) or `--start` seconds have passed. Its fine-tuner (weights,
weight average, optimiser state, lr scale) is the starting state. Every arm restarts from that state and
gets the same `--seconds` of clock, its policy search included; then the test set is predicted once with
the weight average (no test-time augmentation) and scored: the final test NAUC. Arms:

  none            no augmentation at all (no crop, no flip)
  cropflip        today's training: random crop, and flip where the mirror check allowed it
  trivialaugment  cropflip + torchvision's TrivialAugmentWide, one draw per example (per clip for video)
  random          cropflip + 5 sub-policies drawn from the 92 AutoAugment-CIFAR ones, no search
  faa-original    cropflip + the policy AutoCLINT's light FAA would choose: candidates of 3 sub-policies
                  (with replacement), 6 augmented passes each, a pass scored by the best AUC over 16-example
                  windows starting at 0..n/16-1 (its bug 9.2: the first 31 examples), a candidate by the
                  max over passes; kept when above the plain held-out AUC; top 5 flattened, duplicates by
                  op names removed. As many candidates as --search-share of the arm's time allows (<= 100)
  faa             cropflip + this project's search (autoclint.augment.search) with the same time share

Seeds change the policy draws, the augmentation draws and the batch order; the starting state is one per
dataset. Writes OUT/results.csv (a row per dataset, arm and seed) and OUT/results.md, keeping rows of
datasets not run now.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from autoclint.augment.policy import AUTOAUGMENT_CIFAR, NO_POLICY, Policy  # noqa: E402
from autoclint.augment.search import search_policy  # noqa: E402
from autoclint.data.dataset import AutoDLDataset  # noqa: E402
from autoclint.harness.layout import task_name  # noqa: E402
from autoclint.harness.scoring import read_solution  # noqa: E402
from autoclint.metrics import nauc, safe_nauc  # noqa: E402
from autoclint.train.config import TrainCfg  # noqa: E402
from autoclint.train.runner import probabilities  # noqa: E402
from autoclint.train.session import COST_MARGIN, Session  # noqa: E402

log = logging.getLogger("autoclint")
ARMS = ["none", "cropflip", "trivialaugment", "random", "faa-original", "faa"]
COLUMNS = ["dataset", "arm", "seed", "start_s", "seconds", "search_s", "train_s", "steps", "test_nauc",
           "test_top1", "start_nauc", "start_top1", "policy", "note", "commit"]


class Saturated(Exception):
    """The policy trigger fired: the starting state is reached."""


def starting_state(data_dir: str, cfg: TrainCfg, start_s: float, budget: float):
    """A session trained as usual until its policy trigger fires or `start_s` passed (train/test in turn)."""
    train = AutoDLDataset(os.path.join(data_dir, "train"))
    test = AutoDLDataset(os.path.join(data_dir, "test"))
    session = Session(train.get_metadata().get_output_size(), cfg, train_size=train.get_metadata().size())

    def trigger(x_valid):
        raise Saturated

    session._choose_policy = trigger
    began = time.monotonic()
    while not session.done_training:
        try:
            session.train(train.get_dataset(), budget - (time.monotonic() - began))
        except Saturated:
            log.info("starting state: the policy trigger fired at %.1f s", time.monotonic() - began)
            break
        session.test(test.get_dataset(), budget - (time.monotonic() - began))
        if session.tuner is not None and session.tuner.steps and time.monotonic() - began > start_s:
            log.info("starting state: %.1f s passed", time.monotonic() - began)
            break
    session.test(test.get_dataset(), budget - (time.monotonic() - began))  # the test cache, at least
    return session, time.monotonic() - began


def with_trivial_augment(batch, seed: int):
    """runner.batch with TrivialAugmentWide applied to each clip's uint8 frames first."""
    augment = v2.TrivialAugmentWide()
    torch.manual_seed(seed)

    def wrapped(x_u8, *args, **kwargs):
        if kwargs.get("augment"):
            x = torch.from_numpy(np.ascontiguousarray(x_u8)).permute(0, 1, 4, 2, 3)  # (B, T, C, H, W)
            x_u8 = torch.stack([augment(clip) for clip in x]).permute(0, 1, 3, 4, 2).numpy()
        return batch(x_u8, *args, **kwargs)
    return wrapped


def without_crop_or_flip(batch):
    def wrapped(x_u8, *args, **kwargs):
        kwargs["augment"], kwargs["random_flip"] = False, False
        return batch(x_u8, *args, **kwargs)
    return wrapped


def original_faa(evaluate, labels, multilabel, rng, seconds, pass_s) -> tuple[Policy, str]:
    """AutoCLINT's light FAA as it scored candidates (see the module docstring)."""
    passes, window = 6, 16
    plain = evaluate(NO_POLICY, 0)
    threshold = (safe_nauc(labels, plain) + 1) / 2
    end = time.monotonic() + seconds
    scored = []
    while len(scored) < 100 and time.monotonic() + pass_s * passes < end:
        policy = Policy(tuple(AUTOAUGMENT_CIFAR[i] for i in rng.choice(len(AUTOAUGMENT_CIFAR), 3, replace=True)))
        best = -np.inf
        for draw in range(passes):
            scores = evaluate(policy, draw)
            for i in range(max(1, len(labels) // window)):  # bug 9.2 kept: windows start at 0, 1, 2, ...
                chunk = slice(i, i + window)
                auc = (safe_nauc(labels[chunk], scores[chunk]) + 1) / 2
                if np.isfinite(auc):
                    best = max(best, auc)
        scored.append((best, policy))
    kept = sorted([s for s in scored if s[0] > threshold], key=lambda s: -s[0])[:5]
    subs, names = [], set()
    for _, policy in kept:
        for sub in policy.subs:
            key = tuple(op.name for op in sub.ops)
            if key not in names:
                names.add(key)
                subs.append(sub)
    return Policy(tuple(subs)), (f"{len(scored)} candidates, {len(kept)} above the plain AUC {threshold:.4f}")


def run_arm(session: Session, state: dict, arm: str, seed: int, seconds: float, search_share: float) -> dict:
    tuner, runner, cfg = session.tuner, session.runner, session.cfg
    tuner.restore(state, seed)
    batch = runner.batch
    x_valid = session.cache.x[session.split.valid]
    labels = session.validation.labels
    started = time.monotonic()
    note = ""
    try:
        if arm == "none":
            runner.batch = without_crop_or_flip(batch)
        elif arm == "trivialaugment":
            runner.batch = with_trivial_augment(batch, seed)
        elif arm == "random":
            rng = np.random.default_rng(seed)
            tuner.policy = Policy(tuple(AUTOAUGMENT_CIFAR[i] for i in rng.choice(len(AUTOAUGMENT_CIFAR),
                                                                                  cfg.search.sub_policies,
                                                                                  replace=False)))
        elif arm in ("faa", "faa-original"):
            def evaluate(policy: Policy, draw: int) -> np.ndarray:
                with tuner.averaged():
                    logits = runner.infer(x_valid, policy=policy,
                                          generator=torch.Generator().manual_seed(seed * 1000 + draw))
                return probabilities(logits, session.multilabel)

            pass_s = session.clock.cost("net_pass", len(x_valid)) * COST_MARGIN
            rng = np.random.default_rng(seed)
            if arm == "faa":
                end = time.monotonic() + search_share * seconds
                result = search_policy(evaluate, labels, session.multilabel, AUTOAUGMENT_CIFAR, NO_POLICY,
                                       search_share * seconds, pass_s, rng, cfg.search,
                                       deadline=lambda: time.monotonic() > end)
                tuner.policy, note = result.policy, result.summary()
            else:
                tuner.policy, note = original_faa(evaluate, labels, session.multilabel, rng,
                                                  search_share * seconds, pass_s)
        search_s = time.monotonic() - started
        if tuner.policy.subs:  # as the learner does after choosing a policy
            tuner.lr_scale = 1.0
        steps = tuner.steps
        train_s = max(0.0, seconds - search_s)
        tuner.train_for(session.cache.x, session.cache.y, train_s)
    finally:
        runner.batch = batch
    with tuner.averaged():
        prediction = session.test_cache.map(lambda t: runner.predict(t, tta=False))
    return {"arm": arm, "seed": seed, "seconds": seconds, "search_s": round(search_s, 1),
            "train_s": round(train_s, 1), "steps": tuner.steps - steps, "prediction": prediction,
            "policy": str(tuner.policy) if arm not in ("none", "trivialaugment") else arm, "note": note}


def top1(solution: np.ndarray, prediction: np.ndarray) -> float:
    """Share of test examples whose highest-scored class is one of theirs (NAUC saturates at 1 first)."""
    return float(solution[np.arange(len(solution)), prediction.argmax(1)].mean())


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""


def kept_rows(out: str, datasets: list[str]) -> list[dict]:
    """OUT (created if missing): the rows of its results.csv for datasets other than those run now."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "results.csv")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [r for r in csv.DictReader(f) if r["dataset"] not in datasets]


def write_table(out: str, rows: list[dict]) -> None:
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    arms = [a for a in ARMS if any(r["arm"] == a for r in rows)]
    lines = ["Final test NAUC after the same seconds from one starting state (mean over seeds; each seed in "
             "brackets). Start: the NAUC of the starting state's weight average. "
             "Top-1: share of test examples whose highest-scored class is theirs.", "",
             "| dataset | start | " + " | ".join(arms) + " | commit |", "|---" * (len(arms) + 3) + "|"]
    for d in datasets:
        mine = [r for r in rows if r["dataset"] == d]
        cells = []
        for a in arms:
            vals = [float(r["test_nauc"]) for r in mine if r["arm"] == a]
            tops = [float(r["test_top1"]) for r in mine if r["arm"] == a]
            cells.append(f"{np.mean(vals):.4f} ({', '.join(f'{v:.3f}' for v in vals)}); top-1 {np.mean(tops):.3f}"
                         if vals else "")
        lines.append(f"| {d} | {float(mine[0]['start_nauc']):.4f}; top-1 {float(mine[0]['start_top1']):.3f} | "
                     + " | ".join(cells) + f" | {mine[0]['commit']} |")
    lines += ["", "Per run: policy, search verdict, seconds searching / training, SGD steps.", "",
              "| dataset | arm | seed | search s | train s | steps | policy / search |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        policy = (f"{r['note']}: " if r["note"] else "") + r["policy"].replace(" | ", " ; ")
        lines.append(f"| {r['dataset']} | {r['arm']} | {r['seed']} | {r['search_s']} | {r['train_s']} | {r['steps']} | "
                     f"{policy} |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/augment_ablation.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", nargs="+", default=[os.path.join(REPO, "..", "shared", "data", "suite")],
                   help="folders of AutoDL datasets (default: the shared suite)")
    p.add_argument("--datasets", nargs="+", required=True, help="dataset folder names inside the --suite folders")
    p.add_argument("--arms", nargs="+", default=ARMS, choices=ARMS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--start", type=float, default=90.0, help="seconds of usual training at most before the start")
    p.add_argument("--seconds", type=float, default=40.0, help="clock per arm, search included")
    p.add_argument("--search-share", type=float, default=0.4, help="share of an arm's seconds a search may spend")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "augment-ablation"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(os.cpu_count() or 1)
    rows = kept_rows(args.out, args.datasets)
    head = commit()
    for name in args.datasets:
        folder = next((os.path.join(s, name) for s in args.suite if os.path.isdir(os.path.join(s, name))), None)
        if folder is None:
            raise SystemExit(f"{name}: not found in {', '.join(args.suite)}")
        data_dir = os.path.join(folder, f"{name}.data")
        solution = read_solution(os.path.join(folder, f"{task_name(data_dir)}.solution"))
        session, start_s = starting_state(data_dir, TrainCfg(augment="faa"), args.start, 300.0)
        if session.tuner is None:
            log.warning("%s: fine-tuning never started (%s); no ablation", name, session.stage)
            continue
        with session.tuner.averaged():
            start = session.test_cache.map(lambda t: session.runner.predict(t, tta=False))
        start_nauc = nauc(solution, start)
        state = session.tuner.snapshot()
        for arm in args.arms:
            for seed in args.seeds:
                r = run_arm(session, state, arm, seed, args.seconds, args.search_share)
                prediction = r.pop("prediction")
                r.update(dataset=name, start_s=round(start_s, 1), start_nauc=f"{start_nauc:.4f}",
                         start_top1=f"{top1(solution, start):.4f}", commit=head,
                         test_nauc=f"{nauc(solution, prediction):.4f}", test_top1=f"{top1(solution, prediction):.4f}")
                log.info("%s %s seed %d: test NAUC %s (start %.4f), %s steps, search %.1f s; %s %s", name, arm,
                         seed, r["test_nauc"], start_nauc, r["steps"], r["search_s"], r["note"], r["policy"])
                rows.append(r)
                write_table(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
