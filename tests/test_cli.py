"""`autoclint train` then `autoclint predict`, on a real dataset and on raw files; bad arguments get one sentence."""
import csv
import json
import os

import numpy as np
import pytest

from autoclint.cli import main
from tests.conftest import shared


@pytest.fixture(scope="module")
def saved_model(faces_run):
    return faces_run


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_train_saves_and_predict_reads_the_test_set(saved_model, tmp_path, capsys):
    assert "new prediction: valid NAUC" in capsys.readouterr().out or os.path.isdir(saved_model)
    out = tmp_path / "p.csv"
    assert main(["predict", saved_model, shared("suite", "Faces"), "--out", str(out)]) == 0
    rows = read_rows(out)
    assert rows[0][:3] == ["example", "predicted", "P(s1)"] and len(rows[0]) == 42
    assert all(abs(sum(float(v) for v in r[2:]) - 1) < 1e-4 for r in rows[1:])  # probabilities
    assert len(rows) == 121
    solution = [line.split() for line in open(shared("suite", "Faces", "Faces.solution"))]
    truth = [f"s{row.index('1') + 1}" for row in solution]
    accuracy = sum(r[1] == t for r, t in zip(rows[1:], truth)) / 120
    assert accuracy > 0.8  # 40 subjects: chance is 0.025


def test_predict_on_image_files(saved_model, tmp_path):
    out = tmp_path / "files.csv"
    faces = shared("raw", "faces_pgm")
    assert main(["predict", saved_model, os.path.join(faces, "s3"), os.path.join(faces, "s5", "1.pgm"),
                 "--out", str(out)]) == 0
    rows = read_rows(out)[1:]
    assert len(rows) == 5 and rows[-1][0].endswith(os.path.join("s5", "1.pgm"))
    assert sum(r[1] == "s3" for r in rows[:4]) >= 3


def test_predict_marks_an_unreadable_file_and_predicts_the_others(saved_model, tmp_path, caplog):
    """One corrupt file among good ones: one log line, its row marked UNREADABLE, the others predicted;
    --top-k adds the most probable classes; a colour photo fed to the grey faces model is warned about."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not a jpeg")
    good = os.path.join(shared("raw", "faces_pgm"), "s5", "1.pgm")
    photos = shared("raw", "photos", "nature")
    colour = os.path.join(photos, sorted(os.listdir(photos))[0])
    out = tmp_path / "p.csv"
    caplog.set_level("WARNING", logger="autoclint")
    assert main(["predict", saved_model, good, str(broken), colour, "--out", str(out), "--top-k", "2",
                 "--batch-size", "1"]) == 0
    rows = read_rows(out)
    assert rows[0][:6] == ["example", "predicted", "class_1", "p_1", "class_2", "p_2"] and len(rows[0]) == 46
    assert [r[0] for r in rows[1:]] == [good, str(broken), colour]
    assert rows[2][1] == "UNREADABLE" and set(rows[2][2:]) == {""}
    assert rows[1][1] == rows[1][2] and float(rows[1][3]) >= float(rows[1][5])  # top-1 is the prediction
    assert "broken.jpg: cannot be read as an image" in caplog.text and "marked unreadable" in caplog.text
    assert "3 channel(s), but the model was trained on 1" in caplog.text
    assert main(["predict", saved_model, str(broken), "--out", str(tmp_path / "none.csv")]) == 2
    assert not (tmp_path / "none.csv").exists()


def test_predict_names_dataset_rows_by_their_files(tmp_path, monkeypatch):
    """A converted folder's test rows carry the file each came from (convert's files.csv)."""
    from autoclint.data import convert
    root = convert.write_dataset(convert.collect_folder(shared("raw", "photos")), str(tmp_path), "Photos", 0.3)
    listed = {int(r["index"]): r["file"] for r in csv.DictReader(open(os.path.join(root, "files.csv")))
              if r["split"] == "test"}
    model = tmp_path / "m"
    assert main(["train", root, "--budget", "3", "--out", str(model)]) == 0
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), root, "--out", str(out)]) == 0
    rows = read_rows(out)[1:]
    assert [r[0] for r in rows] == [listed[i] for i in range(len(listed))]
    by_files = tmp_path / "files.csv"  # the same photos through the file route: the same probabilities
    assert main(["predict", str(model), *[listed[i] for i in range(len(listed))], "--out", str(by_files)]) == 0
    np.testing.assert_allclose(np.array([r[2:] for r in read_rows(by_files)[1:]], float),
                               np.array([r[2:] for r in rows], float), rtol=0, atol=1e-6)


def test_bad_arguments_are_one_sentence(saved_model, tmp_path, capsys):
    readme = os.path.join(shared("raw", "faces_pgm"), "README.md")
    cases = [
        (["predict", saved_model, readme], "not an image or video file"),
        (["predict", saved_model, str(tmp_path / "nothing")], "no such file or folder"),
        (["predict", str(tmp_path), readme], "model.json: missing"),
        (["train", shared("suite", "Faces"), "--budget", "0", "--save", str(tmp_path / "m")], "must be positive"),
        (["train", shared("suite", "Faces"), "--backbone", "vgg", "--save", str(tmp_path / "m")], "unknown"),
        (["train", str(tmp_path / "nothing"), "--save", str(tmp_path / "m")], "no such file or folder"),
        (["train", shared("raw", "photos", "nature"), "--save", str(tmp_path / "m")], "found 0 class folder(s)"),
        (["train", readme, "--save", str(tmp_path / "m")], "not a dataset this tool reads"),
        (["train", shared("raw", "photos"), "--test-size", "1", "--save", str(tmp_path / "m")], "between 0 and 1"),
        (["train", shared("suite", "Faces"), "--set", "lrr=1", "--save", str(tmp_path / "m")],
         "--set lrr: no such setting; known: max_side"),
        (["train", shared("suite", "Faces"), "--set", "search.draws=x", "--save", str(tmp_path / "m")],
         "--set search.draws=x: not a valid int"),
        (["train", shared("suite", "Faces"), "--device", "tpu", "--out", str(tmp_path / "m")],
         "--device=tpu: expected cpu, cuda or cuda:N"),
        (["train", shared("suite", "Faces"), "--device", "cuda:7", "--out", str(tmp_path / "m")], "--device=cuda:7: "),
        (["predict", saved_model, readme, "--device", "cuda:7"], "--device=cuda:7: "),
        (["train", shared("suite", "Faces"), "--config", str(tmp_path / "none.json"), "--out", str(tmp_path / "m")],
         "none.json: cannot be read"),
        (["train", shared("suite", "Faces"), "--config", readme, "--out", str(tmp_path / "m")], "not valid JSON"),
        (["train", shared("suite", "Faces"), "--max-params", "100000", "--out", str(tmp_path / "m")],
         "--max-params=100000: every network is larger: the smallest, small_cnn, has 1,245,640 parameters"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("autoclint: error: ") and message in err[-1], (argv, err)
    predict_signs = ["predict", saved_model, shared("suite", "Signs"), "--out", str(tmp_path / "x.csv")]
    assert main(predict_signs) == 2
    assert "has 36 classes, the model 40" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_train_never_deletes_files_it_did_not_write(saved_model, tmp_path, capsys):
    """`train --save` into a folder of the user's is refused before training, the files untouched."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    (folder / "model.json").write_text("{}")  # looks like a model, but a foreign file sits beside it
    argv = ["train", shared("suite", "Faces"), "--budget", "5", "--save", str(folder)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "holds files this command did not write (thesis.tex)" in err and "--overwrite" in err, err
    assert (folder / "thesis.tex").read_text() == "years of work"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    assert main(["train", shared("suite", "Faces"), "--budget", "5", "--save", str(a_file)]) == 2
    assert "is not a folder" in capsys.readouterr().err and a_file.read_text() == "keep"


def test_train_replaces_its_own_earlier_model_and_overwrite_replaces_anything(saved_model, tmp_path):
    import shutil
    earlier = tmp_path / "earlier"
    shutil.copytree(saved_model, earlier)
    assert main(["train", shared("suite", "Faces"), "--budget", "3", "--save", str(earlier), "--config",
                 os.path.join(saved_model, "config.json"), "--set", "lr=0.004"]) == 0
    assert (earlier / "model.json").is_file()
    config = json.loads((earlier / "config.json").read_text())
    assert config["lr"] == 0.004 and config["ridge_alphas"] == json.loads(
        open(os.path.join(saved_model, "config.json")).read())["ridge_alphas"]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "old.txt").write_text("x")
    assert main(["train", shared("suite", "Faces"), "--budget", "3", "--save", str(theirs), "--overwrite"]) == 0
    record = ["config.json", "curve.png", "log.txt", "metrics.json", "model.json"]
    assert sorted(os.listdir(theirs)) in (sorted(record + ["ridge.npz"]), sorted(record + ["weights.pt"]),
                                          sorted(record + ["ridge.npz", "weights.pt"]))


def test_train_from_a_folder_of_class_folders_converts_once(tmp_path, monkeypatch, caplog):
    """The issue's `train photos/`: converted into the cache, trained, saved; a second run reuses the
    conversion; the saved model predicts calibrated probabilities for files."""
    monkeypatch.setenv("AUTOCLINT_CACHE_DIR", str(tmp_path / "cache"))
    photos = shared("raw", "photos")
    model = str(tmp_path / "photos-model")
    caplog.set_level("INFO", logger="autoclint")
    assert main(["train", photos, "--budget", "8", "--save", model]) == 0
    assert "converted into" in caplog.text and len(os.listdir(tmp_path / "cache")) == 1
    caplog.clear()
    assert main(["train", photos, "--budget", "3", "--save", model]) == 0
    assert "reusing its conversion" in caplog.text and len(os.listdir(tmp_path / "cache")) == 1
    out = tmp_path / "p.csv"
    files = [os.path.join(photos, "nature", sorted(os.listdir(os.path.join(photos, "nature")))[0]),
             os.path.join(photos, "objects", sorted(os.listdir(os.path.join(photos, "objects")))[0])]
    assert main(["predict", model, *files, "--out", str(out)]) == 0
    rows = read_rows(out)
    assert rows[0] == ["example", "predicted", "P(buildings)", "P(nature)", "P(objects)"]
    assert [r[0] for r in rows[1:]] == files
    assert all(abs(sum(float(v) for v in r[2:]) - 1) < 1e-4 for r in rows[1:])


def test_ctrl_c_during_training_keeps_the_best_predictor(tmp_path, monkeypatch, capsys):
    """An interrupt after the first prediction still saves a usable model; before any, nothing is written."""
    from autoclint.train.session import Session
    real_train, calls = Session.train, []

    def train_then_interrupt(self, dataset, remaining_s):
        calls.append(remaining_s)
        if len(calls) > 1:
            raise KeyboardInterrupt
        real_train(self, dataset, remaining_s)

    monkeypatch.setattr(Session, "train", train_then_interrupt)
    model = tmp_path / "m"
    assert main(["train", shared("suite", "Faces"), "--budget", "60", "--save", str(model)]) == 0
    assert "interrupted at" in capsys.readouterr().err
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), shared("suite", "Faces"), "--out", str(out)]) == 0
    assert len(read_rows(out)) == 121
    calls.append("again")  # every call is now past the first: interrupted before anything was fitted
    assert main(["train", shared("suite", "Faces"), "--budget", "60", "--save", str(tmp_path / "n")]) == 2
    assert "nothing saved" in capsys.readouterr().err and not (tmp_path / "n").exists()


def test_run_folder_records_the_training(saved_model):
    """`train --out RUN`: beside the model, every prediction made (time, predictor, held-out and test NAUC),
    what the learner chose, the settings used, the log and the curve."""
    with open(os.path.join(saved_model, "metrics.json")) as f:
        run = json.load(f)
    assert run["budget_s"] == 12 and 0 < run["elapsed_s"] and run["dataset"].endswith("Faces")
    assert run["state"] == "finished" and not run["interrupted"]
    times = [p["t"] for p in run["predictions"]]
    assert times and times == sorted(times)
    assert all(0.9 < p["test_nauc"] <= 1 and p["kind"] in ("pixels", "features", "finetune") for p in run["predictions"])
    assert run["learner"]["input_shape"][:2] == [1, 112] and run["learner"]["held_out"] == 40
    with open(os.path.join(saved_model, "config.json")) as f:
        config = json.load(f)
    assert config["lr"] == 0.003 and config["search"]["draws"] == 3
    log_text = open(os.path.join(saved_model, "log.txt")).read()
    assert "pixels ridge" in log_text and log_text.count("new prediction") == len(times)
    assert open(os.path.join(saved_model, "curve.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_cv_trains_each_fold_and_reports_mean_and_sd(tmp_path, monkeypatch, capsys):
    """`cv`: 2 stratified folds of 12 real faces, a run folder per fold, per-fold figures and mean +- sd."""
    from tests.data.test_source import faces_folder
    monkeypatch.setenv("AUTOCLINT_CACHE_DIR", str(tmp_path / "cache"))
    faces = faces_folder(tmp_path)
    out = tmp_path / "cv"
    assert main(["cv", faces, "--folds", "2", "--budget-per-fold", "3", "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["cv.json", "cv.md", "fold-1", "fold-2"]
    result = json.loads((out / "cv.json").read_text())
    assert [r["test_examples"] for r in result["per_fold"]] == [6, 6] and result["folds_done"] == 2
    top1 = [r["top1"] for r in result["per_fold"]]
    assert result["summary"]["top1"]["mean"] == pytest.approx(sum(top1) / 2)
    assert result["summary"]["top1"]["sd"] == pytest.approx(abs(top1[0] - top1[1]) / 2 ** 0.5)
    assert "| mean +- sd |" in (out / "cv.md").read_text()
    assert (out / "fold-1" / "model.json").is_file() and "wrote" in capsys.readouterr().out
    assert main(["report", str(out / "fold-2")]) == 0  # a fold is a run folder
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("x")
    for argv, message in [(["cv", faces, "--folds", "5", "--out", str(tmp_path / "c5")], "fewer than the folds"),
                          (["cv", faces, "--folds", "2", "--out", str(mine)], "holds files this command did not write"),
                          (["cv", faces, "--budget-per-fold", "0", "--out", str(tmp_path / "c0")], "must be positive")]:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err.strip().splitlines()[-1], argv
    assert (mine / "data.csv").read_text() == "x" and not (tmp_path / "c5").exists()


def test_models_lists_the_networks_with_their_sizes(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["network", "parameters"]
    lite0 = next(line for line in lines if line.startswith("efficientnet_lite0"))
    assert "3,371,008" in lite0 and "present (default)" in lite0  # ImageNet Lite0 without its 1000-class layer


def test_sigterm_during_training_saves_the_best_predictor_so_far(tmp_path):
    """`kill` (a scheduler's time limit) after the first prediction: the run folder is written, marked
    interrupted, and its model predicts."""
    import signal
    import subprocess
    import sys
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "autoclint", "train", shared("suite", "Faces"), "--budget", "120",
                             "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for line in proc.stdout:  # the CLI prints a line per new prediction
        if "new prediction" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "interrupted at" in err and "saved" in out
    assert json.loads((run / "metrics.json").read_text())["interrupted"] is True
    assert main(["predict", str(run), shared("suite", "Faces"), "--out", str(tmp_path / "p.csv")]) == 0


def test_a_killed_run_leaves_the_model_it_saved_while_training(tmp_path):
    """SIGKILL (out of memory, a power cut) cannot be caught: the run folder written at the first prediction
    is what remains, marked as still training, and its model predicts and reports."""
    import signal
    import subprocess
    import sys
    import time
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "autoclint", "train", shared("suite", "Faces"), "--budget", "120",
                             "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        for line in proc.stdout:  # the CLI prints a line per new prediction, then saves
            if "new prediction" in line:
                break
        deadline = time.monotonic() + 30
        while not (run / "metrics.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (run / "metrics.json").exists(), "no run folder was written after the first prediction"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    record = json.loads((run / "metrics.json").read_text())
    assert record["state"] == "training" and record["predictions"]
    assert main(["predict", str(run), shared("suite", "Faces"), "--out", str(tmp_path / "p.csv")]) == 0
    assert main(["report", str(run), "--test", shared("suite", "Faces")]) == 0
    assert "did not end" in (run / "report" / "index.html").read_text()


def test_version():
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0


def test_the_bar_says_why_training_ended_before_the_budget(tmp_path):
    """Faces stops on its own long before 900 s: the bar ends where training did, with the learner's reason."""
    import io
    import time

    from tqdm import tqdm

    from autoclint.cli import _train_until_done
    from autoclint.train.config import TrainCfg
    from autoclint.train.session import Session
    from tests.train.test_session import datasets
    train, test = datasets(shared("suite", "Faces"))
    session = Session(40, TrainCfg(first_slice_s=1.0, max_slice_s=2.0, patience=1), train_size=280)
    shown = io.StringIO()
    bar = tqdm(total=900, file=shown, bar_format="{desc}: {n:.0f}/{total:.0f} s{postfix}")
    _train_until_done(session, train, test, None, 900.0, time.monotonic(), bar, [], io.StringIO())
    assert session.done_training and session.stop_reason
    assert f"/900 s, done early: {session.stop_reason}" in shown.getvalue()
