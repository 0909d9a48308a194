"""Writing folders so that a reader never sees half of one."""
from __future__ import annotations

import os
import shutil

from autoclint.errors import AutoclintError

MODEL_FILES = frozenset({"model.json", "weights.pt", "ridge.npz"})  # what `predict` needs of a saved model
# A run folder (`train --out`) is a saved model plus the record of its training, and the report made from it.
RUN_FILES = MODEL_FILES | {"metrics.json", "config.json", "log.txt", "curve.png", "report"}
REPORT_FILES = frozenset({"index.html", "curve.png", "confusion.png", "per-class.png", "worst.png", "metrics.json"})


def check_destination(folder: str, own_files: frozenset[str], marker: str, overwrite: bool, flag: str) -> None:
    """Refuse to write `folder` when it holds anything but an earlier output of the same command.

    An earlier output is recognised by `marker` (a file it always holds) and holds only `own_files`;
    anything else there belongs to the user and is replaced only with `flag` (`--overwrite`).
    """
    if not os.path.lexists(folder):
        return
    if not os.path.isdir(folder) or os.path.islink(folder):
        raise AutoclintError(f"{folder}: exists and is not a folder; choose another destination.")
    entries = set(os.listdir(folder))
    if overwrite or not entries or (marker in entries and entries <= own_files):
        return
    foreign = sorted(entries - own_files) or sorted(entries)
    shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    raise AutoclintError(f"{folder}: holds files this command did not write ({shown}); choose an empty or new "
                         f"folder, or pass {flag} to replace it.")


def check_model_destination(folder: str, overwrite: bool = False) -> None:
    """Refuse a destination holding files that are not an earlier run folder or saved model (unless
    overwrite); here, not in train.checkpoint, so that a command checks it before importing torch."""
    check_destination(os.path.abspath(folder), RUN_FILES, "model.json", overwrite, "--overwrite")


def replace_folder(complete: str, final: str) -> None:
    """Put the fully written folder `complete` at `final`, replacing what was there (same filesystem)."""
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(complete, final)
