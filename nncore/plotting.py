"""Plots with matplotlib (an optional extra: `pip install nncore[plot]`).

`plot_history(history)` (also `History.plot()`, what `model.fit` returns): one panel per metric,
training and validation curves against the epoch.
"""

_HINT = "pip install 'nncore[plot]' (or pip install matplotlib)"


def _pyplot():
    try:
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f"plotting needs matplotlib: {_HINT}") from e
    return matplotlib, plt


def plot_history(history, metrics=None, figsize=None, title=None, logy=False):
    """Training and validation curves per metric; returns the matplotlib Figure.

    history: an nn.callbacks.History (model.fit's return value, model.history), or its dict
    (`history.history`, or the `history_` of nncore.sklearn estimators). metrics: names to plot
    (default: every metric recorded, loss first); `val_<name>` is drawn on the same panel.
    logy: log-scaled y axes (useful for losses spanning decades)."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError(f"plot_history expects a History or its dict of per-epoch values, got {type(history).__name__}")
    names = [k for k in logs if not k.startswith("val_")]
    names += [k[4:] for k in logs if k.startswith("val_") and k[4:] not in logs]  # val-only metrics
    names.sort(key=lambda k: (k != "loss", list(logs).index(k) if k in logs else len(logs)))
    if metrics is not None:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise ValueError(f"no metric(s) {unknown} in the history; it has {names}")
        names = metrics
    if not names:
        raise ValueError("the history is empty: train with model.fit(...) first")
    _, plt = _pyplot()
    n = len(names)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=figsize or (4.2 * cols, 3.2 * rows), squeeze=False)
    epochs0 = list(getattr(history, "epoch", []) or [])
    for ax, name in zip(axes.flat, names):
        for key, label, style in ((name, "training", "-"), ("val_" + name, "validation", "--")):
            values = logs.get(key)
            if not values:
                continue
            x = [e + 1 for e in epochs0] if len(epochs0) == len(values) else list(range(1, len(values) + 1))
            ax.plot(x, values, style, marker="o" if len(values) <= 30 else None, markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if logy:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
