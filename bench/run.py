"""Benchmark: run a model.py through the local challenge harness on AutoDL datasets, one after another.

    .venv/bin/python bench/run.py                                # the shared suite, default backbone, T=300 s
    .venv/bin/python bench/run.py --backbone resnet18 --datasets Cifar Faces --budget 120

Each dataset runs ingestion + scoring as `run_local_test.sh` does, in a fresh process, alone (runs in
parallel would share the CPU and distort every figure). Writes OUT/results.md and OUT/results.csv (ALC,
final NAUC, seconds to the first prediction, number of predictions, peak RSS of the whole run, backbone)
and, per dataset, OUT/<name>/{scores.txt, learning-curve.png, log.txt}. Rows already in OUT for datasets
not run now are kept, each with the commit of the code that produced it. When the datasets' folder holds a
SUITE.md with the original AutoCLINT's figures, the table puts them beside ours.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from autoclint.errors import AutoclintError  # noqa: E402
from autoclint.harness.layout import float_list, read_key_values  # noqa: E402
from autoclint.nets import list_models  # noqa: E402

DEFAULT_SUITE = os.path.join(REPO, "..", "shared", "data", "suite")
SUITE_ORDER = ["Fashion", "Cifar", "Signs", "Faces", "Pokemon", "Kth"]
COLUMNS = ["dataset", "backbone", "mode", "budget_s", "alc", "original_alc", "final_nauc", "features_nauc",
           "first_prediction_s", "predictions", "margin_s", "peak_rss_mib", "policy", "wall_s", "commit"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default=DEFAULT_SUITE, help="folder of AutoDL datasets (default: ../shared/data/suite)")
    p.add_argument("--datasets", nargs="+", default=None,
                   help="names of dataset folders inside --suite (default: every one, suite order first)")
    p.add_argument("--budget", type=float, default=300.0, help="time budget T per dataset in seconds (default 300)")
    p.add_argument("--backbone", default="",
                   help="backbone for the autoclint model (sets AUTOCLINT_BACKBONE; default: the best pretrained)")
    p.add_argument("--code_dir", default=REPO, help="folder holding the model.py to run (default: autoclint's)")
    p.add_argument("--out", default=None,
                   help="result folder (default: bench/results/<backbone>-T<budget>); its files are replaced")
    p.add_argument("--augment", choices=["none", "faa", "random", "trivialaugment"], default="none",
                   help="augmentation policy once fine-tuning saturates (sets AUTOCLINT_AUGMENT): none (crop and "
                        "flip only, the default), faa (the light Fast AutoAugment search), random (sub-policies "
                        "drawn from the same pool without a search: the search's control)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainCfg setting for the run (sets AUTOCLINT_SET; repeatable; dotted for parts, e.g. "
                        "search.min_candidates=4); shown in the table's mode column")
    p.add_argument("--eager", action="store_true",
                   help="ingestion builds the datasets eagerly (default: TF1 graph mode, as the challenge ran)")
    p.add_argument("--recollect", action="store_true",
                   help="run nothing: fill the newer columns (margin, frozen-features NAUC) of OUT's rows from "
                        "the logs and prediction folders those runs left")
    return p


def original_figures(suite: str) -> dict[str, float]:
    """The last column of SUITE.md's table (the original AutoCLINT's ALC), when the file is there."""
    path = os.path.join(suite, "SUITE.md")
    figures: dict[str, float] = {}
    if not os.path.isfile(path):
        return figures
    with open(path, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) > 2 and re.fullmatch(r"\d+\.\d+", cells[-1]):
                figures[cells[0]] = float(cells[-1])
    return figures


def code_version(code_dir: str) -> str:
    """The commit of the code that ran (with -dirty when it had uncommitted changes), for each table row."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=code_dir, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=code_dir,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def earlier_rows(out: str, names: list[str]) -> list[dict]:
    """Rows of an earlier run in the same folder for datasets not run now (kept, with their own commit)."""
    path = os.path.join(out, "results.csv")
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] not in names]
    for r in rows:
        for key in ("budget_s", "alc", "final_nauc", "first_prediction_s", "wall_s"):
            r[key] = float(r[key])
        for key in ("features_nauc", "margin_s"):
            r[key] = float(r[key]) if r.get(key) not in (None, "") else float("nan")
        r["original_alc"] = float(r["original_alc"]) if r.get("original_alc") else None
        r["predictions"], r["peak_rss_mib"] = int(r["predictions"]), int(r["peak_rss_mib"])
        r.setdefault("commit", "unknown")
        r["mode"] = r.get("mode") or "eager"  # rows from before graph mode existed ran eagerly
        r["policy"] = r.get("policy") or "none"  # rows from before augmentation policies existed
    return rows


def list_datasets(suite: str, names: list[str] | None) -> list[str]:
    if not os.path.isdir(suite):
        raise AutoclintError(f"{suite}: no such folder of datasets (--suite).")
    found = sorted(d for d in os.listdir(suite) if os.path.isdir(os.path.join(suite, d)))
    if names is None:
        return [n for n in SUITE_ORDER if n in found] + [n for n in found if n not in SUITE_ORDER]
    missing = [n for n in names if n not in found]
    if missing:
        raise AutoclintError(f"{suite}: has no dataset {', '.join(missing)} (found: {', '.join(found) or 'none'}).")
    return names


def run_one(name: str, args: argparse.Namespace, out: str) -> dict:
    """One harness run in a fresh process; its peak RSS covers ingestion (the model) and scoring."""
    run_dir = os.path.join(REPO, "bench", "runs", os.path.basename(out), name)  # predictions: not committed
    dataset_out = os.path.join(out, name)
    os.makedirs(dataset_out, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", AUTOCLINT_BACKBONE=args.backbone, AUTOCLINT_AUGMENT=args.augment,
               AUTOCLINT_SET=";".join(args.set))
    cmd = [sys.executable, "-m", "autoclint.harness.run_local", f"--dataset_dir={os.path.join(args.suite, name)}",
           f"--code_dir={args.code_dir}", f"--time_budget={args.budget}", f"--result_dir={run_dir}"]
    cmd += ["--eager"] if args.eager else []
    started = time.time()
    with open(os.path.join(dataset_out, "log.txt"), "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    row = {"dataset": name, "backbone": args.backbone or "default", "mode": ("eager" if args.eager else "graph") + "".join(f", {x}" for x in args.set),
           "budget_s": args.budget, "wall_s": round(time.time() - started, 1),
           "peak_rss_mib": round(usage.ru_maxrss / 1024), "policy": "none"}
    scores_path = os.path.join(run_dir, "scores", "scores.txt")
    if proc.returncode != 0 or not os.path.exists(scores_path):
        print(f"bench: {name}: the run failed (exit {proc.returncode}); see {dataset_out}/log.txt", file=sys.stderr)
        return dict(row, alc=float("nan"), final_nauc=float("nan"), first_prediction_s=float("nan"), predictions=0,
                    features_nauc=float("nan"), margin_s=float("nan"))
    shutil.copy(scores_path, os.path.join(dataset_out, "scores.txt"))
    for png in os.listdir(os.path.join(run_dir, "scores")):
        if png.endswith(".png"):
            shutil.copy(os.path.join(run_dir, "scores", png), os.path.join(dataset_out, "learning-curve.png"))
    scores = read_key_values(scores_path)
    naucs = float_list(scores.get("nauc_scores", "[]"))
    stamps = float_list(scores.get("timestamps", "[]"))
    backbone = _backbone_from_log(os.path.join(dataset_out, "log.txt"))
    return dict(row, backbone=backbone or row["backbone"], alc=float(scores["score"]),
                final_nauc=naucs[-1] if naucs else float("nan"),
                first_prediction_s=stamps[0] if stamps else float("nan"), predictions=len(naucs),
                **run_facts(run_dir, dataset_out, naucs))


def run_facts(run_dir: str, dataset_out: str, naucs: list[float]) -> dict:
    """margin_s: T minus ingestion's duration (nan when it was killed at T: no end.txt); features_nauc: test
    NAUC of the last prediction made by the frozen-features predictor (nan when none was)."""
    end_path = os.path.join(run_dir, "predictions", "end.txt")
    start = read_key_values(os.path.join(run_dir, "predictions", "start.txt"))
    margin = float("nan")
    if os.path.isfile(end_path):
        margin = float(start["time_budget"]) - float(read_key_values(end_path)["ingestion_duration"])
    kinds = predictor_kinds(os.path.join(dataset_out, "log.txt"))
    features = [naucs[k] for k, kind in kinds.items() if kind == "features" and k < len(naucs)]
    return {"margin_s": round(margin, 2), "features_nauc": features[-1] if features else float("nan"),
            "policy": policy_from_log(os.path.join(dataset_out, "log.txt"))}


def policy_from_log(path: str) -> str:
    """The augmentation policy the run chose, in short: 'none', or how it was chosen and its size."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r"augmentation policy(?: \((.*)\))?: (.*)$", line.strip())
            if m:
                how, policy = m.group(1) or "", m.group(2)
                if not how:
                    return "none (too late)"
                if how.startswith("drawn"):
                    return f"drawn, {policy.count('|') + 1} sub-policies"
                if ": ranked" in how:
                    return f"searched, {policy.count('|') + 1} sub-policies"
                return f"not ranked: {'none' if policy == 'none' else policy.count('|') + 1}"
    return "none"


def predictor_kinds(log_path: str) -> dict[int, str]:
    """Prediction file index -> kind of the predictor behind it, from the run's log: each ingestion line
    'prediction k written' follows the model's line naming the predictor of its latest new prediction."""
    kinds, latest = {}, None
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            # "t=12.3s prediction 2: features ..." (and before 2026-11-28: "t=12.3s features ... epoch=")
            made = re.search(r"autoclint: t=[\d.]+s (?:prediction \d+: (pixels|features|finetune)|"
                             r"(pixels|features|finetune)\b.* epoch=)", line)
            if made:
                latest = made.group(1) or made.group(2)
            written = re.search(r"prediction (\d+) written at", line)
            if written and latest:
                kinds[int(written.group(1))] = latest
    return kinds


def _backbone_from_log(path: str) -> str:
    """The backbone line the model logs ('backbone NAME (pretrained|random init), ...')."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r"backbone (\S+) \((pretrained|random init)\)", line)
            if m:
                return f"{m.group(1)} ({m.group(2)})"
    return ""


def write_tables(rows: list[dict], out: str) -> None:
    with open(os.path.join(out, "results.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| dataset | ALC | original ALC | final NAUC | frozen-features NAUC | first prediction (s) | predictions "
             "| margin (s) | peak RSS (MiB) | policy | backbone | mode | commit |", "|---" * 13 + "|"]
    for r in rows:
        original = r.get("original_alc")
        margin = "killed" if r["margin_s"] != r["margin_s"] else f"{r['margin_s']:.1f}"
        features = "" if r["features_nauc"] != r["features_nauc"] else f"{r['features_nauc']:.4f}"
        lines.append(f"| {r['dataset']} | {r['alc']:.4f} | {'' if original is None else f'{original:.3f}'} "
                     f"| {r['final_nauc']:.4f} | {features} | {r['first_prediction_s']:.1f} | {r['predictions']} "
                     f"| {margin} | {r['peak_rss_mib']} | {r.get('policy', 'none')} | {r['backbone']} | {r['mode']} "
                     f"| {r.get('commit', '')} |")
    alcs = [r["alc"] for r in rows]
    originals = [r["original_alc"] for r in rows if r.get("original_alc") is not None]
    mean_original = f"{sum(originals) / len(originals):.3f}" if len(originals) == len(rows) else ""
    lines.append(f"| **mean** | **{sum(alcs) / len(alcs):.4f}** | {mean_original} |" + " |" * 10)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write(f"Budget T={rows[0]['budget_s']:g} s per dataset, one run each, {os.cpu_count()} CPU cores.\n\n")
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.budget <= 0:
            raise AutoclintError(f"--budget={args.budget:g}: must be positive.")
        if not os.path.isfile(os.path.join(args.code_dir, "model.py")):
            raise AutoclintError(f"{args.code_dir}: no model.py in this folder (--code_dir).")
        if args.backbone and args.backbone not in list_models():
            raise AutoclintError(f"--backbone={args.backbone}: unknown; known: {', '.join(list_models())}.")
        args.suite = os.path.abspath(args.suite)
        names = list_datasets(args.suite, args.datasets)
    except AutoclintError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    out = os.path.abspath(args.out or os.path.join(REPO, "bench", "results",
                                                   f"{args.backbone or 'default'}-T{args.budget:g}"))
    os.makedirs(out, exist_ok=True)
    if args.recollect:
        return recollect(out)
    originals = original_figures(args.suite)
    version = code_version(args.code_dir)
    order = {name: i for i, name in enumerate(SUITE_ORDER)}
    kept = earlier_rows(out, names)
    rows = []
    for i, name in enumerate(names, 1):
        print(f"bench: [{i}/{len(names)}] {name} (T={args.budget:g} s)...", flush=True)
        row = run_one(name, args, out)
        row["original_alc"] = originals.get(name)
        row["commit"] = version
        rows.append(row)
        print(f"bench: {name}: ALC {row['alc']:.4f} (original {row['original_alc']}), final NAUC "
              f"{row['final_nauc']:.4f}, first prediction {row['first_prediction_s']:.1f} s, "
              f"{row['predictions']} predictions, peak RSS {row['peak_rss_mib']} MiB", flush=True)
        # after each dataset: an interrupted run keeps what it measured
        write_tables(sorted(kept + rows, key=lambda r: (order.get(r["dataset"], len(order)), r["dataset"])), out)
    print(f"bench: results in {out}/results.md")
    return 0 if all(r["predictions"] > 0 for r in rows) else 1


def recollect(out: str) -> int:
    """Fill margin_s and features_nauc of OUT's rows from the runs' logs and prediction folders."""
    rows = earlier_rows(out, [])
    for r in rows:
        run_dir = os.path.join(REPO, "bench", "runs", os.path.basename(out), r["dataset"])
        scores = read_key_values(os.path.join(run_dir, "scores", "scores.txt"))
        r.update(run_facts(run_dir, os.path.join(out, r["dataset"]), float_list(scores.get("nauc_scores", "[]"))))
    write_tables(rows, out)
    print(f"bench: {len(rows)} rows of {out}/results.md recollected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
