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

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


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


class RootMeanSquaredError(Metric):
    """sqrt of the weighted mean squared error (Keras's `RootMeanSquaredError`)."""
    name = "root_mean_squared_error"

    def _values(self, y_true, y_pred):
        return MeanSquaredError._values(self, y_true, y_pred)

    def result(self):
        return float(np.sqrt(super().result()))


class MeanAbsolutePercentageError(Metric):
    """100 * mean(|y - p| / max(|y|, 1e-7)), Keras's formula."""
    name = "mean_absolute_percentage_error"

    def _values(self, y_true, y_pred):
        n = y_pred.shape[0]
        t = _rows(y_true, n).astype(np.float64)
        d = np.abs((t - _rows(y_pred, n)) / np.maximum(np.abs(t), _EPS))
        return 100.0 * d.mean(axis=1)


_EPS = 1e-7  # Keras's backend.epsilon()


def _weights(sample_weight, y):
    """Sample weights broadcast to y's shape (rows x values), float64, or None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.size != y.shape[0]:
        raise ValueError(f"sample_weight has {w.size} values for {y.shape[0]} samples")
    return np.broadcast_to(w[:, None], y.shape)


def _div(a, b):
    """a / b with 0 where b == 0 (Keras's divide_no_nan)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = np.zeros(np.broadcast(a, b).shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


class _Confusion(Metric):
    """True/false positives/negatives at a set of thresholds, accumulated over chunks.

    A prediction counts as positive at threshold t when p > t (Keras). For each sample we find
    how many thresholds lie strictly below p (np.searchsorted), histogram those counts with the
    labels and weights (np.bincount), and a reverse cumulative sum gives every threshold's
    counts at once: O(n log T) per chunk, no loop over thresholds or samples."""

    def __init__(self, thresholds, class_id=None, name=None, dtype=None):
        self.thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(self.thresholds)):
            raise ValueError("thresholds must be finite numbers")
        self._order = np.argsort(self.thresholds, kind="stable")
        self._sorted = self.thresholds[self._order]
        self.class_id = None if class_id is None else int(class_id)
        self._even = False  # set by AUC for its evenly spaced default thresholds
        super().__init__(name, dtype)

    def reset_state(self):
        k = self.thresholds.size
        self.true_positives = np.zeros(k)
        self.false_positives = np.zeros(k)
        self.true_negatives = np.zeros(k)
        self.false_negatives = np.zeros(k)

    def _prepare(self, y_true, y_pred, sample_weight):
        y_pred = np.asarray(y_pred)
        n = y_pred.shape[0] if y_pred.ndim else 1
        p = y_pred.reshape(n, -1)
        t = np.asarray(y_true).reshape(n, -1)
        if t.shape != p.shape:
            raise ValueError(f"{self.name}: y_true has shape {np.shape(y_true)} but y_pred has {y_pred.shape}")
        w = _weights(sample_weight, p)
        if self.class_id is not None:
            if not 0 <= self.class_id < p.shape[1]:
                raise ValueError(f"{self.name}: class_id={self.class_id} but predictions have {p.shape[1]} values")
            p, t = p[:, self.class_id], t[:, self.class_id]
            w = None if w is None else w[:, self.class_id]
        return t.reshape(-1) > 0.5, p.reshape(-1), None if w is None else np.ascontiguousarray(w).reshape(-1)

    def _above(self, p):
        """For each prediction, how many (sorted) thresholds lie strictly below it."""
        if self._even:
            # Keras's bucket formula for evenly spaced thresholds (float32, as Keras computes it).
            T = self.thresholds.size
            b = np.multiply(p, np.float32(T - 1), dtype=np.float32)
            np.ceil(b, out=b)
            np.clip(b, 1, T, out=b)
            return b.astype(np.intp)
        if self._sorted.size == 1:
            return (p > self._sorted[0]).view(np.int8).astype(np.intp)
        return np.searchsorted(self._sorted, p, side="left")

    def update_state(self, y_true, y_pred, sample_weight=None):
        t, p, w = self._prepare(y_true, y_pred, sample_weight)
        if p.size == 0:
            return
        k = self.thresholds.size
        if k == 1 and w is None:  # one threshold, unweighted (Precision/Recall): plain counts
            pred = p > self.thresholds[0]
            tp = np.count_nonzero(pred & t)
            n_pos, n_pred = np.count_nonzero(t), np.count_nonzero(pred)
            self.true_positives += tp
            self.false_positives += n_pred - tp
            self.false_negatives += n_pos - tp
            self.true_negatives += t.size - n_pos - n_pred + tp
            return
        above = self._above(p)  # p > sorted[j] for j < above
        # one histogram over (label, bucket): negatives in [0, k], positives in [k+1, 2k+1]
        counts = np.bincount(above + (k + 1) * t, weights=w, minlength=2 * (k + 1))
        neg, pos = counts[:k + 1], counts[k + 1:]
        # count of samples with above > j, for j = 0..k-1
        tp = np.cumsum(pos[::-1])[::-1][1:]
        fp = np.cumsum(neg[::-1])[::-1][1:]
        P, N = pos.sum(), neg.sum()
        if k > 1:
            inv = np.empty(k, dtype=np.int64)
            inv[self._order] = np.arange(k)
            tp, fp = tp[inv], fp[inv]
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += P - tp
        self.true_negatives += N - fp

    def get_config(self):
        return {"name": self.name, "thresholds": self.thresholds.tolist(), "class_id": self.class_id}


class _ThresholdMetric(_Confusion):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        if top_k is not None:
            raise NotImplementedError(f"{type(self).__name__}: top_k is not supported")
        self._scalar = thresholds is None or np.ndim(thresholds) == 0
        super().__init__(0.5 if thresholds is None else thresholds, class_id, name, dtype)

    def result(self):
        r = self._ratio()
        return float(r[0]) if self._scalar else r

    def get_config(self):
        cfg = super().get_config()
        if self._scalar:
            cfg["thresholds"] = cfg["thresholds"][0]
        return cfg


class Precision(_ThresholdMetric):
    """tp / (tp + fp) with predictions > threshold (default 0.5) counted positive."""
    name = "precision"

    def _ratio(self):
        return _div(self.true_positives, self.true_positives + self.false_positives)


class Recall(_ThresholdMetric):
    """tp / (tp + fn) with predictions > threshold (default 0.5) counted positive."""
    name = "recall"

    def _ratio(self):
        return _div(self.true_positives, self.true_positives + self.false_negatives)


class AUC(_Confusion):
    """Area under the ROC or precision-recall curve, Keras's approximation: confusion counts at
    num_thresholds thresholds (0-eps, 1/(n-1), ..., 1+eps), summed with `summation_method`
    ('interpolation': trapezoids for ROC, Davis & Goadrich's interpolation for PR)."""
    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None,
                 dtype=None, thresholds=None, multi_label=False, num_labels=None, label_weights=None,
                 from_logits=False):
        curve = str(curve).upper()
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        summation_method = str(summation_method).lower()
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError("AUC: summation_method must be 'interpolation', 'minoring' or 'majoring', "
                             f"got {summation_method!r}")
        if multi_label:
            raise NotImplementedError("AUC: multi_label=True is not supported (labels are pooled)")
        if label_weights is not None:
            raise NotImplementedError("AUC: label_weights is not supported")
        self.curve, self.summation_method, self.from_logits = curve, summation_method, bool(from_logits)
        if thresholds is not None:
            inner = np.sort(np.asarray(thresholds, dtype=np.float64).reshape(-1))
            even = False
        else:
            if int(num_thresholds) <= 1:
                raise ValueError(f"AUC: num_thresholds must be > 1, got {num_thresholds}")
            inner = np.array([(i + 1) * 1.0 / (int(num_thresholds) - 1) for i in range(int(num_thresholds) - 2)])
            even = True
        thr = np.concatenate([[0.0 - _EPS], inner, [1.0 + _EPS]])
        self.num_thresholds = thr.size
        super().__init__(thr, None, name, dtype)
        self._even = even

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            y_pred = 1.0 / (1.0 + np.exp(-np.asarray(y_pred, dtype=np.float64)))
        super().update_state(y_true, y_pred, sample_weight)

    def _heights(self, y):
        if self.summation_method == "interpolation":
            return (y[:-1] + y[1:]) / 2.0
        if self.summation_method == "minoring":
            return np.minimum(y[:-1], y[1:])
        return np.maximum(y[:-1], y[1:])

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _div(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ok = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(ok, _div(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            logr = np.log(np.where(ratio > 0, ratio, 1.0))
        return float(np.sum(_div(slope * (dtp + intercept * logr), np.maximum(tp[1:] + fn[1:], 0))))

    def result(self):
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        recall = _div(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div(fp, fp + tn), recall
        else:
            x, y = recall, _div(tp, tp + fp)
        return float(np.sum((x[:-1] - x[1:]) * self._heights(y)))

    def get_config(self):
        cfg = {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
               "summation_method": self.summation_method, "from_logits": self.from_logits}
        if not self._even:  # explicit thresholds (without the two end points added here)
            cfg["thresholds"] = self.thresholds[1:-1].tolist()
        return cfg


class FBetaScore(Metric):
    """Keras 3's FBetaScore: per-class F-beta from accumulated tp/fp/fn.

    average: None (one score per class), 'micro', 'macro' or 'weighted' (by true-label weight).
    threshold: predictions > threshold are positive; None marks each row's maximum positive
    (Keras's rule, meant for one-hot multi-class outputs: for a single sigmoid output pass
    threshold=0.5)."""
    name = "fbeta_score"

    def __init__(self, average=None, beta=1.0, threshold=None, name=None, dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__}: average must be None, 'micro', 'macro' or 'weighted', "
                             f"got {average!r}")
        if not beta > 0:
            raise ValueError(f"{type(self).__name__}: beta must be > 0, got {beta}")
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"{type(self).__name__}: threshold must be in [0, 1], got {threshold}")
        self.average, self.beta = average, float(beta)
        self.threshold = None if threshold is None else float(threshold)
        super().__init__(name, dtype)

    def reset_state(self):
        self._tp = self._fp = self._fn = self._wt = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.asarray(y_pred, dtype=np.float64)
        n = y_pred.shape[0]
        p = y_pred.reshape(n, -1)
        t = np.asarray(y_true, dtype=np.float64).reshape(n, -1)
        if t.shape != p.shape:
            raise ValueError(f"{self.name}: y_true has shape {np.shape(y_true)} but y_pred has {y_pred.shape} "
                             "(F-scores take one column per class)")
        if self.threshold is None:
            pb = (p == p.max(axis=1, keepdims=True)).astype(np.float64)
        else:
            pb = (p > self.threshold).astype(np.float64)
        w = _weights(sample_weight, p)
        if w is not None:
            pb_w, t_w = pb * w, t * w
        else:
            pb_w, t_w = pb, t
        tp, fp, fn = (pb_w * t).sum(0), (pb_w * (1 - t)).sum(0), ((1 - pb) * t_w).sum(0)
        wt = t_w.sum(0)
        if self._tp is None:
            self._tp, self._fp, self._fn, self._wt = tp, fp, fn, wt
        else:
            if tp.shape != self._tp.shape:
                raise ValueError(f"{self.name}: the number of classes changed between updates")
            self._tp, self._fp, self._fn, self._wt = self._tp + tp, self._fp + fp, self._fn + fn, self._wt + wt

    def result(self):
        if self._tp is None:
            return 0.0
        tp, fp, fn = self._tp, self._fp, self._fn
        if self.average == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        precision = tp / (tp + fp + _EPS)
        recall = tp / (tp + fn + _EPS)
        b2 = self.beta ** 2
        f = precision * recall / (b2 * precision + recall + _EPS) * (1 + b2)
        if self.average == "weighted":
            return float(np.sum(f * self._wt / (self._wt.sum() + _EPS)))
        if self.average is not None:
            return float(np.mean(f))
        return f

    def get_config(self):
        return {"name": self.name, "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """Keras 3's F1Score(average=None|'micro'|'macro'|'weighted', threshold=None)."""
    name = "f1_score"

    def __init__(self, average=None, threshold=None, name=None, dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "average": self.average, "threshold": self.threshold}


_NAMES = {
    "accuracy": Accuracy, "acc": Accuracy, "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy, "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
    "auc": AUC, "precision": Precision, "recall": Recall,
    "f1_score": F1Score, "fbeta_score": FBetaScore,
}
_CLASSES = {c.__name__: c for c in set(_NAMES.values())}
_SHORT = ("acc", "mse", "mae", "mape", "rmse")


def get(identifier):
    """A Metric from a Keras name ('auc', 'precision', 'rmse', 'AUC', ...), a class or a Metric
    object (used as given; the model resets it)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, dict):  # serialize()'s form, as model files store it
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown metric class {identifier.get('class_name')!r}")
        try:
            return cls(**identifier.get("config", {}))
        except TypeError as e:
            raise ValueError(f"bad config for metric {identifier.get('class_name')}: {e}") from None
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is not None:
            m = cls()
            if identifier.lower() in _SHORT:
                m.name = identifier.lower()
            return m
    raise ValueError(f"unknown metric {identifier!r}; expected one of: {', '.join(sorted(_NAMES))}")


def serialize(metric):
    return {"class_name": type(metric).__name__, "config": metric.get_config()}
