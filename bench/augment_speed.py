"""Is augmentation the bottleneck? Augmented images/s against the fine-tune step's images/s, same machine.

    .venv/bin/python bench/augment_speed.py            # writes bench/results/augment-speed/results.md

Real Cifar images from the shared suite, in uint8 batches like the train cache's. Augmentation: the batch
path the learner uses (runner.batch with a policy, crop and random flip), with (a) five sub-policies drawn
from the AutoAugment-CIFAR pool and (b) a worst case that fires every op of every sub-policy (probability
1, magnitude 0.9). Training: forward + backward + SGD step of the default backbone on the same batches.
Each figure is the median of several timed repeats after a warm-up.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

from autoclint.augment.ops import OPS  # noqa: E402
from autoclint.augment.policy import AUTOAUGMENT_CIFAR, OpSpec, Policy, SubPolicy  # noqa: E402
from autoclint.data.adapt import InputShape, decode_to_cache, scan  # noqa: E402
from autoclint.data.dataset import AutoDLDataset  # noqa: E402
from autoclint.nets import create_model, default_backbone  # noqa: E402
from autoclint.train.runner import NetRunner, Preprocess, channel_stats, network_input  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/augment_speed.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=os.path.join(REPO, "..", "shared", "data", "suite", "Cifar"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--sides", type=int, nargs="+", default=[32, 64], help="cache sides to measure")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "augment-speed"))
    args = p.parse_args(argv)
    name = os.path.basename(os.path.normpath(args.dataset))
    data = AutoDLDataset(os.path.join(args.dataset, f"{name}.data", "train"))
    rng = np.random.default_rng(0)
    drawn = Policy(tuple(AUTOAUGMENT_CIFAR[i] for i in rng.choice(len(AUTOAUGMENT_CIFAR), 5)))
    names = [n for n in OPS if not OPS[n].mirrors]
    every = Policy(tuple(SubPolicy((OpSpec(a, 1.0, 0.9), OpSpec(b, 1.0, 0.9)))
                         for a, b in zip(names, names[1:] + names[:1])))
    backbone = default_backbone()
    value_range = scan(data.get_dataset(), args.batch, until=time.monotonic() + 10)
    rows = []
    for side in args.sides:
        shape = InputShape(1, side, side, 3)
        x, _ = decode_to_cache(data.get_dataset(), shape, value_range.low, value_range.high, max_examples=args.batch)
        net = create_model(backbone, 10, 3)
        mean, std = channel_stats(net.net_cfg, 3)
        pre = Preprocess(shape, 0.0, 255.0, network_input(shape, net.net_cfg, 64), mean, std, backbone, 10, False)
        runner = NetRunner(pre, torch.device("cpu"), net)
        optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        y = torch.randint(0, 10, (len(x),))

        def step():
            net.train()
            loss = torch.nn.functional.cross_entropy(net(runner.batch(x, augment=True, random_flip=True)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        crop = timed(lambda: runner.batch(x, augment=True, random_flip=True), args.repeats)
        with_drawn = timed(lambda: runner.batch(x, augment=True, random_flip=True, policy=drawn), args.repeats)
        with_every = timed(lambda: runner.batch(x, augment=True, random_flip=True, policy=every), args.repeats)
        train = timed(step, args.repeats)
        n = len(x)
        rows.append((side, pre.net_hw[0], n / crop, n / with_drawn, n / with_every, n / train))
        print(f"side {side}: crop+flip {n / crop:.0f} img/s, +5 AutoAugment sub-policies {n / with_drawn:.0f}, "
              f"+every op {n / with_every:.0f}, training step {n / train:.0f} img/s", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(f"Batch {args.batch} real {name} images, {os.cpu_count()} CPU cores, torch threads "
                f"{torch.get_num_threads()}, backbone {backbone}, commit {commit}; median of {args.repeats}.\n\n"
                "| cache side | network side | batch prep, crop+flip (img/s) | + 5 AutoAugment sub-policies "
                "(img/s) | + every op fired (img/s) | training step (img/s) |\n|---|---|---|---|---|---|\n")
        for side, net_side, crop, drawn_rate, every_rate, train in rows:
            f.write(f"| {side} | {net_side} | {crop:.0f} | {drawn_rate:.0f} | {every_rate:.0f} | {train:.0f} |\n")
    print(f"results in {args.out}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
