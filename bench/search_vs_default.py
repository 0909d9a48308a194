"""`autoclint search` against the default learner (issue 13's evidence).

    .venv/bin/python bench/search_vs_default.py Pokemon --search-time 1800 --retrain 300

Per dataset (a folder of ../shared/data/suite): a search of --search-time seconds (--workers processes;
extra arguments after `--` go to it, e.g. `-- --max-params 2000000 --min-precision 0.5`), then the
incumbent's configuration (incumbent.json) and the default configuration are each trained for --retrain
seconds with `autoclint train`, back to back on this machine, and their saved models are scored on the
test set: NAUC, top-1, macro precision / recall / F1. Writes OUT/<dataset>/results.md with the per-budget
table, trials.csv and best-over-time.png of the search, and the commit that produced them.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
SUITE = os.path.join(os.environ.get("AUTOCLINT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data")), "suite")


def autoclint(*args: str) -> str:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "autoclint", *args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"autoclint {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    print(f"  autoclint {args[0]}: {time.monotonic() - started:.0f} s", flush=True)
    return proc.stdout


def scores(model_dir: str, dataset: str) -> dict:
    from autoclint.data.source import open_dataset
    from autoclint.report import evaluate
    from autoclint.train.checkpoint import load_trained
    opened = open_dataset(dataset)
    s = evaluate(load_trained(model_dir), opened.test.get_dataset(), opened.solution).summary
    return {"nauc": s.nauc, "top1": s.top1, "macro_precision": s.macro[0], "macro_recall": s.macro[1],
            "macro_f1": s.macro[2]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a dataset of the suite (Pokemon, Cifar, ...)")
    parser.add_argument("--search-time", type=float, default=1800.0)
    parser.add_argument("--retrain", type=float, default=300.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", default=os.path.join(REPO, "bench", "runs", "search"))
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results", "search"))
    parser.add_argument("--tag", default="", help="a suffix of the result folder (e.g. constrained)")
    parser.add_argument("--retrain-only", action="store_true", help="keep the search done before: only train "
                        "both configurations again (another pair, written to results-retrain-<time>.md)")
    args, search_args = parser.parse_known_args()
    search_args = [a for a in search_args if a != "--"]
    dataset = os.path.abspath(os.path.join(SUITE, args.dataset))
    name = args.dataset + (f"-{args.tag}" if args.tag else "")
    runs = os.path.join(args.runs, name)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    if args.retrain_only:
        summary = "(the search above, not run again)"
    else:
        print(f"{name}: search for {args.search_time:g} s ({args.workers} workers)", flush=True)
        summary = autoclint("search", dataset, "--time", str(args.search_time), "--workers", str(args.workers),
                            "--out", os.path.join(runs, "search"), "--overwrite", *search_args)
    rows = {}
    for arm, extra in (("default", []), ("incumbent", ["--config", os.path.join(runs, "search", "incumbent.json")])):
        print(f"{name}: {arm} trained for {args.retrain:g} s", flush=True)
        folder = os.path.join(runs, arm)
        autoclint("train", dataset, "--budget", str(args.retrain), "--out", folder, "--overwrite", *extra)
        rows[arm] = scores(folder, dataset)
    rows["search's own model"] = scores(os.path.join(runs, "search", "model"), dataset)
    out = os.path.join(args.out, name)
    os.makedirs(out, exist_ok=True)
    for f in ("trials.csv", "budgets.md", "best-over-time.png", "incumbent.json"):
        if os.path.exists(os.path.join(runs, "search", f)):  # incumbent.json: absent when no trial completed
            shutil.copy(os.path.join(runs, "search", f), out)
    lines = [f"# {name}: `autoclint search` ({args.search_time:g} s, {args.workers} workers) vs the default",
             "", f"Commit {commit}; this machine ({os.cpu_count()} cores), the rows back to back. Search "
             f"arguments: {' '.join(search_args) or '(none)'}.", "",
             "## Test set, each configuration trained for %g s by `autoclint train`" % args.retrain, "",
             "| configuration | test NAUC | top-1 | macro precision | macro recall | macro F1 |",
             "|---|---|---|---|---|---|"]
    for arm, r in rows.items():
        lines.append(f"| {arm} | {r['nauc']:.4f} | {r['top1']:.4f} | {r['macro_precision']:.4f} | "
                     f"{r['macro_recall']:.4f} | {r['macro_f1']:.4f} |")
    lines += ["", "(\"search's own model\": the incumbent trial's saved model, trained for --trial-time with one "
              "core.)", "", "## The search's output", "", "```", summary.strip(), "```", ""]
    result = f"results-retrain-{time.strftime('%H%M')}.md" if args.retrain_only else "results.md"
    with open(os.path.join(out, result), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
