import os
import shutil

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("AUTOCLINT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))


def shared(*parts: str) -> str:
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"real data not found at {path} (set AUTOCLINT_SHARED_DATA to the shared/data folder)")
    return path


def copy_dataset(src: str, dst_root) -> str:
    """A writable copy of a dataset root, for tests that damage it."""
    dst = os.path.join(str(dst_root), os.path.basename(src))
    shutil.copytree(src, dst)
    for dirpath, _, files in os.walk(dst):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return dst
