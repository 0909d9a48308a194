"""`autoclint train` then `autoclint predict`, on a real dataset and on raw files; bad arguments get one sentence."""
import csv
import os

import pytest

from autoclint.cli import main
from tests.conftest import shared


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cli") / "faces-model")
    assert main(["train", shared("suite", "Faces"), "--budget", "12", "--save", folder]) == 0
    return folder


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
    assert main(["train", shared("suite", "Faces"), "--budget", "3", "--save", str(earlier)]) == 0
    assert (earlier / "model.json").is_file()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "old.txt").write_text("x")
    assert main(["train", shared("suite", "Faces"), "--budget", "3", "--save", str(theirs), "--overwrite"]) == 0
    assert sorted(os.listdir(theirs)) in (["model.json", "ridge.npz"], ["model.json", "weights.pt"],
                                          ["model.json", "ridge.npz", "weights.pt"])


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


def test_version():
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
