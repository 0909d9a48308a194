"""Where the parts of an AutoDL dataset live (protocol section 2) and the files ingestion writes."""
from __future__ import annotations

import glob
import os

from autoclint.errors import AutoclintError


def task_name(path: str) -> str:
    """`.../miniciao.data` or `.../miniciao.solution` -> `miniciao` (up to the first dot)."""
    return os.path.basename(os.path.normpath(path)).split(".")[0]


def _find_one(folder: str, pattern: str, what: str) -> str:
    found = sorted(glob.glob(os.path.join(folder, pattern)))
    if len(found) != 1:
        count = "no" if not found else f"{len(found)} ({', '.join(os.path.basename(f) for f in found)})"
        raise AutoclintError(f"{folder}: expected exactly one {pattern} {what}, found {count}.")
    return found[0]


def find_data_dir(dataset_dir: str) -> str:
    """The single `*.data` folder of a dataset root."""
    return _find_one(dataset_dir, "*.data", "folder")


def find_solution(solution_dir: str) -> str:
    """The single `*.solution` file of a dataset root."""
    return _find_one(solution_dir, "*.solution", "file")


def check_names_match(data_dir: str, solution_path: str) -> None:
    """Ingestion names predictions after the `.data` stem, scoring globs the `.solution` stem."""
    if task_name(data_dir) != task_name(solution_path):
        raise AutoclintError(
            f"{solution_path}: its name '{task_name(solution_path)}' differs from the data folder "
            f"'{os.path.basename(data_dir)}'; rename one so both start with the same name.")


def float_list(text: str) -> list[float]:
    """A list value of scores.txt, e.g. `[0.5, 0.75]`, as floats."""
    return [float(v) for v in text.strip().strip("[]").split(",") if v.strip()]


def read_key_values(path: str) -> dict[str, str]:
    """`key: value` lines as written in start.txt and end.txt (a YAML subset)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if ":" in line:
                key, value = line.split(":", 1)
                out[key.strip()] = value.strip()
    return out
