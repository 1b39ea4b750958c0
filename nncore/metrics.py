"""Metrics with Keras's names. Each update is vectorised over a whole chunk of predictions
(no per-sample Python loop); results are weighted running means as in Keras."""
import numpy as np


class Metric:
    name = "metric"

    def __init__(self, name=None, dtype=None):
        if name is not None:
            self.name = name
        self.reset_state()

    def reset_state(self):
        self._total = 0.0
        self._count = 0.0

    def _values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        v = np.asarray(self._values(np.asarray(y_true), np.asarray(y_pred)), dtype=np.float64)
        if sample_weight is None:
            self._total += float(v.sum())
            self._count += v.size
        else:
            w = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64).reshape(-1), v.shape)
            self._total += float((v * w).sum())
            self._count += float(w.sum())

    def result(self):
        return self._total / self._count if self._count else 0.0

    def get_config(self):
        return {"name": self.name}


def _rows(y, n):
    return y.reshape(n, -1)


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name, dtype)

    def _values(self, y_true, y_pred):
        n = y_pred.shape[0]
        return ((_rows(y_pred, n) > self.threshold) == (_rows(y_true, n) > 0.5)).mean(axis=1)


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def _values(self, y_true, y_pred):
        n = y_pred.shape[0]
        return _rows(y_pred, n).argmax(axis=1) == _rows(y_true, n).argmax(axis=1)


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def _values(self, y_true, y_pred):
        n = y_pred.shape[0]
        return _rows(y_pred, n).argmax(axis=1) == y_true.reshape(n).astype(np.int64)


class Accuracy(Metric):
    """'accuracy' as Keras resolves it: binary, sparse or categorical from the shapes."""
    name = "accuracy"

    def __init__(self, name=None, dtype=None):
        self._impl = None
        super().__init__(name, dtype)

    def _values(self, y_true, y_pred):
        if self._impl is None:
            n = y_pred.shape[0]
            out = _rows(y_pred, n).shape[1]
            t = y_true.reshape(n, -1).shape[1] if y_true.size else 1
            if out == 1:
                self._impl = BinaryAccuracy()
            elif t == 1:
                self._impl = SparseCategoricalAccuracy()
            else:
                self._impl = CategoricalAccuracy()
        return self._impl._values(y_true, y_pred)


class MeanSquaredError(Metric):
    name = "mean_squared_error"

    def _values(self, y_true, y_pred):
        n = y_pred.shape[0]
        d = _rows(y_pred, n).astype(np.float64) - _rows(y_true, n)
        return (d * d).mean(axis=1)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"

    def _values(self, y_true, y_pred):
        n = y_pred.shape[0]
        return np.abs(_rows(y_pred, n).astype(np.float64) - _rows(y_true, n)).mean(axis=1)


class Mean(Metric):
    """Weighted mean of values (Keras's `metrics.Mean`)."""
    name = "mean"

    def update_state(self, values, sample_weight=None):
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        w = np.ones_like(v) if sample_weight is None else np.broadcast_to(np.asarray(sample_weight, np.float64).reshape(-1), v.shape)
        self._total += float((v * w).sum())
        self._count += float(w.sum())


_NAMES = {
    "accuracy": Accuracy, "acc": Accuracy, "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy, "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
}
_CLASSES = {c.__name__: c for c in set(_NAMES.values())}


def get(identifier):
    """A Metric from a Keras name, a class or a Metric object (a fresh copy per model)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is not None:
            m = cls()
            if identifier.lower() in ("acc", "mse", "mae"):
                m.name = identifier.lower()
            return m
    raise ValueError(f"unknown metric {identifier!r}; expected one of: {', '.join(sorted(_NAMES))}")
