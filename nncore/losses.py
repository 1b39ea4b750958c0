"""Losses with Keras's names and semantics (sum_over_batch_size reduction). The engine computes
them in C; these objects carry the kind and parameters, and can also be called on arrays."""
import numpy as np

from . import _kernels as K

# Ids match NNC_LOSS_* in csrc/include/nncore/nnc_elem.h.
MSE, MAE, HUBER, BINARY_CE, CATEGORICAL_CE, SPARSE_CATEGORICAL_CE, BINARY_FOCAL_CE = range(7)


class Loss:
    kind = None
    name = None

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction != "sum_over_batch_size":
            raise ValueError(f"{type(self).__name__}: only reduction='sum_over_batch_size' is supported")
        if name is not None:
            self.name = name
        self.from_logits = False

    @property
    def param(self):
        return 0.0

    @property
    def sparse(self):
        return self.kind == SPARSE_CATEGORICAL_CE

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Mean loss over the batch, like calling a Keras loss object."""
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        n = y_pred.shape[0]
        y_pred = y_pred.reshape(n, -1)
        if self.sparse:
            t = np.ascontiguousarray(np.asarray(y_true).reshape(n), dtype=np.int32)
            if t.size and (t.min() < 0 or t.max() >= y_pred.shape[1]):
                raise ValueError(f"labels must be in [0, {y_pred.shape[1]})")
        else:
            t = np.ascontiguousarray(np.asarray(y_true, dtype=np.float32).reshape(y_pred.shape))
        w = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float32).reshape(n)
        total, _ = K.loss(self.kind, y_pred, t, w, self.from_logits, self.param, 1.0, None, False)
        return float(total / max(n, 1))

    def get_config(self):
        return {"name": self.name, "reduction": "sum_over_batch_size"}


class MeanSquaredError(Loss):
    kind, name = MSE, "mean_squared_error"


class MeanAbsoluteError(Loss):
    kind, name = MAE, "mean_absolute_error"


class Huber(Loss):
    kind, name = HUBER, "huber_loss"

    def __init__(self, delta=1.0, **kwargs):
        super().__init__(**kwargs)
        if delta <= 0:
            raise ValueError(f"Huber: delta must be > 0, got {delta}")
        self.delta = float(delta)

    @property
    def param(self):
        return self.delta

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class _CrossEntropy(Loss):
    def __init__(self, from_logits=False, label_smoothing=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"{type(self).__name__}: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    @property
    def param(self):
        return self.label_smoothing

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class BinaryCrossentropy(_CrossEntropy):
    kind, name = BINARY_CE, "binary_crossentropy"


class CategoricalCrossentropy(_CrossEntropy):
    kind, name = CATEGORICAL_CE, "categorical_crossentropy"


class BinaryFocalCrossentropy(_CrossEntropy):
    """Keras's BinaryFocalCrossentropy: binary cross-entropy scaled by (1 - p_t)^gamma, which
    down-weights easy examples (Lin et al., 2017), and by alpha for positives / 1 - alpha for
    negatives when apply_class_balancing. For rare-event problems such as fraud."""
    kind, name = BINARY_FOCAL_CE, "binary_focal_crossentropy"

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, **kwargs):
        super().__init__(from_logits=from_logits, label_smoothing=label_smoothing, **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"BinaryFocalCrossentropy: alpha must be in [0, 1], got {alpha}")
        if not gamma >= 0.0:
            raise ValueError(f"BinaryFocalCrossentropy: gamma must be >= 0, got {gamma}")
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha, self.gamma = float(alpha), float(gamma)

    @property
    def param(self):
        return (self.label_smoothing, self.gamma, self.alpha, float(self.apply_class_balancing))

    def get_config(self):
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing,
                "alpha": self.alpha, "gamma": self.gamma}


class SparseCategoricalCrossentropy(Loss):
    kind, name = SPARSE_CATEGORICAL_CE, "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


_NAMES = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
}
_CLASSES = {c.__name__: c for c in set(_NAMES.values())}


def get(identifier):
    """A Loss from a Keras name, a class, a config dict or a Loss object."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown loss {identifier.get('class_name')!r}")
        cfg = dict(identifier.get("config", {}))
        cfg.pop("name", None)
        cfg.pop("reduction", None)
        return cls(**cfg)
    if isinstance(identifier, str):
        key = identifier if identifier in _CLASSES else identifier.lower()
        cls = _CLASSES.get(key) or _NAMES.get(key)
        if cls is not None:
            return cls()
    if identifier is None:
        raise ValueError("a loss is required: compile(loss='mse', ...)")
    raise ValueError(f"unknown loss {identifier!r}; expected one of: {', '.join(sorted(_NAMES))} "
                     f"(custom Python loss functions are not supported by the C engine)")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
