"""The run's figures and the report a person reads: one self-contained HTML page plus the same PNGs.

A run folder (`autoclint train --out RUN`) holds the saved model, `metrics.json` (every prediction made
during training, with its held-out and test NAUC, and what the learner chose), `config.json`, `log.txt`
and `curve.png`. `write_report` scores the saved model on a labelled test set and writes `index.html`
(images embedded, no script, no external file) beside `curve.png`, `confusion.png` (single-label) or
`per-class.png` (multi-label), `worst.png` and `metrics.json`.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from autoclint.errors import AutoclintError  # noqa: E402
from autoclint.files import REPORT_FILES, check_destination, replace_folder  # noqa: E402
from autoclint.metrics import Summary, summarize  # noqa: E402

WORST = 12  # thumbnails of the worst-classified test examples
THUMBNAIL_BYTES = 256 * 2**20  # test examples kept for thumbnails; beyond this the section is left out
DPI = 100


# ----------------------------------------------------------------------------- figures

def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


STOPPED = {"training": "the run did not end (killed): this is the model it saved last",
           "interrupted": "interrupted (Ctrl-C or SIGTERM): the best predictor so far was saved"}


def curve_png(predictions: list[dict], budget_s: float) -> bytes:
    """NAUC of each prediction made during training over time (log axis, as the challenge weighs time)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label, colour in (("test_nauc", "test NAUC", "tab:blue"), ("valid_nauc", "held-out NAUC", "tab:orange")):
        points = [(p["t"], p[key]) for p in predictions if p.get(key) is not None]
        if points:
            t, v = zip(*points)
            ax.step(list(t) + [max(budget_s, t[-1])], list(v) + [v[-1]], where="post", label=label, color=colour)
            ax.plot(t, v, "o", color=colour, markersize=3)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, max([budget_s, 1.0] + [p["t"] * 1.05 for p in predictions]))  # a late one stays visible
    values = [p[key] for p in predictions for key in ("test_nauc", "valid_nauc") if p.get(key) is not None]
    ax.set_ylim(min([0.0] + values) - 0.02, 1.02)  # a NAUC below 0 (a tiny held-out split) stays visible
    ax.set_xlabel("seconds since training started (log scale)")
    ax.set_ylabel("NAUC = 2 AUC - 1")
    ax.set_title("Predictions during training")
    ax.grid(alpha=0.3)
    if predictions:
        ax.legend(loc="lower right")
    fig.tight_layout()
    return _png(fig)


def search_png(points: list[tuple[float, float]], total_s: float) -> bytes:
    """The best held-out NAUC of the completed trials over the search's wall-clock time."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if points:
        t, v = zip(*points)
        ax.step(list(t) + [max(total_s, t[-1])], list(v) + [v[-1]], where="post", color="tab:orange")
        ax.plot(t, v, "o", color="tab:orange", markersize=3)
        ax.set_ylim(min(v) - 0.02, min(1.02, max(v) + 0.02))
    ax.set_xlim(0, max([total_s] + [p[0] * 1.05 for p in points]))
    ax.set_xlabel("seconds since the search started")
    ax.set_ylabel("best held-out NAUC so far")
    ax.set_title("Configuration search: the incumbent over time")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def confusion_png(confusion: np.ndarray, classes: list[str]) -> bytes:
    """Rows: true class, columns: predicted; colour is the share of the row, numbers are counts (up to 25
    classes; beyond that the labels would overlap)."""
    k = len(classes)
    share = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    side = min(24.0, max(6.5, 0.3 * k + 3.5))  # about 0.3 inch a class: names stay readable at 7 points
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(k)
    size = 9 if k <= 25 else 7
    ax.set_xticks(ticks, [c[:18] for c in classes], rotation=60, ha="right", fontsize=size)
    ax.set_yticks(ticks, [c[:18] for c in classes], fontsize=size)
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (colour: share of the true class)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return _png(fig)


def per_class_png(summary: Summary, classes: list[str]) -> bytes:
    """Multi-label: precision and recall of each class at the thresholds the model decides with."""
    k = len(classes)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.4 * k + 2), 4.5))
    x = np.arange(k)
    ax.bar(x - 0.2, summary.precision, 0.4, label="precision")
    ax.bar(x + 0.2, summary.recall, 0.4, label="recall")
    ax.set_xticks(x, [c[:18] for c in classes], rotation=60, ha="right", fontsize=9)
    ax.set_ylim(0, 1)
    ax.set_ylabel("at the saved thresholds")
    ax.set_title("Per-class precision and recall (test set)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def worst_png(images: np.ndarray, captions: list[str]) -> bytes:
    """Thumbnails (uint8 (N, H, W, C)) with their captions, four per row."""
    n = len(images)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        grey = image.shape[-1] == 1
        ax.imshow(image[..., 0] if grey else image[..., :3], cmap="gray" if grey else None, vmin=0, vmax=255)
        ax.set_title(caption, fontsize=8)
    fig.suptitle("Worst-classified test examples (lowest probability of a true class)")
    fig.tight_layout()
    return _png(fig)


# ----------------------------------------------------------------------------- evaluation

@dataclass
class Evaluation:
    solution: np.ndarray  # (N, K) 0/1
    probabilities: np.ndarray  # (N, K) calibrated
    decisions: np.ndarray  # (N, K) booleans
    thumbnails: np.ndarray | None  # (N, H, W, C) uint8 first frames, None when the set was too large to keep
    summary: Summary


def evaluate(model, dataset, solution: np.ndarray) -> Evaluation:
    """The saved model's calibrated probabilities and decisions on a tf.data test set, as `predict` makes
    them, with the first frame of every example kept for thumbnails."""
    scores, thumbs, kept = [], [], 0
    for x, batch_scores in model.scores_batches(dataset):
        scores.append(batch_scores)
        if thumbs is not None:
            kept += x[:, 0].nbytes
            thumbs = thumbs + [x[:, 0]] if kept <= THUMBNAIL_BYTES else None
    if not scores:
        raise AutoclintError("the test set holds no example.")
    probabilities = model.calibration.probabilities(np.concatenate(scores))
    if probabilities.shape != solution.shape:
        raise AutoclintError(f"the test set has {len(probabilities)} examples of {probabilities.shape[1]} classes, "
                             f"its solution {solution.shape[0]} of {solution.shape[1]}.")
    decisions = model.calibration.decide(probabilities)
    return Evaluation(solution, probabilities, decisions, np.concatenate(thumbs) if thumbs else None,
                      summarize(solution, probabilities, decisions))


def worst_examples(ev: Evaluation, classes: list[str], count: int = WORST) -> tuple[np.ndarray, list[str]]:
    """The examples whose best true class got the lowest probability, with 'true / predicted' captions."""
    y = ev.solution > 0.5
    labelled = np.flatnonzero(y.any(1))
    truth = np.where(y, ev.probabilities, -1).max(1)[labelled]
    chosen = labelled[np.argsort(truth, kind="stable")[:count]]
    captions = []
    for i in chosen:
        true = ", ".join(classes[k] for k in np.flatnonzero(y[i]))
        predicted = ", ".join(classes[k] for k in np.flatnonzero(ev.decisions[i]))
        captions.append(f"#{i} true: {true[:28]}\npredicted: {predicted[:28]}\n"
                        f"P(true) {np.where(y[i], ev.probabilities[i], -1).max():.2f}")
    return ev.thumbnails[chosen], captions


# ----------------------------------------------------------------------------- the page

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:0.5em 0}
.note{color:#555;font-size:0.9em}"""


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def render_html(title: str, run: dict, model_info: dict, ev: Evaluation, classes: list[str],
                figures: dict[str, bytes], test_name: str) -> str:
    s = ev.summary
    learner = run.get("learner", {})
    shape = learner.get("input_shape")
    network = model_info.get("network") or {}
    chose = [
        ["predictor saved", model_info.get("kind", "?") + (" + mirrored test-time augmentation" if model_info.get("tta") else "")],
        ["held-out NAUC of that predictor", "-" if model_info.get("valid_nauc") is None else f"{model_info['valid_nauc']:.4f}"],
        ["input size (frames x height x width x channels)", " x ".join(map(str, shape)) if shape else "-"],
        ["backbone, network input", f"{learner.get('backbone') or 'none (raw pixels)'}"
         + (f", {network['net_hw'][0]}x{network['net_hw'][1]}" if network.get("net_hw") else "")],
        ["mirroring (checked on held-out data)", "on" if learner.get("mirroring") else "off"],
        ["augmentation policy", learner.get("policy", "none")],
        ["train / held-out examples", f"{learner.get('train_examples', '?')} / {learner.get('held_out', '?')}"],
        ["fine-tune epochs", learner.get("fine_tune_epochs", 0)],
        ["time used of the budget", f"{run.get('elapsed_s', 0):.1f} s of {run.get('budget_s', 0):g} s"],
        ["why training stopped", STOPPED.get(run.get("state", ""), "") or learner.get("stopped")
         or "the budget was spent"],
    ]
    overall = [["NAUC (2 AUC - 1, macro over classes)", f"{s.nauc:.4f}"], ["top-1 accuracy", f"{s.top1:.4f}"],
               ["macro precision / recall / F1", " / ".join(f"{v:.4f}" for v in s.macro)],
               ["micro precision / recall / F1", " / ".join(f"{v:.4f}" for v in s.micro)],
               ["test examples", str(len(ev.solution))]]
    thresholds = (model_info.get("calibration") or {}).get("thresholds")
    per_class = [[c, int(s.support[k]), int(s.predicted[k]), f"{s.precision[k]:.3f}", f"{s.recall[k]:.3f}",
                  f"{s.f1[k]:.3f}"] + ([f"{thresholds[k]:.2f}"] if thresholds else [])
                 for k, c in enumerate(classes)]
    header = ["class", "test examples", "predicted", "precision", "recall", "F1"] + (["threshold"] if thresholds else [])
    preds = [[f"{p['t']:.1f}", p.get("kind", ""), "-" if p.get("valid_nauc") is None else f"{p['valid_nauc']:.4f}",
              "-" if p.get("test_nauc") is None else f"{p['test_nauc']:.4f}"] for p in run.get("predictions", [])]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">Test set: {html.escape(test_name)}. Probabilities are calibrated on held-out '
             f'data; {"a class is predicted above its threshold" if ev.summary.confusion is None else "the predicted class is the most probable one"}.</p>',
             "<h2>Scores on the test set</h2>", _table(["metric", "value"], overall),
             "<h2>What the learner chose</h2>", _table(["choice", "value"], chose)]
    if "curve.png" in figures:
        parts += ["<h2>Learning curve</h2>", _image(figures["curve.png"], "learning curve"),
                  _table(["t (s)", "predictor", "held-out NAUC", "test NAUC"], preds) if preds else ""]
    if "confusion.png" in figures:
        parts += ["<h2>Confusion matrix</h2>", _image(figures["confusion.png"], "confusion matrix")]
    if "per-class.png" in figures:
        parts += ["<h2>Per-class precision and recall</h2>", _image(figures["per-class.png"], "per-class precision and recall")]
    parts += ["<h2>Per class</h2>", _table(header, per_class)]
    if "worst.png" in figures:
        parts += ["<h2>Worst-classified test examples</h2>", _image(figures["worst.png"], "worst-classified examples")]
    else:
        parts += ['<p class="note">Thumbnails left out: the test set is too large to keep in memory.</p>']
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(out_dir: str, title: str, run: dict, model_info: dict, ev: Evaluation, classes: list[str],
                 test_name: str, overwrite: bool) -> str:
    """Write index.html and the PNGs into `out_dir`, replaced only once complete. Returns index.html's path."""
    out_dir = os.path.abspath(out_dir)
    check_destination(out_dir, REPORT_FILES, "index.html", overwrite, "--overwrite")
    figures: dict[str, bytes] = {}
    if run.get("predictions"):
        figures["curve.png"] = curve_png(run["predictions"], float(run.get("budget_s", 0)) or 1.0)
    if ev.summary.confusion is not None:
        figures["confusion.png"] = confusion_png(ev.summary.confusion, classes)
    else:
        figures["per-class.png"] = per_class_png(ev.summary, classes)
    if ev.thumbnails is not None:
        figures["worst.png"] = worst_png(*worst_examples(ev, classes))
    page = render_html(title, run, model_info, ev, classes, figures, test_name)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".report-", dir=os.path.dirname(out_dir))
    try:
        for name, png in figures.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(png)
        with open(os.path.join(tmp, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump({"test": test_name, "classes": classes, **ev.summary.to_dict()}, f, indent=1)
        with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as f:
            f.write(page)
        replace_folder(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(out_dir, "index.html")
