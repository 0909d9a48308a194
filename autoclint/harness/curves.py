"""The learning-curve PNG and `detailed_results.html` written by the scorer."""
from __future__ import annotations

import base64
import glob
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from autoclint.metrics import T0_S, transform_time  # noqa: E402


def plot_learning_curve(path: str, task: str, timestamps_s: list[float], scores: list[float],
                        time_budget_s: float, alc_value: float) -> None:
    """Step curve of NAUC over transformed time; predictions after T are not drawn (as official)."""
    points = [(t, s) for t, s in zip(timestamps_s, scores) if t <= time_budget_s]
    xs = [0.0] + [transform_time(t, time_budget_s) for t, _ in points] + [1.0]
    ys = [0.0] + [s for _, s in points] + [points[-1][1] if points else 0.0]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.step(xs, ys, where="post", color="tab:blue", label=f"ALC={alc_value:.4f}")
    ax.fill_between(xs, ys, step="post", alpha=0.3, color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_ylim(min(0.0, min(ys)), 1)
    ax.set_xlabel(f"transformed time: log(1 + t/{T0_S:g}) / log(1 + T/{T0_S:g})")
    ax.set_ylabel("score (2*AUC-1)")
    ax.set_title(f"{task}: learning curve (T = {time_budget_s:g} s)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    ticks = [t for t in [10, 60, 300, 600, 1200] if t <= time_budget_s]
    ticks += list(range(1800, int(time_budget_s) + 1, 1800))
    top = ax.twiny()
    top.set_xlim(0, 1)
    top.set_xticks([transform_time(t, time_budget_s) for t in ticks])
    top.set_xticklabels([f"{t}s" for t in ticks])
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


def write_detailed_results(score_dir: str, final: bool) -> None:
    """All PNGs of the score folder as inline images; auto-refresh every 5 s while running."""
    images = []
    for png in sorted(glob.glob(os.path.join(score_dir, "*.png"))):
        with open(png, "rb") as f:
            images.append(f'<img src="data:image/png;base64,{base64.b64encode(f.read()).decode()}">')
    refresh = "" if final else '<meta http-equiv="refresh" content="5">'
    body = "\n".join(images) or "<p>Waiting for the first prediction...</p>"
    html = f"<html><head>{refresh}<title>autoclint results</title></head><body>\n{body}\n</body></html>\n"
    path = os.path.join(score_dir, "detailed_results.html")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(path + ".tmp", path)
