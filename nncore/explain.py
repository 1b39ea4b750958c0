"""Explanations of a model's scores: which inputs pushed a prediction up or down.

Gradient methods use the engine's own backward pass from the model OUTPUT (after its final
sigmoid/softmax) to the input, with inference behaviour, in batched calls: every row, and for
integrated gradients every interpolation point of every row, goes through one call (split only
into blocks of `max_rows` rows to bound memory), never a loop over features.

    attr = nn.explain.integrated_gradients(model, x_val[:100], baseline=x_train.mean(0))
    nn.explain.top_reasons(model, x_val[0], feature_names, k=3)
"""
import numpy as np

from . import callbacks as callbacks_mod
from . import metrics as metrics_mod

__all__ = ["input_gradients", "gradient_x_input", "integrated_gradients", "permutation_importance",
           "top_reasons"]


def _inputs(model, x):
    x = np.asarray(x, dtype=np.float32)
    if model.input_shape is not None and x.shape == tuple(model.input_shape[1:]):
        x = x[None]  # a single sample
    return np.ascontiguousarray(x)


def _multi(model):
    from .models import Sequential
    return not isinstance(model, Sequential) and len(model.inputs) > 1


def _as_list(model, x):
    """The inputs as a list of float32 arrays with a batch axis, and a function that packs a
    per-input list back the way x came (one array, a list, or a dict keyed by input name)."""
    if not _multi(model):
        return [_inputs(model, x)], lambda l: l[0]
    names, shapes = model.input_names, model._in_shapes()
    if isinstance(x, dict):
        xs, pack = [x[k] for k in names], lambda l: dict(zip(names, l))
    elif isinstance(x, (list, tuple)) and len(x) == len(names):
        xs, pack = list(x), list
    else:
        raise ValueError(f"model {model.name!r} has inputs {names}: pass a list or a dict of arrays")
    out = []
    for a, shp in zip(xs, shapes):
        a = np.asarray(a, dtype=np.float32)
        out.append(np.ascontiguousarray(a[None] if a.shape == tuple(shp) else a))
    return out, pack


def _grads(model, xs, up):
    """d sum(up * output) / d each input (a list), one batched engine call."""
    if len(xs) == 1 and not _multi(model):
        return [model._output_gradients(xs[0], up)[1]]
    return model._output_gradients_list(xs, up)[1]


def _upstream(model, out_size, n, target, outputs=None):
    """Which output to explain: target=None means the only output, or for several outputs each
    row's predicted (arg-max) class; an int picks that output for every row; an array one per row."""
    up = np.zeros((n, out_size), np.float32)
    if target is None:
        if out_size == 1:
            up[:] = 1.0
            return up
        idx = np.asarray(outputs).reshape(n, -1).argmax(axis=1)
    else:
        idx = np.broadcast_to(np.asarray(target, dtype=np.int64).reshape(-1), (n,))
        if idx.size and (idx.min() < 0 or idx.max() >= out_size):
            raise ValueError(f"target must be in [0, {out_size}) (the model has {out_size} outputs), got {target!r}")
    up[np.arange(n), idx] = 1.0
    return up


def _out_size(model):
    model._require_built()
    return int(sum(model._engine.out_sizes))


def input_gradients(model, x, target=None):
    """d output / d input for each row of x (same shape as x; per input, as x came, for a
    multi-input model). target: which output (see module doc)."""
    xs, pack = _as_list(model, x)
    k = _out_size(model)
    n = xs[0].shape[0]
    outputs = model.predict(xs if len(xs) > 1 else xs[0]) if (target is None and k > 1) else None
    return pack(_grads(model, xs, _upstream(model, k, n, target, outputs)))


def gradient_x_input(model, x, target=None):
    """input x (d output / d input): a first-order attribution relative to an all-zero input."""
    xs, pack = _as_list(model, x)
    g = input_gradients(model, xs if len(xs) > 1 else xs[0], target)
    return pack([a * b for a, b in zip(xs, g if len(xs) > 1 else [g])])


def integrated_gradients(model, x, baseline=None, steps=50, target=None, max_rows=16384):
    """Integrated gradients (Sundararajan et al., 2017): (x - baseline) times the average output
    gradient on the straight path from baseline to x, by the trapezoid rule over `steps`
    intervals. Attributions of a row sum to f(x) - f(baseline) up to the quadrature error
    (completeness). baseline: None (zeros), one sample (e.g. the training mean, broadcast) or one
    per row (per input, as x, for a multi-input model). All rows x (steps + 1) points are
    evaluated in batched engine calls."""
    xs, pack = _as_list(model, x)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"integrated_gradients: steps must be a positive int, got {steps!r}")
    n = xs[0].shape[0]
    if baseline is None:
        bs = [np.zeros_like(a) for a in xs]
    else:
        bl = _as_list(model, baseline)[0] if len(xs) > 1 else [baseline]
        bs = []
        for a, b in zip(xs, bl):
            b = np.asarray(b, dtype=np.float32)
            try:
                bs.append(np.broadcast_to(b, a.shape))
            except ValueError:
                raise ValueError(f"integrated_gradients: baseline of shape {b.shape} does not broadcast to the "
                                 f"inputs' shape {a.shape}") from None
    k = _out_size(model)
    outputs = model.predict(xs if len(xs) > 1 else xs[0]) if (target is None and k > 1) else None
    up_rows = _upstream(model, k, n, target, outputs)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float64)
    wts = np.full(steps + 1, 1.0 / steps)
    wts[[0, -1]] *= 0.5  # trapezoid
    diffs = [(a - b).astype(np.float32) for a, b in zip(xs, bs)]
    m = steps + 1
    rows_per_block = max(1, int(max_rows) // m)
    avgs = [np.empty(a.shape, np.float64) for a in xs]
    for r0 in range(0, n, rows_per_block):
        r1 = min(n, r0 + rows_per_block)
        pts = []
        for b, d in zip(bs, diffs):
            feat = d.shape[1:]
            # (rows, m, *feat): sample-major so each sample's path is contiguous
            p = b[r0:r1, None] + alphas.astype(np.float32).reshape((1, m) + (1,) * len(feat)) * d[r0:r1, None]
            pts.append(np.ascontiguousarray(p.reshape(((r1 - r0) * m,) + feat), dtype=np.float32))
        up = np.repeat(up_rows[r0:r1], m, axis=0)
        for avg, g, d in zip(avgs, _grads(model, pts, up), diffs):
            g = g.reshape((r1 - r0, m) + d.shape[1:]).astype(np.float64)
            avg[r0:r1] = np.tensordot(wts, np.moveaxis(g, 1, 0), axes=1)
    return pack([(avg * d).astype(np.float32) for avg, d in zip(avgs, diffs)])


def _score_fn(metric):
    """(callable(y_true, y_pred) -> float, greater_is_better)."""
    if callable(metric) and not isinstance(metric, (str, metrics_mod.Metric)):
        return metric, True
    m = metrics_mod.get(metric)
    name = m.name.lower()
    lower = any(w in name for w in callbacks_mod._MIN_WORDS)  # the callbacks' word list

    def score(y_true, y_pred):
        m.reset_state()
        m.update_state(y_true, y_pred)
        return float(m.result())
    return score, not lower


def permutation_importance(model, x, y, metric="auc", n_repeats=5, seed=None, batch_size=None,
                           greater_is_better=None):
    """How much the score drops when one feature's column is shuffled (Breiman; scikit-learn's
    permutation_importance), on a validation set.

    metric: a metric name or Metric ('auc', 'accuracy', 'mse', ...) or a function
    score(y_true, y_pred) (higher is better unless greater_is_better=False). Each feature's
    n_repeats shuffled copies are scored with one predict call. Returns a dict with
    'importances' (features x n_repeats), 'importances_mean', 'importances_std' and
    'baseline_score'; positive importance means the feature helps."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    y = np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"permutation_importance takes tabular x of shape (samples, features), got {x.shape}")
    n, f = x.shape
    if len(y) != n:
        raise ValueError(f"permutation_importance: y has {len(y)} samples but x has {n}")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ValueError(f"permutation_importance: n_repeats must be a positive int, got {n_repeats!r}")
    score, gib = _score_fn(metric)
    if greater_is_better is not None:
        gib = bool(greater_is_better)
    sign = 1.0 if gib else -1.0
    bs = batch_size or 1024
    base = score(y, model.predict(x, batch_size=bs))
    rng = np.random.default_rng(seed)
    imp = np.empty((f, n_repeats))
    big = np.tile(x, (n_repeats, 1))  # n_repeats copies of x; one column permuted at a time
    for j in range(f):
        perms = rng.permuted(np.tile(np.arange(n), (n_repeats, 1)), axis=1)
        big[:, j] = x[perms.reshape(-1), j]
        p = model.predict(big, batch_size=bs).reshape(n_repeats, n, -1)
        big[:, j] = np.tile(x[:, j], n_repeats)
        imp[j] = [sign * (base - score(y, p[r])) for r in range(n_repeats)]
    return {"importances": imp, "importances_mean": imp.mean(axis=1), "importances_std": imp.std(axis=1),
            "baseline_score": base}


def top_reasons(model, x_row, feature_names=None, k=3, method="integrated_gradients", baseline=None,
                direction="up", target=None, steps=50):
    """The k features that moved one sample's score the most, as a list of dicts
    {'feature', 'value', 'attribution'} sorted by importance.

    method: 'integrated_gradients' (default; baseline e.g. the training mean), 'gradient_x_input'
    or 'input_gradients'. direction: 'up' (features that raised the score: the reasons for a high
    default-risk score), 'down' (features that lowered it) or 'abs' (largest either way)."""
    multi = _multi(model)
    if multi:  # one sample per input; features named input[i] unless names are given
        xs, _ = _as_list(model, x_row)
        x = [a.reshape(1, -1) for a in xs]
    else:
        x = np.asarray(x_row, dtype=np.float32).reshape(1, -1)
    if method == "integrated_gradients":
        a = integrated_gradients(model, x, baseline=baseline, steps=steps, target=target)
    elif method == "gradient_x_input":
        a = gradient_x_input(model, x, target)
    elif method == "input_gradients":
        a = input_gradients(model, x, target)
    else:
        raise ValueError(f"top_reasons: unknown method {method!r}; use 'integrated_gradients', "
                         "'gradient_x_input' or 'input_gradients'")
    if multi:
        default = [f"{nm}[{i}]" for nm, xi in zip(model.input_names, x) for i in range(xi.size)]
        a = np.concatenate([ai.reshape(-1) for ai in a])
        x = np.concatenate([xi.reshape(-1) for xi in x])[None]
    else:
        default = None
    a = a.reshape(-1)
    names = list(feature_names) if feature_names is not None else (default or [f"x{i}" for i in range(a.size)])
    if len(names) != a.size:
        raise ValueError(f"top_reasons: {len(names)} feature names for {a.size} features")
    if direction == "up":
        order = np.argsort(-a, kind="stable")
        order = order[a[order] > 0]
    elif direction == "down":
        order = np.argsort(a, kind="stable")
        order = order[a[order] < 0]
    elif direction == "abs":
        order = np.argsort(-np.abs(a), kind="stable")
    else:
        raise ValueError(f"top_reasons: direction must be 'up', 'down' or 'abs', got {direction!r}")
    return [{"feature": names[i], "value": float(x[0, i]), "attribution": float(a[i])} for i in order[:k]]
