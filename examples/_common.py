"""Small helpers shared by the example scripts (not part of the nncore package)."""
import os
import sys
import time

import numpy as np

try:
    import nncore as nn
except ImportError:  # running from a source checkout: use the in-place build
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import nncore as nn

DATA_DIR = os.environ.get("NNCORE_DATA") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "..", "..", "shared", "data")


def data_path(name):
    """Path of a file in the shared data folder, or None when it is absent."""
    p = os.path.join(DATA_DIR, name)
    return p if os.path.exists(p) else None


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def best_threshold(y, p, cost_fn):
    """Threshold on p minimising cost_fn(tp, fp, fn, tn) over all distinct scores (vectorised)."""
    y = np.asarray(y).reshape(-1) > 0.5
    p = np.asarray(p, np.float64).reshape(-1)
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(~ys)
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]  # predict positive for p >= ps[last]
    tp, fp = tp[last], fp[last]
    fn, tn = ys.sum() - tp, (~ys).sum() - fp
    cost = cost_fn(tp, fp, fn, tn)
    i = int(np.argmin(cost))
    # threshold halfway to the next lower score, so "p >= thr" reproduces the choice
    nxt = ps[last[i] + 1] if last[i] + 1 < len(ps) else ps[last[i]] - 1e-6
    return float((ps[last[i]] + nxt) / 2), float(cost[i])


def normalizer(x_train):
    """A Normalization layer adapted to x_train."""
    layer = nn.layers.Normalization(input_shape=(x_train.shape[1],))
    layer.adapt(x_train)
    return layer
