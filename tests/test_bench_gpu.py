"""bench/gpu.py, the device benchmark, run here on the CPU as it runs on a lent GPU: without TensorFlow,
from the arrays `prepare` writes, one row per dataset with the learner's and the backbone's speed."""
import json
import os
import subprocess
import sys

from tests.conftest import REPO, SHARED_DATA, shared

BLOCK_TF = "import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = ['bench/gpu.py'] + sys.argv[1:]; " \
           "runpy.run_path('bench/gpu.py', run_name='__main__')"


def gpu_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TF, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)


def test_prepare_here_then_run_without_tensorflow(tmp_path):
    shared("suite", "Faces")
    data, out = str(tmp_path / "data"), str(tmp_path / "out")
    prepared = subprocess.run([sys.executable, "bench/gpu.py", "prepare", "--suite", os.path.join(SHARED_DATA, "suite"),
                               "--datasets", "Faces", "--data", data, "--no-wheels"], cwd=REPO, capture_output=True,
                              text=True, timeout=600, check=False)
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    assert sorted(os.listdir(os.path.join(data, "Faces"))) == ["solution.npy", "test.npz", "train.npz"]
    ran = gpu_bench("run", "--datasets", "Faces", "--data", data, "--budget", "40", "--device", "cpu",
                    "--rate-seconds", "1", "--out", out, "--set", "first_slice_s=2")
    assert ran.returncode == 0, ran.stderr[-3000:]
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        (row,) = json.load(f)
    assert row["dataset"] == "Faces" and row["device"] == "cpu" and row["amp"] == "float32"
    assert 0.5 < row["alc"] <= 1 and row["first_prediction_s"] < 5 and row["over_budget_s"] == 0
    assert row["batch"] and row["learner_images_per_s"] > 0 and row["backbone_images_per_s"] > 0, row
    assert abs(row["learner_share"] - row["learner_images_per_s"] / row["backbone_images_per_s"]) < 0.01
    with open(os.path.join(out, "results.md"), encoding="utf-8") as f:
        assert "| Faces | cpu | 40.0 |" in f.read()


def test_a_dataset_not_prepared_is_one_sentence(tmp_path):
    ran = gpu_bench("run", "--datasets", "Nope", "--data", str(tmp_path), "--device", "cpu")
    assert ran.returncode == 1
    assert ran.stderr.strip() == f"{tmp_path}/Nope: not prepared (bench/gpu.py prepare), or not carried"
