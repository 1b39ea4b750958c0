"""Utilities: seeding, label encoding, time-series windows."""
import random

import numpy as np

_state = {"rng": np.random.default_rng()}


def set_random_seed(seed):
    """Seed Python's, NumPy's and nncore's generators (weight init, shuffling, dropout)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))
    _state["rng"] = np.random.default_rng(int(seed))


def rng():
    """nncore's global generator (reset by set_random_seed)."""
    return _state["rng"]


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer labels (Keras's `utils.to_categorical`)."""
    y = np.asarray(y)
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("to_categorical expects integer class labels")
    y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.size and y.min() < 0:
        raise ValueError("to_categorical: labels must be >= 0")
    n = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and y.max() >= n:
        raise ValueError(f"to_categorical: label {int(y.max())} out of range for num_classes={n}")
    out = np.zeros(y.shape + (n,), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


def timeseries_windows(data, targets=None, sequence_length=None, sequence_stride=1, sampling_rate=1,
                       start_index=None, end_index=None):
    """Sliding windows over a time series, as Keras's `timeseries_dataset_from_array` but returning
    arrays instead of a dataset.

    Window i covers data[s + p_i + k * sampling_rate] for k < sequence_length, where s =
    start_index and p_i = i * sequence_stride; its target is targets[s + p_i] (Keras's pairing:
    to predict the value after a window pass targets = data[sequence_length:]). Windows must end
    before end_index. Returns (x, y) with x of shape (num_windows, sequence_length,
    *data.shape[1:]), or x alone when targets is None. Built with one sliding_window_view (no
    per-window loop)."""
    a = np.asarray(data)
    if a.ndim == 0:
        raise ValueError("timeseries_windows: data must have a time axis, got a scalar")
    for name, v in (("sequence_length", sequence_length), ("sequence_stride", sequence_stride),
                    ("sampling_rate", sampling_rate)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"timeseries_windows: {name} must be a positive int, got {v!r}")
    n = a.shape[0]
    start = 0 if start_index is None else int(start_index)
    end = n if end_index is None else int(end_index)
    if not 0 <= start < n:
        raise ValueError(f"timeseries_windows: start_index={start} must be in [0, {n}) for a series of {n} steps")
    if not start < end <= n:
        raise ValueError(f"timeseries_windows: end_index={end} must be in ({start}, {n}]")
    span = (sequence_length - 1) * sampling_rate + 1
    num = end - start - span + 1
    t = None
    if targets is not None:
        t = np.asarray(targets)
        if t.ndim == 0:
            raise ValueError("timeseries_windows: targets must have a time axis, got a scalar")
        if num >= 1 and t.shape[0] <= start:
            raise ValueError(f"timeseries_windows: targets has {t.shape[0]} steps, none at or after "
                             f"start_index={start}")
        num = min(num, t.shape[0] - start)
    if num < 1:
        raise ValueError(f"timeseries_windows: a window spans {span} steps (sequence_length={sequence_length}, "
                         f"sampling_rate={sampling_rate}) but the series has only {end - start} steps between "
                         f"start_index={start} and end_index={end}")
    seg = a[start:start + num - 1 + span]
    win = np.lib.stride_tricks.sliding_window_view(seg, span, axis=0)  # (num, *feat, span)
    win = win[::sequence_stride, ..., ::sampling_rate]
    x = np.ascontiguousarray(np.moveaxis(win, -1, 1))
    if t is None:
        return x
    y = np.ascontiguousarray(t[start:start + num:sequence_stride])
    return x, y
