"""The dataset formatter: users' images, videos, arrays or CSV files -> an AutoDL dataset.

Output (as the official formatter, protocol section 8):
    OUT/<Name>/<Name>.data/{train,test}/{metadata.textproto, sample-<Name>-{train,test}.tfrecord}
    OUT/<Name>/<Name>.solution, OUT/<Name>/<Name>_label.name
Images keep their original bytes when TensorFlow decodes them to the same pixels (JPEG/PNG/BMP, grey
or RGB, no EXIF rotation); anything else is stored as lossless PNG. Video frames are JPEG, as official.
Differences from the official formatter, on purpose: row_count/col_count are not swapped, the split is
stratified, output_dim is the number of classes named (not those seen), and the work is written to a
temporary folder that replaces the output only when complete.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from autoclint.errors import AutoclintError
from autoclint.files import replace_folder

log = logging.getLogger("autoclint")

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".gif", ".webp"}
VIDEO_EXTENSIONS = {".avi", ".mp4", ".mov", ".mkv", ".webm"}
KEEP_BYTES_FORMATS = {"JPEG", "PNG", "BMP"}  # stored as they are; tf.io.decode_image reads them back (JPEG:
#   within a few levels of PIL's decode, which is why `predict` decodes such files with TensorFlow too)
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "train", "valid": "train", "val": "train",
               "test": "test", "testing": "test"}
VIDEO_GREY_TOLERANCE = 12  # XVID-coded grey KTH clips carry a constant 5-7 step colour cast (measured)
VIDEO_JPEG_QUALITY = 95  # per-frame JPEG as official; at 90 KTH frames drifted 2.03/255 on average, measured

Progress = Callable[[Iterable, str], Iterable]


def _no_progress(iterable: Iterable, desc: str) -> Iterable:
    return iterable


@dataclass
class Example:
    """One example before encoding: where it comes from and its class indices."""
    source: object  # a file path, a frame-folder path, or an array
    labels: list[int]
    subset: str | None = None  # 'train' / 'test' when the input fixes the split


@dataclass
class Collected:
    kind: str  # 'image', 'video' or 'array'
    examples: list[Example]
    class_names: list[str]
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- collecting inputs

def _media_kind(path: str) -> str | None:
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def _class_folder_examples(class_dir: str, label: int, subset: str | None) -> tuple[list[Example], set[str]]:
    """Image files, video files, or sub-folders of frames (one clip each) inside one class folder."""
    examples, kinds = [], set()
    for name in sorted(os.listdir(class_dir)):
        path = os.path.join(class_dir, name)
        if os.path.isdir(path):
            frames = [f for f in sorted(os.listdir(path)) if _media_kind(f) == "image"]
            if frames:
                examples.append(Example(path, [label], subset))
                kinds.add("video")
        elif (kind := _media_kind(path)) is not None:
            examples.append(Example(path, [label], subset))
            kinds.add(kind)
    if not examples:
        raise AutoclintError(f"{class_dir}: class folder holds no image, video or frame-folder.")
    return examples, kinds


def collect_folder(root: str) -> Collected:
    """Class sub-folders, optionally inside train/test (or training/validation/test) folders."""
    if not os.path.isdir(root):
        raise AutoclintError(f"{root}: no such folder.")
    children = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    presplit = bool(children) and all(d.lower() in SPLIT_NAMES for d in children)
    groups = [(os.path.join(root, d), SPLIT_NAMES[d.lower()]) for d in children] if presplit else [(root, None)]
    if presplit and "test" not in {s for _, s in groups}:
        raise AutoclintError(f"{root}: split folders {children} name no test folder (test/ or testing/).")
    class_names = sorted({c for folder, _ in groups for c in os.listdir(folder)
                          if os.path.isdir(os.path.join(folder, c)) and not c.startswith(".")})
    if len(class_names) < 2:
        raise AutoclintError(f"{root}: found {len(class_names)} class folder(s) {class_names}; "
                             f"a classification dataset needs at least 2.")
    examples, kinds = [], set()
    for folder, subset in groups:
        for label, name in enumerate(class_names):
            class_dir = os.path.join(folder, name)
            if os.path.isdir(class_dir):
                found, found_kinds = _class_folder_examples(class_dir, label, subset)
                examples += found
                kinds |= found_kinds
    if len(kinds) > 1:
        raise AutoclintError(f"{root}: mixes images and videos; put them in separate datasets.")
    return Collected(kinds.pop(), examples, class_names)


def collect_csv(csv_path: str) -> Collected:
    """A CSV with a header `path,labels`; labels are space-separated class names (multi-label allowed)."""
    base = os.path.dirname(os.path.abspath(csv_path))
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise AutoclintError(f"{csv_path}: cannot be read ({e}).") from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] not in (["path", "labels"], ["filename", "labels"]):
        raise AutoclintError(f"{csv_path}: the first line must be the header `path,labels`.")
    parsed = []
    for number, row in enumerate(rows[1:], 2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2 or not row[1].strip():
            raise AutoclintError(f"{csv_path}: line {number} has no labels.")
        path = os.path.join(base, row[0].strip())
        if not os.path.isfile(path):
            raise AutoclintError(f"{csv_path}: line {number} names {row[0]!r}, which does not exist.")
        parsed.append((path, row[1].split()))
    class_names = sorted({name for _, names in parsed for name in names})
    if len(class_names) < 2:
        raise AutoclintError(f"{csv_path}: found {len(class_names)} label(s); a classification dataset needs at least 2.")
    index = {name: i for i, name in enumerate(class_names)}
    kinds = {_media_kind(p) for p, _ in parsed}
    if len(kinds) != 1 or None in kinds:
        raise AutoclintError(f"{csv_path}: paths must all be images or all be videos.")
    examples = [Example(p, sorted({index[n] for n in names})) for p, names in parsed]
    return Collected(kinds.pop(), examples, class_names)


def collect_arrays(x: np.ndarray, y: np.ndarray, class_names: list[str] | None = None, origin: str = "arrays") -> Collected:
    """x: (N,H,W), (N,H,W,C) or (N,T,H,W,C), uint8 or float; y: (N,) class indices or (N,K) 0/1."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim == 4:
        x = x[:, None]
    if x.ndim != 5 or x.shape[-1] > 4:
        raise AutoclintError(f"{origin}: x has shape {x.shape}; expected (N,H,W), (N,H,W,C) or (N,T,H,W,C) with C <= 4.")
    if len(y) != len(x):
        raise AutoclintError(f"{origin}: x holds {len(x)} examples but y holds {len(y)} labels.")
    if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
        if np.issubdtype(x.dtype, np.integer) and x.size and x.min() >= 0 and x.max() <= 255:
            x = x.astype(np.uint8)
        else:
            raise AutoclintError(f"{origin}: x has dtype {x.dtype}; give uint8 pixels or floats.")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise AutoclintError(f"{origin}: x holds NaN or inf.")
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise AutoclintError(f"{origin}: y must hold non-negative integer class indices.")
        n_classes = int(y.max()) + 1
        labels = [[int(v)] for v in y]
    elif y.ndim == 2:
        if not np.isin(y, (0, 1)).all():
            raise AutoclintError(f"{origin}: a 2-D y must hold only 0 and 1 (multi-hot rows).")
        n_classes = y.shape[1]
        labels = [list(np.flatnonzero(row)) for row in y]
    else:
        raise AutoclintError(f"{origin}: y has shape {y.shape}; expected (N,) or (N, classes).")
    names = list(class_names) if class_names else [str(i) for i in range(n_classes)]
    if len(names) < n_classes:
        raise AutoclintError(f"{origin}: {len(names)} class names given for {n_classes} classes.")
    if len(names) < 2 or len({i for row in labels for i in row}) < 2:
        raise AutoclintError(f"{origin}: y holds fewer than 2 classes; a classification dataset needs at least 2.")
    return Collected("array", [Example(x[i], labels[i]) for i in range(len(x))], names)


def load_arrays(path: str, y_path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`data.npz` holding x and y, or `x.npy` with `y.npy` beside it (or named by y_path)."""
    try:
        if path.endswith(".npz"):
            with np.load(path) as z:
                if not {"x", "y"} <= set(z.files):
                    raise AutoclintError(f"{path}: needs arrays named x and y (has {sorted(z.files)}).")
                return z["x"], z["y"]
        y_path = y_path or os.path.join(os.path.dirname(path), "y.npy")
        return np.load(path), np.load(y_path)
    except (OSError, ValueError) as e:
        raise AutoclintError(f"{path}: cannot be loaded as numpy arrays ({e}).") from None


# ----------------------------------------------------------------------------- decoding sources

def load_image(path: str, max_side: int = 0) -> tuple[np.ndarray, bytes | None]:
    """Pixels as uint8 (H, W, 1|3), EXIF rotation applied, alpha composited on white, deeper grey scaled to
    8 bits by its bit depth in use (16-bit colour: Pillow keeps the high byte).

    Returns the original bytes too when they decode to exactly these pixels (so they can be stored as is).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise AutoclintError(f"{path}: cannot be read as an image ({e}).") from None
    keep = (image.format in KEEP_BYTES_FORMATS and image.mode in ("L", "RGB")
            and image.getexif().get(0x0112, 1) == 1 and not max_side)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        # Scaled by the smallest 2^k - 1 (k >= 8) that holds the largest value: 10-, 12- and 14-bit data kept in
        # 16-bit files (x-rays, scientific cameras) keep their levels instead of being crushed into the 16
        # darkest of 256 by a fixed 65535. A dark image of such a set may come out brighter than its peers.
        top = 2.0 ** max(8, int(np.ceil(np.log2(max(pixels.max(), 0) + 1)))) - 1
        pixels = np.clip(np.round(pixels / top * 255.0), 0, 255).astype(np.uint8)[..., None]
    else:
        if image.mode == "P":
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "PA"):
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image.convert("RGBA"))
        image = image.convert("L") if image.mode in ("1", "L", "LA") else image.convert("RGB")
        pixels = np.asarray(image, dtype=np.uint8)
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    if max_side and max(pixels.shape[:2]) > max_side:
        scale = max_side / max(pixels.shape[:2])
        size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
        resized = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).resize(size, Image.LANCZOS)
        pixels = np.asarray(resized, dtype=np.uint8).reshape(size[1], size[0], -1)
    return pixels, (data if keep else None)


def load_image_as_stored(path: str) -> np.ndarray:
    """An image's pixels as a dataset written by `write_dataset` holds them: the bytes kept as they are are
    decoded by TensorFlow, as the reader does (its JPEG decoder differs from PIL's by up to 5 levels on
    camera photos), others as `load_image` gives them."""
    pixels, original = load_image(path)
    if original is None:
        return pixels
    import tensorflow as tf
    return tf.io.decode_image(original, channels=pixels.shape[-1], expand_animations=False).numpy()


def load_video(path: str, max_frames: int = 0) -> np.ndarray:
    """Frames as uint8 (T, H, W, 3) RGB from a video file or a folder of frame images."""
    if os.path.isdir(path):
        names = [n for n in sorted(os.listdir(path)) if _media_kind(n) == "image"]
        frames = [load_image(os.path.join(path, n))[0] for n in names]
        frames = [np.repeat(f, 3, axis=2) if f.shape[2] == 1 else f for f in frames]
        if len({f.shape for f in frames}) > 1:
            raise AutoclintError(f"{path}: frames differ in size.")
    else:
        import cv2
        capture = cv2.VideoCapture(path)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        capture.release()
    if not frames:
        raise AutoclintError(f"{path}: cannot be read as a video (no frame decoded).")
    clip = np.stack(frames)
    if max_frames and len(clip) > max_frames:
        clip = clip[np.linspace(0, len(clip) - 1, max_frames).round().astype(int)]
    return clip


def encode_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def encode_jpeg(pixels: np.ndarray, quality: int = VIDEO_JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def is_grey(pixels: np.ndarray, tolerance: int = 0) -> bool:
    """All channels equal, up to `tolerance` (uint8 steps) for lossy sources."""
    if pixels.shape[-1] == 1:
        return True
    spread = pixels.max(axis=-1).astype(np.int16) - pixels.min(axis=-1)
    return bool(spread.max() <= tolerance)


@dataclass
class Encoded:
    """One example ready to write: compressed frames (bytes) or dense float frames."""
    frames: list[bytes] | np.ndarray
    shape: tuple[int, int, int]  # (T, H, W)
    grey: bool


def encode_example(kind: str, example: Example, max_side: int, max_frames: int) -> Encoded:
    if kind == "image":
        pixels, original = load_image(example.source, max_side)
        if pixels.shape[2] == 3 and is_grey(pixels):  # stored as 1-channel PNG: exact under any num_channels
            pixels, original = pixels[..., :1], None
        return Encoded([original or encode_png(pixels)], (1, *pixels.shape[:2]), is_grey(pixels))
    if kind == "video":
        clip = load_video(example.source, max_frames)
        grey = is_grey(clip, VIDEO_GREY_TOLERANCE)
        if grey:
            clip = np.round(clip.mean(axis=-1, keepdims=True)).astype(np.uint8)
        frames = [encode_jpeg(f) for f in clip]
        return Encoded(frames, clip.shape[:3], grey)
    array = example.source
    if array.dtype == np.uint8:
        return Encoded([encode_png(f) for f in array], array.shape[:3], array.shape[-1] == 1)
    return Encoded(array.astype(np.float32), array.shape[:3], array.shape[-1] == 1)


# ----------------------------------------------------------------------------- split and write

def stratified_split(examples: list[Example], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Per class (first label), a seeded share of examples goes to test; one-example classes stay in train."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, e in enumerate(examples):
        by_class.setdefault(e.labels[0], []).append(i)
    train, test = [], []
    for label in sorted(by_class):
        members = rng.permutation(by_class[label]).tolist()
        n_test = min(len(members) - 1, int(round(test_fraction * len(members))))
        n_test = max(n_test, 1) if len(members) >= 2 and test_fraction > 0 else n_test
        test += members[:n_test]
        train += members[n_test:]
    return rng.permutation(train).tolist(), rng.permutation(test).tolist()


def _sequence_example(encoded: Encoded, labels: list[int], example_id: int, with_labels: bool):
    import tensorflow as tf
    ctx = {"id": tf.train.Feature(int64_list=tf.train.Int64List(value=[example_id])),
           "label_index": tf.train.Feature(int64_list=tf.train.Int64List(value=labels if with_labels else [])),
           "label_score": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0] * len(labels) if with_labels else []))}
    if isinstance(encoded.frames, np.ndarray):
        frames = [tf.train.Feature(float_list=tf.train.FloatList(value=f.reshape(-1))) for f in encoded.frames]
        lists = {"0_dense_input": tf.train.FeatureList(feature=frames)}
    else:
        frames = [tf.train.Feature(bytes_list=tf.train.BytesList(value=[b])) for b in encoded.frames]
        lists = {"0_compressed": tf.train.FeatureList(feature=frames)}
    return tf.train.SequenceExample(context=tf.train.Features(feature=ctx),
                                    feature_lists=tf.train.FeatureLists(feature_list=lists))


def metadata_text(count: int, shapes: set[tuple[int, int, int]], channels: int, class_names: list[str], dense: bool) -> str:
    frames = {s[0] for s in shapes}
    sizes = {s[1:] for s in shapes}
    rows, cols = sizes.pop() if len(sizes) == 1 else (-1, -1)
    sequence_size = frames.pop() if len(frames) == 1 else -1
    lines = [f"is_sequence: {'true' if sequence_size != 1 else 'false'}", f"sample_count: {count}",
             f"sequence_size: {sequence_size}", f"output_dim: {len(class_names)}", "matrix_spec {",
             f"  col_count: {cols}", f"  row_count: {rows}", f"  num_channels: {channels}",
             "  is_sequence_col: false", "  is_sequence_row: false", "  has_locality_col: true",
             "  has_locality_row: true", f"  format: {'DENSE' if dense else 'COMPRESSED'}", "}"]
    for i, name in enumerate(class_names):
        escaped = name.replace("\\", "\\\\").replace("'", "\\'")
        lines += ["label_to_index_map {", f"  key: '{escaped}'", f"  value: {i}", "}"]
    return "\n".join(lines) + "\n"


def _source_name(example: Example, index: int) -> str:
    return example.source if isinstance(example.source, str) else f"x[{index}]"


def write_dataset(collected: Collected, out_dir: str, name: str, test_fraction: float = 0.2, seed: int = 42,
                  max_side: int = 0, max_frames: int = 0, overwrite: bool = False,
                  progress: Progress = _no_progress, shuffle: bool = True, skip_unreadable: bool = False) -> str:
    """Encode, split and write; returns the dataset root. Nothing is replaced unless all of it succeeded.

    shuffle=False keeps the examples' given order within each subset (when the examples fix the split),
    e.g. to write records sorted by class, which the official reader hands over unshuffled.
    skip_unreadable: a file that cannot be decoded is left out (a log line each, then their count) instead
    of stopping the conversion. The root also gets files.csv: split, index in that split, source file,
    labels, so that a user can tell which of their files an example (or a prediction row) is.
    """
    import tensorflow as tf
    if not name or any(c in name for c in "./\\ "):
        raise AutoclintError(f"--name={name!r}: use letters, digits, '-' or '_' only.")
    final = os.path.join(out_dir, name)
    if os.path.exists(final) and not overwrite:
        raise AutoclintError(f"{final}: already exists; pass --overwrite to replace it.")
    if not 0 < test_fraction < 1:
        raise AutoclintError(f"--test-size={test_fraction}: must be between 0 and 1.")
    examples = collected.examples
    if any(e.subset for e in examples):
        train_idx = [i for i, e in enumerate(examples) if e.subset == "train"]
        test_idx = [i for i, e in enumerate(examples) if e.subset == "test"]
        if shuffle:
            rng = np.random.default_rng(seed)
            train_idx, test_idx = rng.permutation(train_idx).tolist(), rng.permutation(test_idx).tolist()
    else:
        train_idx, test_idx = stratified_split(examples, test_fraction, seed)
        counts = np.bincount([e.labels[0] for e in examples], minlength=len(collected.class_names))
        alone = [collected.class_names[k] for k in np.flatnonzero(counts == 1)]
        if alone:  # the learner still sees them; the test figures cannot
            log.warning("%s: %d class(es) with a single example, kept in train and never tested: %s", name,
                        len(alone), ", ".join(alone[:10]) + (" ..." if len(alone) > 10 else ""))
    if not train_idx or not test_idx:
        raise AutoclintError(f"{name}: the split left {len(train_idx)} train and {len(test_idx)} test examples; "
                             f"give more examples or another --test-size.")
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=out_dir)
    try:
        encoded, skipped = {}, []
        for i in progress(train_idx + test_idx, f"encoding {name}"):
            try:
                encoded[i] = encode_example(collected.kind, examples[i], max_side, max_frames)
            except AutoclintError as e:
                if not skip_unreadable:
                    raise AutoclintError(f"{e} Pass --skip-unreadable to leave such files out.") from None
                log.warning("skipped: %s", e)
                skipped.append(_source_name(examples[i], i))
        if skipped:
            shown = ", ".join(os.path.basename(p) for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            log.warning("%s: left out %d unreadable file(s): %s", name, len(skipped), shown)
            train_idx = [i for i in train_idx if i in encoded]
            test_idx = [i for i in test_idx if i in encoded]
            if not train_idx or not test_idx:
                raise AutoclintError(f"{name}: without the {len(skipped)} unreadable file(s), {len(train_idx)} train "
                                     f"and {len(test_idx)} test examples are left; nothing written.")
        tested = {label for i in test_idx for label in examples[i].labels}
        for label, class_name in enumerate(collected.class_names):
            if label not in tested:
                count = sum(label in examples[i].labels for i in train_idx)
                log.warning("class %r has %d example(s), none in the test set: the test set cannot measure it%s",
                            class_name, count, " (one example cannot be both trained on and tested)" if count == 1 else "")
        # TensorFlow's decoder forces num_channels: grey frames are replicated when the set is colour.
        channels = 1 if all(e.grey for e in encoded.values()) else 3
        dense = isinstance(next(iter(encoded.values())).frames, np.ndarray)
        if dense:
            channels = examples[0].source.shape[-1]
        root = os.path.join(work, name)
        for subset, idx, first_id in (("test", test_idx, 0), ("train", train_idx, len(test_idx))):
            subset_dir = os.path.join(root, f"{name}.data", subset)
            os.makedirs(subset_dir)
            with open(os.path.join(subset_dir, "metadata.textproto"), "w", encoding="utf-8") as f:
                f.write(metadata_text(len(idx), {encoded[i].shape for i in idx}, channels, collected.class_names, dense))
            with tf.io.TFRecordWriter(os.path.join(subset_dir, f"sample-{name}-{subset}.tfrecord")) as writer:
                for offset, i in enumerate(idx):
                    record = _sequence_example(encoded[i], examples[i].labels, first_id + offset, subset == "train")
                    writer.write(record.SerializeToString())
        with open(os.path.join(root, f"{name}.solution"), "w", encoding="utf-8") as f:
            for i in test_idx:
                row = np.zeros(len(collected.class_names), dtype=int)
                row[examples[i].labels] = 1
                f.write(" ".join(map(str, row)) + "\n")
        with open(os.path.join(root, f"{name}_label.name"), "w", encoding="utf-8") as f:
            f.write("\n".join(collected.class_names) + "\n")
        with open(os.path.join(root, "files.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["split", "index", "file", "labels"])
            for subset, idx in (("train", train_idx), ("test", test_idx)):
                for offset, i in enumerate(idx):
                    writer.writerow([subset, offset, _source_name(examples[i], i),
                                     " ".join(collected.class_names[k] for k in examples[i].labels)])
        replace_folder(root, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final
