"""`autoclint search` on real data: the study, its workers, its results, resuming, and bad input."""
import csv
import json
import multiprocessing
import os
import re
import signal
import time

import pytest

from autoclint import cli
from autoclint import search as search_mod
from tests.conftest import shared


def run_cli(*args) -> int:
    return cli.main(["search", *map(str, args)])


def rows(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "trials.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- bad input (no training)

def test_time_zero_is_one_sentence_and_writes_nothing(tmp_path, capsys):
    assert run_cli(shared("suite", "Faces"), "--time", 0, "--out", tmp_path / "run") == 2
    assert capsys.readouterr().err.strip() == "autoclint: error: --time=0: must be positive."
    assert not (tmp_path / "run").exists()


def test_an_unreachable_database_is_one_sentence_without_its_password(tmp_path, capsys):
    url = "postgresql://someone:secret@127.0.0.1:9/nowhere"  # port 9 (discard): nothing listens
    assert run_cli(shared("suite", "Faces"), "--time", 30, "--storage", url, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "--storage postgresql://someone:***@127.0.0.1:9/nowhere: cannot be reached" in err
    assert "secret" not in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing started


def test_max_params_below_every_network(tmp_path, capsys):
    assert run_cli(shared("suite", "Faces"), "--time", 30, "--max-params", 1000, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "--max-params=1000: every network is larger; the smallest" in err and "40-class head" in err


def test_a_folder_of_other_files_or_an_earlier_search_is_not_replaced(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert run_cli(shared("suite", "Faces"), "--time", 30, "--out", mine) == 2
    assert "holds files this command did not write (notes.txt)" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "search.json").write_text("{}")
    assert run_cli(shared("suite", "Faces"), "--time", 30, "--out", earlier) == 2
    assert "holds an earlier search; pass --resume" in capsys.readouterr().err
    assert run_cli(shared("suite", "Faces"), "--time", 30, "--resume", "--out", tmp_path / "none") == 2
    assert "holds no search to resume" in capsys.readouterr().err


def test_a_study_made_on_another_dataset_is_refused(tmp_path, capsys):
    """On resume (the run folder's record) and when joining a shared study (the study's own record)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "search.json").write_text(json.dumps({"dataset_identity": "Kth.data:0123456789abcdef"}))
    assert run_cli(shared("suite", "Faces"), "--time", 30, "--resume", "--out", run_dir) == 2
    assert "its search was made on Kth.data:0123456789abcdef, not on" in capsys.readouterr().err
    import optuna
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(study_name="faces", storage=url)
    study.set_user_attr("dataset_identity", "Kth.data:0123456789abcdef")
    assert run_cli(shared("suite", "Faces"), "--time", 30, "--storage", url, "--study", "faces",
                   "--out", tmp_path / "joined") == 2
    assert "study 'faces' in sqlite" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real searches

@pytest.mark.slow
def test_two_workers_share_one_study_and_the_results_are_usable(tmp_path, capsys):
    """Faces, 2 workers, 45 s of 20-s trials: the default first, both workers' trials interleaved and none
    lost, the results files, and an incumbent that `train --config` and `predict` take; then --resume."""
    run_dir = tmp_path / "run"
    assert run_cli(shared("suite", "Faces"), "--time", 45, "--trial-time", 20, "--workers", 2, "--out", run_dir) == 0
    out = capsys.readouterr().out
    assert "| budget (s trained) | configurations |" in out and "incumbent: trial " in out
    trials = rows(run_dir)
    assert [int(t["trial"]) for t in trials] == list(range(len(trials))) and len(trials) >= 4
    assert all(t["state"] in ("complete", "pruned") for t in trials), [t["state"] for t in trials]
    first = trials[0]  # the learner's defaults
    assert (first["backbone"], first["max_side"], first["finetune"], float(first["lr"])) == \
        ("efficientnet_lite0", "64", "True", 0.003)
    logs = [(run_dir / "logs" / f"worker-{k}.txt").read_text() for k in (0, 1)]
    # both workers ran trials (Optuna logs "Trial N finished ..." or, when the pruner or the search's end cut
    # it, "Trial N pruned."; CI once saw worker 1, which starts 2 s late, with pruned trials only) ...
    assert all(re.search(r"Trial \d+ (finished|pruned)", log) for log in logs), logs
    spans = sorted((t["started"], t["ended"]) for t in trials)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # ... at the same time
    assert "| 20 |" in (run_dir / "budgets.md").read_text()
    assert (run_dir / "best-over-time.png").read_bytes()[:4] == b"\x89PNG"
    assert not (run_dir / "trials").exists()  # only the incumbent's model is kept
    from autoclint.train.config import TrainCfg, settings_from_file, with_overrides
    cfg = with_overrides(TrainCfg(), settings_from_file(str(run_dir / "incumbent.json")))
    number = int(out.split("incumbent: trial ")[1].split(",")[0])
    chosen = trials[number]
    assert (cfg.backbone, str(cfg.max_side), str(cfg.finetune)) == (chosen["backbone"], chosen["max_side"],
                                                                    chosen["finetune"])
    assert cli.main(["predict", str(run_dir / "model"), shared("suite", "Faces"), "--out",
                     str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 121  # header + 120 test images
    # --resume: more trials in the same study, the record of both runs kept
    assert run_cli(shared("suite", "Faces"), "--time", 20, "--resume", "--out", run_dir) == 0
    again = rows(run_dir)
    assert len(again) > len(trials) and again[:len(trials)] == trials
    assert len(json.loads((run_dir / "search.json").read_text())["runs"]) == 2


def small_job(run_dir, url: str, trial_s: float, time_s: float, backbone: str = "efficientnet_lite0",
              **kw) -> search_mod.Job:
    from autoclint.train.config import TrainCfg
    return search_mod.Job(shared("suite", "Faces"), url, "s", TrainCfg(), (backbone,), {backbone: 3_422_248},
                          trial_s, time.time() + time_s, time_s, 0.0, str(run_dir), 1, 0, **kw)


@pytest.mark.slow
def test_a_configuration_that_already_ran_is_not_trained_again(tmp_path):
    import optuna
    from autoclint.data.source import open_dataset
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}", direction="maximize")
    for _ in range(2):
        study.enqueue_trial({"backbone": "small_cnn", "max_side": 32, "finetune": False})
    opened = open_dataset(shared("suite", "Faces"))
    job = small_job(tmp_path, "", 8, 120, backbone="small_cnn")
    study.optimize(lambda trial: search_mod.run_trial(trial, job, opened), n_trials=2)
    first, second = study.get_trials()
    assert first.user_attrs["seconds"] > 0 and second.user_attrs["seconds"] == 0.0
    assert second.value == first.value and "the configuration of trial 0" in second.user_attrs["stopped"]


@pytest.mark.slow
def test_a_trial_that_raises_is_recorded_as_failed_and_the_search_goes_on(tmp_path, monkeypatch):
    import optuna
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=url, direction="maximize")
    calls = []
    real = search_mod.run_trial

    def first_raises(trial, job, opened):
        calls.append(trial.number)
        if len(calls) == 1:
            raise RuntimeError("out of memory in the first trial")
        return real(trial, job, opened)
    monkeypatch.setattr(search_mod, "run_trial", first_raises)
    search_mod.work(small_job(tmp_path, url, 8, 20), 0)
    trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert trials[0].state.name == "FAIL" and "out of memory" in trials[0].user_attrs["failed"]
    assert len(trials) >= 2 and any(t.state.name == "COMPLETE" for t in trials[1:])


def _worker_process(job):
    search_mod.worker(job, 7)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_the_study_consistent(tmp_path):
    """Its trial stops sending heartbeats: the next worker marks it failed, runs its configuration again,
    and goes on."""
    import optuna
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=url, direction="maximize")
    job = small_job(tmp_path, url, 30, 60, heartbeat_s=1, grace_s=3)
    proc = multiprocessing.get_context("spawn").Process(target=_worker_process, args=(job,))
    proc.start()
    study = optuna.load_study(study_name="s", storage=url)
    deadline = time.time() + 60
    while time.time() < deadline and not any(t.intermediate_values for t in study.get_trials()):
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)  # mid-trial: it has reported, it has not ended
    proc.join()
    killed = study.get_trials()[0]
    assert killed.state.name == "RUNNING"
    time.sleep(4)  # past the grace period
    search_mod.work(small_job(tmp_path, url, 8, 15, heartbeat_s=1, grace_s=3), 0)
    trials = study.get_trials()
    assert trials[0].state.name == "FAIL"
    retried = [t for t in trials[1:] if t.system_attrs.get("failed_trial") == 0]
    assert retried and retried[0].params == killed.params
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials[1:])


POSTGRES_ENV = "AUTOCLINT_TEST_POSTGRES"  # set by .ci/run from scripts/ensure_postgres.sh


@pytest.mark.slow
def test_two_commands_share_one_study_in_postgresql(tmp_path):
    """As two machines would: two `autoclint search` processes, one worker each, one study in a PostgreSQL
    database; their trials interleave, none is lost, each run folder holds the whole study's results."""
    import subprocess
    import sys
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.fail(f"{POSTGRES_ENV} is not set: run `export {POSTGRES_ENV}=$(scripts/ensure_postgres.sh)` first")
    import optuna
    study_name = f"faces-{os.getpid()}-{int(time.time())}"
    command = [sys.executable, "-m", "autoclint", "search", shared("suite", "Faces"), "--time", "30",
               "--trial-time", "12", "--storage", url, "--study", study_name]
    procs = [subprocess.Popen(command + ["--out", str(tmp_path / f"machine-{k}")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    try:
        trials = optuna.load_study(study_name=study_name, storage=url).get_trials()
        assert [t.number for t in trials] == list(range(len(trials))) and len(trials) >= 4
        assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
        defaults = [t for t in trials if t.params.get("lr") == 0.003 and t.params.get("max_side") == 64]
        assert len(defaults) == 1  # the default configuration ran once, not once per machine
        spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
        assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # the two machines' trials overlapped
        assert max(len(rows(tmp_path / f"machine-{k}")) for k in (0, 1)) == len(trials)  # the last to end sees all
        assert "***" in (tmp_path / "machine-0" / "search.json").read_text()  # the password is not kept
    finally:
        optuna.delete_study(study_name=study_name, storage=url)
