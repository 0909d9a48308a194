"""`autoclint report RUN`: a self-contained page a person reads, its figures as PNG, rendered in Chromium."""
import csv
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from autoclint.cli import main
from autoclint.metrics import summarize
from autoclint.report import Evaluation, write_report
from tests.conftest import copy_dataset, shared

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(faces_run, tmp_path_factory):
    """A copy of the Faces run with its report in the default place (RUN/report)."""
    run = str(tmp_path_factory.mktemp("report") / "faces")
    shutil.copytree(faces_run, run)
    assert main(["report", run]) == 0
    return run


def test_report_is_one_self_contained_page_with_its_figures(report):
    folder = os.path.join(report, "report")
    assert sorted(os.listdir(folder)) == ["confusion.png", "curve.png", "index.html", "metrics.json", "worst.png"]
    for name in ("confusion.png", "curve.png", "worst.png"):
        assert open(os.path.join(folder, name), "rb").read(8) == PNG
    page = open(os.path.join(folder, "index.html"), encoding="utf-8").read()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # nothing fetched
    for text in ("top-1 accuracy", "macro precision / recall / F1", "Confusion matrix", "Worst-classified",
                 "What the learner chose", "<td>s40</td>", "input size"):
        assert text in page, text


def test_report_scores_match_the_predict_command(report, tmp_path):
    """The report's top-1 is what `predict`'s CSV gives on the same test set (one prediction route)."""
    with open(os.path.join(report, "report", "metrics.json")) as f:
        figures = json.load(f)
    out = tmp_path / "p.csv"
    assert main(["predict", report, shared("suite", "Faces"), "--out", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))[1:]
    truth = [f"s{line.split().index('1') + 1}" for line in open(shared("suite", "Faces", "Faces.solution"))]
    assert figures["top1"] == pytest.approx(np.mean([r[1] == t for r, t in zip(rows, truth)]), abs=1e-9)
    assert figures["top1"] > 0.8 and len(figures["confusion"]) == 40
    assert sum(map(sum, figures["confusion"])) == 120


def test_report_renders_in_chromium_without_console_errors(report, tmp_path):
    """Headless Chromium (Debian's `chromium`; .ci/run installs it) loads the page with no console error."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is not installed: `apt-get install chromium` (.ci/run does it)"
    shot = tmp_path / "page.png"
    page = "file://" + os.path.join(report, "report", "index.html")
    result = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}",
                             "--window-size=1200,1600", f"--screenshot={shot}", page],
                            capture_output=True, text=True, timeout=120)
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert result.returncode == 0, result.stderr[-2000:]
    assert not console, console
    assert shot.read_bytes()[:8] == PNG and shot.stat().st_size > 20_000  # a page, not a blank


def test_multilabel_report_shows_precision_and_recall_at_the_thresholds(tmp_path):
    """Multi-label: no confusion matrix; per-class precision / recall at the saved thresholds, which the
    per-class table lists."""
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(60, 4)) < 0.3).astype(float)
    y[y.sum(1) == 0, 0] = 1
    p = np.clip(0.6 * y + 0.4 * rng.uniform(size=y.shape), 0, 1)
    decisions = p >= 0.5
    ev = Evaluation(y, p, decisions, rng.integers(0, 255, (60, 8, 8, 3), dtype=np.uint8), summarize(y, p, decisions))
    info = {"kind": "finetune", "tta": False, "valid_nauc": 0.8, "calibration": {"thresholds": [0.5, 0.4, 0.6, 0.5]}}
    path = write_report(str(tmp_path / "r"), "multi", {}, info, ev, ["fire", "water", "grass", "rock"], "synthetic", False)
    assert sorted(os.listdir(tmp_path / "r")) == ["index.html", "metrics.json", "per-class.png", "worst.png"]
    page = open(path, encoding="utf-8").read()
    assert "Per-class precision and recall" in page and "<th>threshold</th>" in page and "<td>0.40</td>" in page
    assert ev.summary.confusion is None


def test_bad_input_is_one_sentence_and_nothing_is_lost(report, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    no_solution = copy_dataset(shared("suite", "Faces"), tmp_path / "data")
    os.remove(os.path.join(no_solution, "Faces.solution"))
    cases = [
        (["report", report, "--out", str(mine)], "holds files this command did not write (notes.txt)"),
        (["report", str(tmp_path)], "not a run folder (no model.json)"),
        (["report", report, "--test", no_solution, "--out", str(tmp_path / "r1")], "has no labelled test set"),
        (["report", report, "--test", shared("suite", "Signs"), "--out", str(tmp_path / "r2")],
         "has 36 classes, the model 40"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("autoclint: error: ") and message in err[-1], (argv, err)
    assert (mine / "notes.txt").read_text() == "keep" and sorted(os.listdir(mine)) == ["notes.txt"]
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
