"""The Layer base class: Keras's surface (name, trainable, weights, config) over C nodes.

A layer describes its weights in `build` (add_weight, in Keras's order and layouts) and its
computation in `make_nodes`, which returns the C nodes the engine runs. The model owns one
parameter arena: after building, every weight of every layer is a view into it, so the optimizer
updates all of them with one fused call and get_weights/set_weights keep Keras's layouts.
"""
import itertools

import threading

import numpy as np

from .. import initializers, regularizers

_uid = itertools.count()
_name_counts = {}


def _default_name(cls_name):
    snake = "".join("_" + c.lower() if c.isupper() else c for c in cls_name).lstrip("_")
    n = _name_counts.get(snake, 0)
    _name_counts[snake] = n + 1
    return snake if n == 0 else f"{snake}_{n}"


def _batch_size(b):
    if b is None:
        return None
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
        raise ValueError(f"batch size must be a positive int or None, got {b!r}")
    return int(b)


def _shape_tuple(shape, what):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(None if s is None else int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{what} must be a tuple of ints, got {shape!r}") from None
    if any(s is not None and s < 1 for s in shape):
        raise ValueError(f"{what} must have positive sizes, got {shape}")
    return shape



# set by saving.load_model while it rebuilds a model from a file (see add_weight)
_loading = threading.local()

class Layer:
    """Base of every layer. Subclasses implement build, compute_output_shape, make_nodes."""

    # True for layers whose final sigmoid/softmax the model may split off and merge into the
    # loss (make_nodes then gets split_activation=True).
    _splittable = False
    # Keras's supports_masking: a step mask (Masking, Embedding(mask_zero=True)) passes through
    # this layer to the recurrent layers after it. Layers that keep it: elementwise ones,
    # normalisation and recurrent layers that return sequences (see Sequential._make_program).
    supports_masking = False

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, input_dim=None,
                 batch_input_shape=None, batch_size=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{type(self).__name__}: only dtype='float32' is supported, got {dtype!r}")
        self.name = name or _default_name(type(self).__name__)
        self.trainable = bool(trainable)
        self.built = False
        self._specs = []       # (name, shape, initializer, trainable)
        self._weights = []     # arrays; views into the model arena once the model is built
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
            batch_size = batch_size if batch_size is not None else tuple(batch_input_shape)[0]
        # a fixed batch size (Keras: needed by stateful recurrent layers), or None
        self._batch_size_arg = _batch_size(batch_size)
        if input_dim is not None and input_shape is None:
            input_shape = (int(input_dim),)
        self._input_shape_arg = _shape_tuple(input_shape, "input_shape") if input_shape is not None else None
        self.input_shape = None
        self.output_shape = None

    # ---- to implement -------------------------------------------------------------------
    def build(self, input_shape):
        """Create weights for an input of `input_shape` (no batch dim)."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def make_nodes(self, input_shape, params, grads):
        """C nodes computing this layer on flat per-sample vectors ([] = pass-through)."""
        return []

    # ---- Keras surface ------------------------------------------------------------------
    def add_weight(self, name, shape, initializer="glorot_uniform", trainable=True, regularizer=None):
        """Declare a weight (in Keras's order). Non-trainable weights (moving statistics) are
        skipped by the optimizer; regularizers add their penalty in the C training step."""
        shape = tuple(int(s) for s in shape)
        budget = getattr(_loading, "budget", None)
        if budget is not None:  # loading a file: its arrays bound what the config may allocate
            n = int(np.prod(shape, dtype=np.float64))
            if n > budget[0]:
                raise ValueError(f"model file: layer {self.name!r} declares a weight {name} of shape "
                                 f"{shape}, more than the file's weight arrays hold")
            budget[0] -= n
        init = initializers.get(initializer)
        reg = regularizers.get(regularizer)
        value = np.asarray(init(shape, dtype="float32"), dtype=np.float32)
        if value.shape != shape:
            raise ValueError(f"initializer for {self.name}/{name} returned shape {value.shape}, expected {shape}")
        self._specs.append((name, shape, init, bool(trainable), reg))
        self._weights.append(value)
        return value

    def _build_once(self, input_shape):
        if not self.built:
            self.build(tuple(input_shape))
            self.built = True
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.compute_output_shape(self.input_shape))
        return self.output_shape

    @property
    def weights(self):
        return list(self._weights)

    @property
    def trainable_weights(self):
        return [w for w, s in zip(self._weights, self._specs) if s[3] and self.trainable]

    @property
    def non_trainable_weights(self):
        return [w for w, s in zip(self._weights, self._specs) if not (s[3] and self.trainable)]

    def count_params(self):
        return int(sum(int(np.prod(s[1])) for s in self._specs))

    def get_weights(self):
        return [np.array(w, copy=True) for w in self._weights]

    _nonnegative_weights = ()  # weight names that must be >= 0 (variances), checked by set_weights

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(f"layer {self.name!r} expects {len(self._weights)} weight arrays, got {len(weights)}")
        for (name, shape, *_), w in zip(self._specs, weights):
            w = np.asarray(w)
            if w.shape != shape:
                raise ValueError(f"layer {self.name!r} weight {name!r}: expected shape {shape}, got {w.shape}")
            if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
                raise TypeError(f"layer {self.name!r} weight {name!r}: expected real numbers, got {w.dtype}")
            if not np.all(np.isfinite(w)):
                raise ValueError(f"layer {self.name!r} weight {name!r} contains NaN or infinity")
            if name in self._nonnegative_weights and (w < 0).any():
                raise ValueError(f"layer {self.name!r} weight {name!r} must be >= 0 (a variance), "
                                 f"got {w.min():g}")
        for i, w in enumerate(weights):
            self._weights[i][...] = np.asarray(w, dtype=np.float32)
        model = getattr(self, "_model", None)
        if model is not None:
            model._params_changed()

    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": "float32"}
        if self._input_shape_arg is not None:
            cfg["batch_input_shape"] = (self._batch_size_arg,) + tuple(self._input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class InputSpec:
    """What `nn.Input(shape=...)` returns: the input shape of a Sequential."""

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, batch_shape=None):
        if batch_shape is not None:
            shape = tuple(batch_shape)[1:]
            batch_size = batch_size if batch_size is not None else tuple(batch_shape)[0]
        self.batch_size = _batch_size(batch_size)
        if shape is None:
            raise ValueError("Input needs a shape, e.g. nn.Input(shape=(30,))")
        self.shape = _shape_tuple(shape, "Input shape")
        if any(s is None for s in self.shape):
            raise ValueError(f"Input shape must be fully known (no None), got {self.shape}")
        self.name = name or "input"

    def __repr__(self):
        return f"<Input shape=(None, {', '.join(map(str, self.shape))})>"


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None):
    """Keras's `Input`: declares the per-sample input shape of a Sequential model."""
    return InputSpec(shape=shape, batch_size=batch_size, name=name, dtype=dtype, batch_shape=batch_shape)


InputLayer = Input
