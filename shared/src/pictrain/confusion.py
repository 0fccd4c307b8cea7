"""Confusion matrices drawn one way: the true class on rows, the predicted one on columns.

That is scikit-learn's order and the one Picsellia's own images send as the `HEATMAP`
(`confusion_matrix(y_true, y_pred)`). ultralytics draws its val matrices the other way round
(predicted on rows); `redraw_validation` draws them again in this order, over its files, so the
plots of a run read alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Past this many classes the counts no longer fit in their cells (ultralytics' own limit).
ANNOTATED_CLASSES = 30
MAX_FIGURE_INCHES = 24.0


def plot_confusion(
    matrix: np.ndarray, names: list[str], path: Path, title: str, normalize: bool = False
) -> Path:
    """Draw `matrix` (rows: true, columns: predicted) to `path`; `normalize`: each row as the
    share of its true class (recall on the diagonal)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    values = matrix.astype(np.float64)
    if normalize:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    size = min(max(4.0, 0.5 * len(names) + 2), MAX_FIGURE_INCHES)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(values, cmap="Blues")
    axes.set(
        xticks=range(len(names)),
        yticks=range(len(names)),
        xticklabels=names,
        yticklabels=names,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    plt.setp(axes.get_xticklabels(), rotation=45, ha="right")
    if len(names) < ANNOTATED_CLASSES:
        for (row, col), value in np.ndenumerate(values):
            text = f"{value:.2f}" if normalize else str(int(value))
            axes.text(col, row, text, ha="center", va="center")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def redraw_validation(confusion: Any, save_dir: Path) -> list[Path]:
    """ultralytics' val confusion matrices (`confusion_matrix.png`, `..._normalized.png`) drawn
    again with the true class on rows, from its `ConfusionMatrix` (whose rows are predicted;
    detection adds a `background` class: a missed object is predicted background, a false
    detection is true background)."""
    names = [str(name) for name in confusion.names.values()]
    if confusion.task not in {"classify", "semantic"}:
        names.append("background")
    matrix = np.asarray(confusion.matrix).T
    title = "val split confusion matrix (best weights)"
    return [
        plot_confusion(matrix, names, save_dir / "confusion_matrix.png", title),
        plot_confusion(
            matrix,
            names,
            save_dir / "confusion_matrix_normalized.png",
            f"{title}, share of each true class",
            normalize=True,
        ),
    ]
