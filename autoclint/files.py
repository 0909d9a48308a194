"""Writing folders so that a reader never sees half of one."""
from __future__ import annotations

import os
import shutil


def replace_folder(complete: str, final: str) -> None:
    """Put the fully written folder `complete` at `final`, replacing what was there (same filesystem)."""
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(complete, final)
