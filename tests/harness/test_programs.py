"""Ingestion + scoring end to end through the runner, on the real miniciao sample."""
import os
import subprocess
import sys
import textwrap
import time

import pytest

from autoclint.harness import score as score_program
from autoclint.harness.layout import read_key_values
from tests.conftest import REPO, copy_dataset, shared

BASELINES = os.path.join(REPO, "autoclint", "harness", "baselines")

# A model whose k-th test() returns a prediction that improves with k, then misbehaves as told.
TEMPLATE = '''
import time
import numpy as np
from autoclint.data.reader import count_examples  # the harness runs TF1 graph mode: no Python iteration

class Model:
    def __init__(self, metadata):
        self.done_training = False
        self.calls = 0
        self.c = metadata.get_output_size()

    def train(self, dataset, remaining_time_budget=None):
        self.calls += 1
        {train_extra}

    def test(self, dataset, remaining_time_budget=None):
        n = count_examples(dataset)
        pred = np.random.default_rng(self.calls).random((n, self.c))
        {test_extra}
        return pred
'''


def write_model(tmp_path, train_extra="pass", test_extra="pass", source=None) -> str:
    code = tmp_path / "code"
    code.mkdir()
    text = source if source is not None else TEMPLATE.format(train_extra=train_extra, test_extra=test_extra)
    (code / "model.py").write_text(textwrap.dedent(text))
    return str(code)


def run_local(dataset, code_dir, budget, result_dir, eager=False):
    """One run of ingestion + scoring in fresh processes (graph mode, as the challenge, unless eager)."""
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "autoclint.harness.run_local", f"-dataset_dir={dataset}", f"-code_dir={code_dir}",
         f"-time_budget={budget}", f"-result_dir={result_dir}"] + (["-eager"] if eager else []),
        capture_output=True, text=True, cwd=REPO, timeout=180)
    return proc, time.time() - started


def scores(result_dir):
    return read_key_values(os.path.join(result_dir, "scores", "scores.txt"))


def n_scored(result_dir) -> int:
    return len([v for v in scores(result_dir)["nauc_scores"].strip("[]").split(",") if v.strip()])


@pytest.fixture
def miniciao():
    return shared("samples", "miniciao")


def test_linear_baseline_improves_and_files_follow_protocol(tmp_path, miniciao):
    result = tmp_path / "res"
    proc, _ = run_local(miniciao, os.path.join(BASELINES, "linear"), 20, result)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-2].startswith("ALC: ") and lines[-1].startswith("final NAUC: ")
    s = scores(result)
    naucs = [float(v) for v in s["nauc_scores"].strip("[]").split(",")]
    assert float(s["score"]) > 0.1 and naucs[-1] > naucs[0] and len(naucs) == 10
    assert {"accuracy", "top1_accuracy", "nauc_mean", "alc_std", "Duration", "timestamps"} <= s.keys()
    top1 = [float(v) for v in s["top1_accuracy"].strip("[]").split(",")]
    assert len(top1) == len(naucs) and all(0 <= v <= 1 for v in top1) and top1[-1] > 0.1  # 10 classes: chance is 0.1
    start = read_key_values(result / "predictions" / "start.txt")
    assert start["task_name"] == "miniciao" and float(start["time_budget"]) == 20.0 and "9" in start
    first = (result / "predictions" / "miniciao.predict_0").read_text().splitlines()
    assert len(first) == 18 and len(first[0].split(" ")) == 10
    assert all(len(v.replace(".", "").replace("-", "").split("e")[0].lstrip("0")) <= 6 for v in first[0].split(" "))
    assert read_key_values(result / "predictions" / "end.txt")["ingestion_success"] == "1"
    assert (result / "scores" / "learning-curve-miniciao.png").stat().st_size > 1000
    html = (result / "scores" / "detailed_results.html").read_text()
    assert "data:image/png;base64" in html and "refresh" not in html


def test_both_baselines_work_eagerly_too(tmp_path, miniciao):
    proc, _ = run_local(miniciao, os.path.join(BASELINES, "linear"), 10, tmp_path / "lin", eager=True)
    assert proc.returncode == 0 and "TensorFlow in eager mode" in proc.stderr, proc.stderr
    assert float(scores(tmp_path / "lin")["score"]) > 0.1
    proc, _ = run_local(miniciao, os.path.join(BASELINES, "zero"), 10, tmp_path / "zero", eager=True)
    assert proc.returncode == 0 and float(scores(tmp_path / "zero")["score"]) == 0.0


def errors_in(log: str) -> list[str]:
    """Lines of a run's log that report a failure (the model logs caught exceptions as 'failed')."""
    return [line for line in log.splitlines() if "Traceback" in line or "failed" in line or "Error" in line]


@pytest.mark.slow
@pytest.mark.parametrize("eager", [False, True])
def test_the_model_in_graph_mode_and_eagerly(tmp_path, eager):
    """The challenge ran TF 1.13 in graph mode: there a dataset cannot be iterated in Python."""
    proc, _ = run_local(shared("suite", "Faces"), REPO, 25, tmp_path / "res", eager=eager)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("TensorFlow in eager mode" if eager else "TensorFlow in graph (TF1") in proc.stderr
    assert not errors_in(proc.stderr), errors_in(proc.stderr)
    assert float(scores(tmp_path / "res")["score"]) > 0.5 and n_scored(tmp_path / "res") >= 2


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["Faces", "Kth"])
@pytest.mark.parametrize("budget", [4, 10, 30])
def test_the_model_ends_by_itself_within_the_budget(tmp_path, dataset, budget):
    """Never killed at T: ingestion ends by itself, with a valid prediction and the margin in the log.

    Not T=3: the scorer looks for end.txt once a second and then scores (0.25 s a prediction), the process
    lives ~2 s past end.txt (TF + torch teardown), so an end in the last ~1.5 s is flagged whatever the model
    does, and on a loaded machine the first prediction alone lands at 1.6 s."""
    proc, _ = run_local(shared("suite", dataset), REPO, budget, tmp_path / "res")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "exceeded" not in proc.stderr and not errors_in(proc.stderr), proc.stderr[-3000:]
    end = read_key_values(tmp_path / "res" / "predictions" / "end.txt")
    assert end["ingestion_success"] == "1" and float(end["ingestion_duration"]) < budget
    assert n_scored(tmp_path / "res") >= 1 and float(scores(tmp_path / "res")["score"]) > 0
    assert "of the budget left" in proc.stderr and "(margin " in proc.stderr


def test_scoring_after_the_fact_gives_the_same_alc(tmp_path, miniciao):
    result = tmp_path / "res"
    run_local(miniciao, os.path.join(BASELINES, "linear"), 20, result)
    again = tmp_path / "again"
    assert score_program.main([f"--solution_dir={miniciao}", f"--prediction_dir={result / 'predictions'}",
                               f"--score_dir={again}"]) == 0
    assert scores(result)["score"] == read_key_values(again / "scores.txt")["score"]


def test_zero_baseline_scores_zero(tmp_path, miniciao):
    proc, _ = run_local(miniciao, os.path.join(BASELINES, "zero"), 10, tmp_path / "res")
    assert proc.returncode == 0, proc.stderr
    assert float(scores(tmp_path / "res")["score"]) == 0.0


def test_model_py_without_model(tmp_path, miniciao):
    code = write_model(tmp_path, source="class Modle:\n    pass\n")
    proc, _ = run_local(miniciao, code, 10, tmp_path / "res")
    assert "model.py: defines no class Model" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert float(scores(tmp_path / "res")["score"]) == 0.0
    assert read_key_values(tmp_path / "res" / "predictions" / "end.txt")["ingestion_success"] == "0"


def test_train_raising_keeps_earlier_predictions(tmp_path, miniciao):
    code = write_model(tmp_path, train_extra="if self.calls == 3: raise RuntimeError('boom in train')")
    proc, _ = run_local(miniciao, code, 15, tmp_path / "res")
    assert "RuntimeError: boom in train (earlier predictions are kept" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert n_scored(tmp_path / "res") == 2 and float(scores(tmp_path / "res")["score"]) != 0
    assert read_key_values(tmp_path / "res" / "predictions" / "end.txt")["ingestion_success"] == "0"


def test_overrun_is_killed_at_the_budget(tmp_path, miniciao):
    code = write_model(tmp_path, train_extra="if self.calls == 2: time.sleep(300)")
    proc, elapsed = run_local(miniciao, code, 8, tmp_path / "res")
    assert proc.returncode == 0, proc.stderr
    assert "time budget of 8 s exceeded: ingestion" in proc.stderr
    assert n_scored(tmp_path / "res") == 1
    assert elapsed < 60
    assert not os.path.exists(tmp_path / "res" / "predictions" / "end.txt")


def test_wrong_shape_stops_ingestion(tmp_path, miniciao):
    code = write_model(tmp_path, test_extra="pred = pred[:-1] if self.calls == 2 else pred")
    proc, _ = run_local(miniciao, code, 15, tmp_path / "res")
    assert "Model.test returned shape (17, 10); expected (18, 10)" in proc.stderr
    assert n_scored(tmp_path / "res") == 1


def test_nan_prediction_stops_the_curve(tmp_path, miniciao):
    code = write_model(tmp_path, test_extra="pred[0, 0] = float('nan') if self.calls == 3 else pred[0, 0]")
    proc, _ = run_local(miniciao, code, 15, tmp_path / "res")
    assert "miniciao.predict_2: holds NaN or inf" in proc.stderr
    assert n_scored(tmp_path / "res") == 2
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines()[-2].startswith("ALC: ")


def test_test_returning_none_ends_normally(tmp_path, miniciao):
    code = write_model(tmp_path, test_extra="pred = None if self.calls == 3 else pred")
    proc, _ = run_local(miniciao, code, 15, tmp_path / "res")
    assert proc.returncode == 0, proc.stderr
    assert n_scored(tmp_path / "res") == 2
    assert read_key_values(tmp_path / "res" / "predictions" / "end.txt")["ingestion_success"] == "1"


# ----------------------------------------------------------------------------- bad datasets

def test_two_data_folders(tmp_path, miniciao):
    root = copy_dataset(miniciao, tmp_path)
    os.rename(os.path.join(root, "miniciao.data"), os.path.join(root, "a.data"))
    copy_dataset(os.path.join(root, "a.data"), tmp_path)
    os.rename(os.path.join(tmp_path, "a.data"), os.path.join(root, "b.data"))
    proc, _ = run_local(root, os.path.join(BASELINES, "zero"), 5, tmp_path / "res")
    assert proc.returncode == 2
    assert "expected exactly one *.data folder, found 2 (a.data, b.data)" in proc.stderr


def test_no_data_folder(tmp_path, miniciao):
    root = copy_dataset(miniciao, tmp_path)
    os.rename(os.path.join(root, "miniciao.data"), os.path.join(root, "miniciao"))
    proc, _ = run_local(root, os.path.join(BASELINES, "zero"), 5, tmp_path / "res")
    assert "expected exactly one *.data folder, found no" in proc.stderr


def test_solution_name_differs(tmp_path, miniciao):
    root = copy_dataset(miniciao, tmp_path)
    os.rename(os.path.join(root, "miniciao.solution"), os.path.join(root, "ciao.solution"))
    proc, _ = run_local(root, os.path.join(BASELINES, "zero"), 5, tmp_path / "res")
    assert "ciao.solution: its name 'ciao' differs from the data folder 'miniciao.data'" in proc.stderr


def test_solution_row_count_differs(tmp_path, miniciao):
    root = copy_dataset(miniciao, tmp_path)
    path = os.path.join(root, "miniciao.solution")
    rows = open(path).read().splitlines()[:-2]
    open(path, "w").write("\n".join(rows) + "\n")
    proc, _ = run_local(root, os.path.join(BASELINES, "zero"), 5, tmp_path / "res")
    assert proc.returncode == 2
    assert "miniciao.solution: has 16 rows but the test set has 18 examples" in proc.stderr


def test_corrupt_record_fails_before_the_clock(tmp_path, miniciao):
    root = copy_dataset(miniciao, tmp_path)
    path = os.path.join(root, "miniciao.data", "test", "sample-miniciao-test.tfrecord")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-100])
    proc, elapsed = run_local(root, os.path.join(BASELINES, "zero"), 5, tmp_path / "res")
    assert proc.returncode == 1
    assert "sample-miniciao-test.tfrecord: record 17 is truncated or corrupt" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "res" / "predictions" / "start.txt")
