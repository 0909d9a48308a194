"""The README's walk-through, line for line: train on raw photos (60 s), report, predict two files."""
import csv
import os
import re
import shlex

import pytest

from autoclint.cli import main
from tests.conftest import REPO, SHARED_DATA, shared


def walkthrough() -> list[list[str]]:
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    block = re.search(r"<!-- walkthrough -->\s*```bash\n(.*?)```\s*<!-- /walkthrough -->", text, re.S)
    assert block, "README.md: the walk-through block is missing"
    lines = [shlex.split(line) for line in block.group(1).strip().splitlines()]
    assert all(line[0] == ".venv/bin/autoclint" for line in lines)
    return [line[1:] for line in lines]


@pytest.mark.slow
def test_readme_walkthrough_runs_as_written(tmp_path, monkeypatch):
    shared("raw", "photos")
    repo = tmp_path / "repo"  # the README's paths are relative to a checkout beside shared/
    repo.mkdir()
    os.symlink(os.path.dirname(os.path.abspath(SHARED_DATA)), tmp_path / "shared")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("AUTOCLINT_CACHE_DIR", str(tmp_path / "cache"))
    train, report, predict = walkthrough()
    assert train[0] == "train" and "--budget" in train and report[0] == "report" and predict[0] == "predict"
    for argv in (train, report, predict):
        assert main(argv) == 0, argv
    assert os.path.isfile("runs/photos/report/index.html") and os.path.isfile("runs/photos/curve.png")
    with open("predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["example", "predicted", "P(buildings)", "P(nature)", "P(objects)"] and len(rows) == 3
    assert [os.path.basename(r[0]) for r in rows[1:]] == ["leaf_jolla.jpg", "car_42_IndexError.jpg"]
