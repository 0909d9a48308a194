"""`autoclint search`: the learner as the inner loop of a multi-fidelity configuration search.

Optuna's TPE sampler proposes configurations (backbone, input size, the fine-tune stage on or off, and
when on: lr, weight decay, label smoothing, batch size, augmentation); each trial is the learner with one
of them, its fidelity the seconds it trains. After each of the learner's steps the trial reports the
held-out NAUC of the predictor it would save, and Optuna's Hyperband pruner (successive halving over
brackets: with TPE, the BOHB recipe) stops the weak ones early. The default configuration is the first
trial. Every trial holds out the same examples (the learner's split is seeded), so their scores compare.

Constraints: networks above --max-params are never proposed (their sizes are known before training);
--min-precision is a constraint of the sampler, checked on the held-out data, and when no trial meets it
the most precise one is kept, with one sentence saying so.

Storage: a SQLite file in the run folder, or a database URL (PostgreSQL) that workers on several machines
share. Each worker is a process running one trial at a time with cores / workers torch threads, so a
trial's clock is its own core's. A worker killed mid-trial stops sending heartbeats: after the grace
period its trial is marked failed (and run once more), the others go on.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass

from autoclint.errors import AutoclintError

log = logging.getLogger("autoclint.search")

SEARCH_FILES = frozenset({"search.json", "study.db", "trials.csv", "budgets.md", "best-over-time.png",
                          "incumbent.json", "model", "trials", "logs"})
REDUCTION = 3  # Hyperband's halving rate: a third of the trials of a rung go on to the next, 3x longer
RUNGS = 3  # rungs per bracket: the shortest trial slice is trial_s / 3**(RUNGS - 1)
STARTUP_TRIALS = 5  # random proposals before TPE models the results (Optuna's 10 would take most short searches)
HEARTBEAT_S = 10  # a running trial says it is alive this often ...
GRACE_S = 60  # ... and is taken for dead (its worker killed) after this long without
SAVE_S = 5.0  # a trial stops this long before the search's end, to save its model
TRUNCATED = 0.9  # a trial the search's end left less than this share of --trial-time counts as pruned
MAX_FAILURES = 3  # a worker whose trials fail this many times in a row stops: the cause is not the configuration
MAX_REPEATS = 50  # ... and one proposed only configurations that already ran this many times: the space is spent
SIDES = (32, 48, 64, 96, 128)  # input long sides proposed (TrainCfg.max_side)
BATCHES = (32, 64, 128)
AUGMENTS = ("none", "random", "trivialaugment", "faa")  # crop + flip only / AutoAugment sub-policies drawn /
#   TrivialAugment / the light FAA search (TrainCfg.augment)


@dataclass(frozen=True)
class Job:
    """What a worker needs: picklable, so that a spawned process gets it whole."""
    root: str  # the AutoDL dataset
    storage: str
    study: str
    base: object  # TrainCfg every trial starts from (--config / --set / --seed / --device)
    backbones: tuple[str, ...]  # those within --max-params
    sizes: dict  # backbone -> parameters with this dataset's head
    trial_s: float
    deadline: float  # time.time() at which the search ends
    time_s: float  # the search's length (this run of it)
    min_precision: float
    run_dir: str
    threads: int
    seed: int
    heartbeat_s: int = HEARTBEAT_S
    grace_s: int = GRACE_S


def make_storage(url: str, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S):
    """Optuna's RDB storage with heartbeats; one sentence when the database cannot be reached."""
    import warnings
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental": the interface may change (optuna is pinned)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = RetryHeartbeatStaleTrialCallback(max_retry=1)  # a killed worker's configuration runs again
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat_s,
                                              grace_period=grace_s, heartbeat_stale_trial_callback=retry)
    except Exception as e:  # sqlalchemy's errors (driver missing, refused, bad URL) carry pages of detail
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AutoclintError(f"--storage {shown_url(url)}: cannot be reached ({reason[:200]}).") from None


def shown_url(url: str) -> str:
    """The URL without its password."""
    head, sep, tail = url.partition("://")
    if "@" in tail and ":" in tail.split("@")[0]:
        user = tail.split("@")[0].split(":")[0]
        tail = f"{user}:***@" + tail.split("@", 1)[1]
    return head + sep + tail


def dataset_identity(data_dir: str) -> str:
    """A key of an AutoDL dataset's content (metadata and record sizes): a study is tied to one dataset."""
    digest = hashlib.sha256()
    for subset in ("train", "test"):
        folder = os.path.join(data_dir, subset)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            digest.update(f"{subset}/{name}:{os.path.getsize(path)}".encode())
            if name == "metadata.textproto":
                with open(path, "rb") as f:
                    digest.update(f.read())
    return f"{os.path.basename(data_dir)}:{digest.hexdigest()[:16]}"


# ----------------------------------------------------------------------------- the space

def suggest(trial, backbones: tuple[str, ...]) -> dict:
    """One configuration: the TrainCfg settings the trial changes. Fine-tuning's own settings are asked
    only when the stage is on (a conditional space: TPE does not learn from settings that did nothing)."""
    params = {"backbone": trial.suggest_categorical("backbone", list(backbones)),
              "max_side": trial.suggest_categorical("max_side", list(SIDES)),
              "finetune": trial.suggest_categorical("finetune", [True, False])}
    if params["finetune"]:
        params.update(lr=trial.suggest_float("lr", 3e-4, 3e-2, log=True),
                      weight_decay=trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
                      label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.3),
                      batch_size=trial.suggest_categorical("batch_size", list(BATCHES)),
                      augment=trial.suggest_categorical("augment", list(AUGMENTS)))
    return params


def default_params(base, backbone: str) -> dict:
    """The first trial: the learner as it is (the sampler's ranges hold its defaults)."""
    return {"backbone": backbone, "max_side": base.max_side, "finetune": True, "lr": base.lr,
            "weight_decay": base.weight_decay, "label_smoothing": base.label_smoothing,
            "batch_size": base.batch_size, "augment": base.augment}


def config_for(base, params: dict):
    """The TrainCfg of a trial: `base` with the proposed settings (the side cap may grow past max_side as
    the learner does for small sets of large images, never below it)."""
    return dataclasses.replace(base, **params, largest_side=max(base.largest_side, params["max_side"]))


# ----------------------------------------------------------------------------- one trial

def run_trial(trial, job: Job, opened) -> float:
    """Train the learner with the trial's configuration for up to job.trial_s seconds, reporting the
    held-out NAUC after each step; returns the saved predictor's held-out NAUC."""
    import optuna
    from autoclint.metrics import nauc
    from autoclint.train.session import Session
    params = suggest(trial, job.backbones)
    earlier = _same_configuration(trial)
    if earlier is not None:  # TPE re-proposes small corners of the space (fine-tuning off: 25 of them)
        for key in ("parameters", "precision", "loss", "constraint", "test_nauc"):
            if key in earlier.user_attrs:
                trial.set_user_attr(key, earlier.user_attrs[key])
        trial.set_user_attr("seconds", 0.0)
        trial.set_user_attr("stopped", f"the configuration of trial {earlier.number}: its result, not trained again")
        return earlier.value
    cfg = config_for(job.base, params)
    trial.set_user_attr("parameters", job.sizes[cfg.backbone])
    budget = min(job.trial_s, job.deadline - time.time() - SAVE_S)
    meta = opened.train.get_metadata()
    session = Session(meta.get_output_size(), cfg, train_size=meta.size())
    start = time.monotonic()
    last_step = -1
    prediction = None
    while not session.done_training and time.monotonic() - start < budget:
        session.train(opened.train.get_dataset(), budget - (time.monotonic() - start))
        if opened.test is not None:
            prediction = session.test(opened.test.get_dataset(), budget - (time.monotonic() - start))
        held = session.held_out()
        step = int(time.monotonic() - start)  # the fidelity: seconds trained
        if held is None or step <= last_step:
            continue
        last_step = step
        _record(trial, held, job.min_precision)
        trial.report(held[0], step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"held-out NAUC {held[0]:.4f} at {step} s")
    held = session.held_out()
    if held is None:
        why = session.stop_reason or f"{budget:.0f} s were too few"
        raise AutoclintError(f"no predictor was ranked on held-out data ({why})")
    _record(trial, held, job.min_precision)
    trial.set_user_attr("seconds", round(time.monotonic() - start, 1))
    if budget < TRUNCATED * job.trial_s:  # not a full-fidelity result: it must not rank beside those
        trial.set_user_attr("stopped", f"the search's time ended ({budget:.0f} of {job.trial_s:g} s)")
        raise optuna.TrialPruned(trial.user_attrs["stopped"])
    trial.set_user_attr("stopped", session.stop_reason or "budget")
    if prediction is not None and opened.solution is not None:
        trial.set_user_attr("test_nauc", nauc(opened.solution, prediction))
    if _could_be_incumbent(trial.study, held, job.min_precision):
        _save_trial_model(session, cfg, job, trial.number, opened.class_names)
    return held[0]


def _same_configuration(trial):
    """The earliest completed trial with this trial's configuration (None when it is new)."""
    import optuna
    for t in trial.study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        if t.params == trial.params:
            return t
    return None


def _record(trial, held: tuple[float, float, float], min_precision: float) -> None:
    trial.set_user_attr("precision", held[1])
    trial.set_user_attr("loss", held[2])
    trial.set_user_attr("constraint", min_precision - held[1] if min_precision > 0 else 0.0)


def constraints(trial) -> list[float]:
    """Optuna's constrained TPE: <= 0 is feasible (a trial that reported nothing counts as infeasible)."""
    return [trial.user_attrs.get("constraint", 1.0)]


def rank(value: float, loss: float | None) -> tuple[float, float]:
    """Trials compare by held-out NAUC, then by calibrated loss: on easy sets many reach NAUC 1.0."""
    return value, -(loss if loss is not None else math.inf)


def _could_be_incumbent(study, held: tuple[float, float, float], min_precision: float) -> bool:
    """Only a trial that beats the completed ones by the incumbent rule is saved (the rest would be
    deleted at the end): the best feasible rank, else, while none is feasible, the best precision."""
    import optuna
    done = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    feasible = [rank(t.value, t.user_attrs.get("loss")) for t in done if t.user_attrs.get("constraint", 1.0) <= 0]
    if held[1] >= min_precision:
        return not feasible or rank(held[0], held[2]) > max(feasible)
    return not feasible and held[1] > max([t.user_attrs.get("precision", -1.0) for t in done] + [-1.0])


def _save_trial_model(session, cfg, job: Job, number: int, class_names: list[str]) -> None:
    from autoclint.train.checkpoint import save_trained
    extra = {"config.json": json.dumps(dataclasses.asdict(cfg), indent=1).encode()}
    save_trained(session.export(), os.path.join(job.run_dir, "trials", f"{number:05d}"), class_names, True, extra)


# ----------------------------------------------------------------------------- workers

def make_study(job: Job, storage, worker: int = 0):
    import optuna
    sampler = optuna.samplers.TPESampler(seed=job.seed + worker, n_startup_trials=STARTUP_TRIALS,
                                         constraints_func=constraints if job.min_precision > 0 else None)
    pruner = optuna.pruners.HyperbandPruner(min_resource=max(1, int(job.trial_s / REDUCTION ** (RUNGS - 1))),
                                            max_resource=max(2, int(job.trial_s)), reduction_factor=REDUCTION)
    return optuna.load_study(study_name=job.study, storage=storage, sampler=sampler, pruner=pruner)


def min_trial_s(trial_s: float) -> float:
    """A trial shorter than the first rung says nothing the pruner could use."""
    return trial_s / REDUCTION ** (RUNGS - 1) + SAVE_S


def worker(job: Job, index: int) -> None:
    """One worker process: trials one after another until the search's time is up."""
    import contextlib
    import optuna
    import torch
    torch.set_num_threads(job.threads)
    os.makedirs(os.path.join(job.run_dir, "logs"), exist_ok=True)
    path = os.path.join(job.run_dir, "logs", f"worker-{index}.txt")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    optuna.logging.disable_default_handler()  # the command prints its own line per trial
    for name in ("autoclint", "optuna"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).propagate = False
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(job.threads)
    tf.config.threading.set_inter_op_parallelism_threads(job.threads)
    with open(path, "a", encoding="utf-8") as out, contextlib.redirect_stdout(out):  # packages that print
        work(job, index)


def _objective(trial, job: Job, opened) -> float:
    """run_trial, with the reason of a failure kept in the study (the results name it)."""
    import optuna
    try:
        return run_trial(trial, job, opened)
    except optuna.TrialPruned:
        raise
    except Exception as e:
        trial.set_user_attr("failed", f"{type(e).__name__}: {e}"[:500])
        raise


def work(job: Job, index: int) -> None:
    """Trials one after another until the search's time is up (or MAX_FAILURES in a row)."""
    import optuna
    from autoclint.data.source import open_dataset
    opened = open_dataset(job.root)
    study = make_study(job, make_storage(job.storage, job.heartbeat_s, job.grace_s), index)
    failures = repeats = 0
    ended: list = []
    if index > 0:  # the queued default goes to worker 0: SQLite cannot lock the row, and two workers that popped
        time.sleep(2.0)  # it at the same moment both ran it (CI saw the second one's result refused)
    while job.deadline - time.time() >= min_trial_s(job.trial_s) and failures < MAX_FAILURES and repeats < MAX_REPEATS:
        try:
            study.optimize(lambda trial: _objective(trial, job, opened), n_trials=1, catch=(Exception,),  # FAIL, go on
                           callbacks=[lambda _, trial: ended.append(trial)])
        except ValueError as e:  # Optuna refuses a result for a trial another worker finished meanwhile
            if not str(e).startswith("Cannot tell a"):
                raise
            log.warning("worker %d: its trial was finished by another worker meanwhile (%s); it goes on", index, e)
        last = ended[-1] if ended else None
        failures = failures + 1 if last is not None and last.state == optuna.trial.TrialState.FAIL else 0
        repeats = repeats + 1 if last is not None and last.user_attrs.get("seconds") == 0.0 else 0
    if failures >= MAX_FAILURES:
        log.error("worker %d: %d trials failed in a row; it stops (see this log)", index, failures)
    if repeats >= MAX_REPEATS:
        log.warning("worker %d: the sampler proposed %d configurations in a row that already ran; it stops", index,
                    repeats)


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Incumbent:
    number: int
    value: float
    precision: float
    params: dict
    feasible: bool


def incumbent(trials, min_precision: float) -> Incumbent | None:
    """The best feasible completed trial by rank (held-out NAUC, then loss; the earlier on a tie, as the
    workers save them); when none is feasible, the most precise one."""
    done = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.datetime_complete)
    if not done:
        return None
    feasible = [t for t in done if t.user_attrs.get("precision", -1.0) >= min_precision]
    if feasible:
        best = max(feasible, key=lambda t: rank(t.value, t.user_attrs.get("loss")))  # max keeps the first of ties
    else:
        best = max(done, key=lambda t: t.user_attrs.get("precision", -1.0))
    return Incumbent(best.number, best.value, best.user_attrs.get("precision", math.nan), best.params, bool(feasible))


def rungs(trial_s: float) -> list[int]:
    """The pruner's rungs (seconds trained) and the full fidelity."""
    first = max(1, int(trial_s / REDUCTION ** (RUNGS - 1)))
    return sorted({first * REDUCTION ** k for k in range(RUNGS) if first * REDUCTION ** k < trial_s} | {int(trial_s)})


def budget_table(trials, trial_s: float) -> list[dict]:
    """Per fidelity (seconds trained), like Auto-PyTorch's output: the configurations evaluated there, the
    best and the mean held-out NAUC. A trial counts at a rung it reached, and a completed one at every
    rung (one that stopped early by itself keeps its final value)."""
    rows = []
    for r in rungs(trial_s):
        values = []
        for t in trials:
            reached = {s: v for s, v in t.intermediate_values.items() if s <= r}
            if not reached or not (t.state.name == "COMPLETE" or max(t.intermediate_values) >= r):
                continue
            values.append(reached[max(reached)])
        rows.append({"budget_s": r, "configurations": len(values),
                     "incumbent": max(values) if values else None,
                     "mean": sum(values) / len(values) if values else None})
    return rows


def _score(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def table_markdown(rows: list[dict]) -> str:
    lines = ["| budget (s trained) | configurations | incumbent held-out NAUC | mean |", "|---|---|---|---|"]
    for row in rows:
        fmt = _score
        lines.append(f"| {row['budget_s']} | {row['configurations']} | {fmt(row['incumbent'])} | {fmt(row['mean'])} |")
    return "\n".join(lines) + "\n"


PARAM_COLUMNS = ("backbone", "max_side", "finetune", "lr", "weight_decay", "label_smoothing", "batch_size", "augment")


def trials_csv(trials) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "state", *PARAM_COLUMNS, "parameters", "held_out_nauc", "held_out_precision",
                     "test_nauc", "last_step_s", "seconds", "stopped", "started", "ended"])
    # "stopped": why the learner stopped, or why the trial failed
    for t in trials:
        a = t.user_attrs
        steps = t.intermediate_values
        value = t.value if t.value is not None else (steps[max(steps)] if steps else None)
        writer.writerow([t.number, t.state.name.lower(), *[t.params.get(k, "") for k in PARAM_COLUMNS],
                         a.get("parameters", ""), _fmt(value), _fmt(a.get("precision")), _fmt(a.get("test_nauc")),
                         max(steps) if steps else "", a.get("seconds", ""),
                         a.get("stopped", "") or a.get("failed", ""),
                         t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else "",
                         t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else ""])
    return out.getvalue()


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4f}"


def best_over_time(trials) -> list[tuple[float, float]]:
    """(seconds since the search started, best completed held-out NAUC so far) at each completion."""
    started = [t.datetime_start for t in trials if t.datetime_start]
    done = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.datetime_complete)
    if not started or not done:
        return []
    origin, best, points = min(started), -math.inf, []
    for t in done:
        best = max(best, t.value)
        points.append(((t.datetime_complete - origin).total_seconds(), best))
    return points


def finish(job: Job, study, settings_path: str) -> Incumbent | None:
    """Write the run folder's results; the incumbent's model becomes RUN/model."""
    from autoclint.report import search_png
    trials = study.get_trials(deepcopy=False)
    run_dir = job.run_dir
    with open(os.path.join(run_dir, "trials.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(trials_csv(trials))
    table = budget_table(trials, job.trial_s)
    with open(os.path.join(run_dir, "budgets.md"), "w", encoding="utf-8") as f:
        f.write(table_markdown(table))
    with open(os.path.join(run_dir, "best-over-time.png"), "wb") as f:
        f.write(search_png(best_over_time(trials), job.time_s))
    best = incumbent(trials, job.min_precision)
    with open(settings_path, encoding="utf-8") as f:
        settings = json.load(f)
    if best is not None:
        cfg = config_for(job.base, best.params)
        with open(os.path.join(run_dir, "incumbent.json"), "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(cfg), f, indent=1)
        saved = os.path.join(run_dir, "trials", f"{best.number:05d}")
        if os.path.isdir(saved):
            from autoclint.files import replace_folder
            replace_folder(saved, os.path.join(run_dir, "model"))
            settings["incumbent_trial"] = best.number
        elif settings.get("incumbent_trial") != best.number:  # model/ would be an earlier incumbent's
            shutil.rmtree(os.path.join(run_dir, "model"), ignore_errors=True)
            settings.pop("incumbent_trial", None)
            log.warning("the incumbent, trial %d, ran in another run folder sharing the study (or its model could "
                        "not be saved): no model/ here; `autoclint train --config %s` trains it", best.number,
                        os.path.join(run_dir, "incumbent.json"))
    shutil.rmtree(os.path.join(run_dir, "trials"), ignore_errors=True)
    with open(settings_path, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1)
    return best


# ----------------------------------------------------------------------------- the command

@dataclass(frozen=True)
class Request:
    """`autoclint search`'s arguments, checked."""
    data: str
    run_dir: str
    time_s: float
    trial_s: float
    base: object  # TrainCfg
    max_params: int | None
    min_precision: float
    storage: str  # empty: SQLite in the run folder
    study: str  # empty: the run folder's name
    workers: int
    resume: bool
    test_size: float
    only_backbone: str = ""  # --backbone: the search keeps the network fixed


def run(req: Request, progress=None) -> Incumbent | None:
    """The search: study set up (or resumed), workers started, their trials followed, results written."""
    import optuna
    from autoclint.data.source import as_autodl_dataset, open_dataset
    from autoclint.nets.registry import model_info
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings_path = os.path.join(req.run_dir, "search.json")
    previous = _previous(settings_path) if req.resume else None
    root = as_autodl_dataset(req.data, req.test_size, **({"progress": progress} if progress else {}))
    opened = open_dataset(root)
    identity = dataset_identity(opened.data_dir)
    if previous is not None and previous["dataset_identity"] != identity:
        raise AutoclintError(f"{req.run_dir}: its search was made on {previous['dataset_identity']}, not on "
                             f"{req.data} ({identity}); resume it on that dataset or start a new run folder.")
    num_classes = opened.train.get_metadata().get_output_size()
    infos = model_info(levels=req.base.feature_levels)  # builds every network: once; no trial changes the levels
    sizes = {i.name: i.backbone_params + i.num_features * num_classes + num_classes for i in infos}
    pretrained = {i.name for i in infos if i.pretrained}
    if req.only_backbone and req.only_backbone not in sizes:
        raise AutoclintError(f"--backbone={req.only_backbone}: unknown; known: {', '.join(sorted(sizes))}.")
    backbones = tuple(sorted((n for n in sizes if (req.max_params is None or sizes[n] <= req.max_params)
                              and req.only_backbone in ("", n)), key=lambda n: (n not in pretrained, n)))
    if not backbones:
        smallest = min(sizes, key=sizes.get)
        raise AutoclintError(f"--max-params={req.max_params}: every network is larger; the smallest, {smallest}, "
                             f"has {sizes[smallest]:,} parameters with a {num_classes}-class head.")
    url = req.storage or (previous or {}).get("storage", "")
    if "***" in url:
        raise AutoclintError(f"{req.run_dir}: its search uses {url}; pass --storage with the password again "
                             f"(search.json does not keep it).")
    storage_url = url or f"sqlite:///{os.path.join(req.run_dir, 'study.db')}"
    study_name = (previous or {}).get("study") or req.study or os.path.basename(req.run_dir.rstrip("/"))
    trial_s = (previous or {}).get("trial_s") or req.trial_s
    if url:  # a database of the user's: checked before anything is written
        storage = make_storage(storage_url)
        os.makedirs(req.run_dir, exist_ok=True)
    else:
        os.makedirs(req.run_dir, exist_ok=True)
        storage = make_storage(storage_url)
    try:  # the database's unique study name makes exactly one command the creator, however many start at once
        study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = optuna.load_study(study_name=study_name, storage=storage), False
    made_on = study.user_attrs.get("dataset_identity")
    if made_on is not None and made_on != identity:
        raise AutoclintError(f"study {study_name!r} in {shown_url(storage_url)} was made on {made_on}, not on "
                             f"{req.data} ({identity}); name another study with --study.")
    if made_on is None:
        study.set_user_attr("dataset_identity", identity)
        study.set_user_attr("trial_s", trial_s)
    trial_s = study.user_attrs.get("trial_s", trial_s)  # workers joining a study keep its fidelities
    if req.resume and not url:
        _fail_interrupted(study, storage)
    # The default configuration first, queued once: by the command that created the study (two commands
    # starting at once on one PostgreSQL study both saw no trials and, skip_if_exists being a read then a
    # write, both queued it), or by a resumed run folder whose own study.db holds no trial yet.
    if created or (not url and not study.trials):
        study.enqueue_trial(default_params(req.base, backbones[0]), skip_if_exists=True)
    settings = {**(previous or {}), "data": os.path.abspath(req.data), "dataset": os.path.dirname(opened.data_dir),
                "dataset_identity": identity, "storage": shown_url(url),  # "": the run folder's study.db
                "study": study_name, "trial_s": trial_s, "max_params": req.max_params,
                "min_precision": req.min_precision, "workers": req.workers}
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    settings["runs"] = settings.get("runs", []) + [{"time_s": req.time_s, "started": started}]
    with open(settings_path, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1)
    cores = os.cpu_count() or 1
    job = Job(root, storage_url, study_name, req.base, backbones, sizes, trial_s,
              time.time() + req.time_s, req.time_s, req.min_precision, req.run_dir,
              max(1, cores // req.workers), req.base.seed)
    if req.workers > cores:
        log.warning("%d workers on %d cores: trials share cores, so their clocks run slow", req.workers, cores)
    _run_workers(job, req.workers, study)
    return finish(job, study, settings_path)


def _previous(settings_path: str) -> dict:
    if not os.path.isfile(settings_path):
        raise AutoclintError(f"{os.path.dirname(settings_path)}: holds no search to resume (no search.json).")
    try:
        with open(settings_path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AutoclintError(f"{settings_path}: cannot be read ({e}).") from None


def _fail_interrupted(study, storage) -> None:
    """Trials left running by a killed search of this run folder: failed, and their configurations queued
    again (only this folder's workers use its study.db, and none runs now)."""
    import optuna
    for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING]):
        storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
        log.warning("trial %d was running when the search stopped: marked failed, its configuration queued again",
                    t.number)


def _run_workers(job: Job, workers: int, study) -> None:
    """Workers as spawned processes; this process follows their trials (a line or a bar) until they end."""
    import multiprocessing
    import sys
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no torch / TensorFlow state is forked
    procs = [ctx.Process(target=worker, args=(job, k), name=f"autoclint-search-{k}") for k in range(workers)]
    for p in procs:
        p.start()
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=round(job.time_s), unit="s", desc="search",
                   bar_format="{desc}: {bar} {n:.0f}/{total:.0f} s{postfix}")
    seen: set[int] = set()
    started = time.time()
    try:
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=2.0 / workers)
            if time.time() > job.deadline + job.grace_s + 60:  # a worker that does not stop is ended
                log.warning("workers still running %d s after the search's end: stopping them", job.grace_s + 60)
                for p in procs:
                    p.terminate()
            _show(study, seen, bar, started, job)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        print("interrupted: the trials that ended are kept; --resume continues", file=sys.stderr)
    finally:
        for p in procs:
            p.join()
        _show(study, seen, bar, started, job)
        if bar is not None:
            bar.close()


def _show(study, seen: set[int], bar, started: float, job: Job) -> None:
    """A line per trial that ended since the last look; the bar's counts."""
    trials = study.get_trials(deepcopy=False)
    ended = [t for t in trials if t.state.is_finished() and t.number not in seen]
    for t in ended:
        seen.add(t.number)
        steps = t.intermediate_values
        value = t.value if t.value is not None else (steps[max(steps)] if steps else None)
        shown = "" if value is None else f" held-out NAUC {value:.4f}"
        at = f" at {max(steps)} s" if steps and t.state.name == "PRUNED" else ""
        if t.state.name == "FAIL":
            shown = f" {t.user_attrs.get('failed', 'see logs/')[:300]}"
        params = ", ".join(f"{k}={_short(v)}" for k, v in t.params.items())
        line = f"trial {t.number} {t.state.name.lower()}{at}:{shown} ({params})"
        print(line, flush=True) if bar is None else bar.write(line)
    if bar is not None:
        states = [t.state.name for t in trials]
        done = [t.value for t in trials if t.state.name == "COMPLETE"]
        best = f", best {max(done):.4f}" if done else ""
        bar.set_postfix_str(f"{states.count('COMPLETE')} done, {states.count('PRUNED')} pruned, "
                            f"{states.count('RUNNING')} running{best}")
        bar.update(min(job.time_s, time.time() - started) - bar.n)


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
