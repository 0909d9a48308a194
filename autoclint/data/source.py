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


def as_autodl_dataset(source: str, test_fraction: float = 0.2, seed: int = 42,
                      progress: Callable[[Iterable, str], Iterable] | None = None) -> str:
    """The AutoDL dataset root for `source`: itself, or its cached conversion (made now if missing)."""
    if not os.path.exists(source):
        raise AutoclintError(f"{source}: no such file or folder.")
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
