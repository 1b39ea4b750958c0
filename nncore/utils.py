"""Utilities: seeding, label encoding, gradient checks."""
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
