"""What a user points a command at: an AutoDL dataset, or anything `autoclint convert` reads.

Raw sources (class folders, a `path,labels` CSV, numpy arrays) are converted once into a cache folder
whose name carries a key of the source's files (paths, sizes, modification times) and of the conversion
settings: a second run on the same folder reuses it, a changed folder is converted again.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from autoclint.data import convert
from autoclint.errors import AutoclintError

log = logging.getLogger("autoclint")

CACHE_ENV = "AUTOCLINT_CACHE_DIR"  # where converted sources are kept (default ~/.cache/autoclint/datasets)


def cache_root() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "autoclint", "datasets")


def is_autodl_dataset(path: str) -> bool:
    """A `<name>.data` folder, or a folder holding one."""
    path = path.rstrip("/")
    if not os.path.isdir(path):
        return False
    return path.endswith(".data") or any(n.endswith(".data") and os.path.isdir(os.path.join(path, n))
                                         for n in os.listdir(path))


def collect(source: str, y_path: str | None = None, class_names: list[str] | None = None) -> convert.Collected:
    """The examples of a raw source, chosen by what it is (see `autoclint convert --help`)."""
    source = source.rstrip("/")
    if source.endswith(".csv"):
        return convert.collect_csv(source)
    if source.endswith((".npz", ".npy")):
        x, y = convert.load_arrays(source, y_path)
        return convert.collect_arrays(x, y, class_names, origin=source)
    if os.path.isfile(source):
        raise AutoclintError(f"{source}: not a dataset this tool reads (a folder of class folders, a .csv, "
                             f".npz or .npy, or an AutoDL dataset).")
    return convert.collect_folder(source)


def default_name(source: str) -> str:
    """A CSV is named after its folder (`pokemon/labels.csv` -> pokemon), other sources after themselves."""
    source = source.rstrip("/")
    stem_of = os.path.dirname(os.path.abspath(source)) if source.endswith(".csv") else source
    name = os.path.splitext(os.path.basename(stem_of))[0]
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "dataset"


def source_key(source: str, settings: Iterable) -> str:
    """A digest of every file under the source (relative path, size, modification time) and the settings."""
    source = os.path.abspath(source.rstrip("/"))
    root = os.path.dirname(source) if os.path.isfile(source) else source
    digest = hashlib.sha1(repr(tuple(settings)).encode())
    digest.update(os.path.basename(source).encode())
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            digest.update(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def _check_exists(source: str) -> None:
    if not os.path.exists(source):
        raise AutoclintError(f"{source}: no such file or folder.")


def as_autodl_dataset(source: str, test_fraction: float = 0.2, seed: int = 42,
                      progress: Callable[[Iterable, str], Iterable] | None = None) -> str:
    """The AutoDL dataset root for `source`: itself, or its cached conversion (made now if missing)."""
    _check_exists(source)
    if is_autodl_dataset(source):
        return source
    collected = collect(source)  # checks the source before any key or cache work
    name = default_name(source)
    key = source_key(source, (test_fraction, seed))
    root = os.path.join(cache_root(), f"{name}-{key}")
    if os.path.isdir(root):
        log.info("%s: reusing its conversion in %s (the files are unchanged)", source, root)
        return root
    kw = {"progress": progress} if progress is not None else {}
    root = convert.write_dataset(collected, cache_root(), f"{name}-{key}", test_fraction, seed, **kw)
    log.info("%s: converted into %s (%d examples, %d classes; reused while the files are unchanged)", source,
             root, len(collected.examples), len(collected.class_names))
    return root


def fold_datasets(source: str, folds: int, seed: int = 42,
                  progress: Callable[[Iterable, str], Iterable] | None = None) -> list[str]:
    """Stratified k-fold (by first class) of a raw source: `folds` AutoDL dataset roots in the cache, fold k
    the test set of the k-th; each converted once, reused while the files are unchanged.

    A class with fewer examples than folds is refused: some folds could not test it."""
    import dataclasses

    import numpy as np
    from sklearn.model_selection import StratifiedKFold
    _check_exists(source)
    if is_autodl_dataset(source):
        raise AutoclintError(f"{source}: cross-validation takes the raw files (a folder of class folders, a CSV or "
                             f"arrays), from which it makes its own folds; an AutoDL dataset is split already.")
    if folds < 2:
        raise AutoclintError(f"--folds={folds}: needs 2 or more.")
    collected = collect(source)
    first = np.array([e.labels[0] for e in collected.examples])
    counts = np.bincount(first, minlength=len(collected.class_names))
    smallest = int(np.argmin(counts))
    if counts[smallest] < folds:
        raise AutoclintError(f"--folds={folds}: class {collected.class_names[smallest]!r} has {counts[smallest]} "
                             f"example(s), fewer than the folds, so some folds could not test it; use --folds "
                             f"{max(2, int(counts[smallest]))} or fewer" + (", or give it more examples." if counts[smallest] >= 2
                                                                           else " after giving it more examples."))
    name, key = default_name(source), source_key(source, ("folds", folds, seed))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    roots = []
    for k, (_, test_idx) in enumerate(splitter.split(first, first)):
        root = os.path.join(cache_root(), f"{name}-{key}-fold{k + 1}")
        if not os.path.isdir(root):
            in_test = set(test_idx.tolist())
            examples = [dataclasses.replace(e, subset="test" if i in in_test else "train")
                        for i, e in enumerate(collected.examples)]
            kw = {"progress": progress} if progress is not None else {}
            convert.write_dataset(dataclasses.replace(collected, examples=examples), cache_root(),
                                  f"{name}-{key}-fold{k + 1}", seed=seed, **kw)
        roots.append(root)
    log.info("%s: %d folds in %s (reused while the files are unchanged)", source, folds, cache_root())
    return roots


def data_dir_of(path: str) -> str:
    """The `<name>.data` folder of an AutoDL dataset given by its root or by itself."""
    from autoclint.harness.layout import find_data_dir
    path = os.path.abspath(path.rstrip("/"))
    if not os.path.isdir(path):
        raise AutoclintError(f"{path}: no such dataset folder.")
    return path if path.endswith(".data") else find_data_dir(path)


def solution_path_of(data_dir: str) -> str:
    """`<name>.solution` beside an AutoDL dataset's `<name>.data` folder (it may be missing)."""
    from autoclint.harness.layout import task_name
    return os.path.join(os.path.dirname(data_dir), f"{task_name(data_dir)}.solution")


@dataclass(frozen=True)
class OpenedDataset:
    data_dir: str
    train: object  # AutoDLDataset
    test: object | None  # AutoDLDataset, when the dataset has a test/ part
    solution: np.ndarray | None  # the test labels, when `<name>.solution` is there
    class_names: list[str]


def open_dataset(root: str) -> OpenedDataset:
    """An AutoDL dataset's parts, their records checked first (a bad one is one sentence naming it)."""
    from autoclint.data.dataset import AutoDLDataset, check_records
    from autoclint.harness.scoring import read_solution
    data_dir = data_dir_of(root)
    check_records(os.path.join(data_dir, "train"))
    train = AutoDLDataset(os.path.join(data_dir, "train"))
    test = None
    if os.path.isdir(os.path.join(data_dir, "test")):
        check_records(os.path.join(data_dir, "test"))
        test = AutoDLDataset(os.path.join(data_dir, "test"))
    solution_path = solution_path_of(data_dir)
    solution = read_solution(solution_path) if test is not None and os.path.isfile(solution_path) else None
    return OpenedDataset(data_dir, train, test, solution, class_names_of(data_dir, train))


def class_names_of(data_dir: str, dataset) -> list[str]:
    """`<name>_label.name` beside the .data folder when present, else the metadata's label map."""
    from autoclint.harness.layout import task_name
    path = os.path.join(os.path.dirname(data_dir), f"{task_name(data_dir)}_label.name")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == dataset.get_metadata().get_output_size():
            return names
    return dataset.get_class_labels()
