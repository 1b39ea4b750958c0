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
        self._nodes = []       # symbolic calls (nncore.graph.Node), in call order
        self._arena = None     # the weight arena holding this layer's weights (models.py)

    # ---- to implement -------------------------------------------------------------------
    def build(self, input_shape):
        """Create weights for an input of `input_shape` (no batch dim)."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def make_nodes(self, input_shape, params, grads):
        """C nodes computing this layer on flat per-sample vectors ([] = pass-through)."""
        return []

    # True for layers that take a list of tensors (merges)
    _multi_input = False

    # ---- calls --------------------------------------------------------------------------
    def __call__(self, inputs, *args, **kwargs):
        """On symbolic tensors (nn.Input and what layers make of them): records the call and
        returns the output tensor (Keras's functional API). On arrays: computes the layer."""
        from ..graph import KerasTensor
        flat = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        sym = [isinstance(t, KerasTensor) for t in flat]
        if any(sym):
            if not all(sym):
                raise TypeError(f"layer {self.name!r}: called on a mix of symbolic tensors and arrays")
            if args or any(v is not None and v is not False for v in kwargs.values()):
                raise ValueError(f"layer {self.name!r}: extra call arguments "
                                 f"({', '.join(sorted(kwargs)) or 'positional'}) are not supported in a "
                                 f"functional model")
            return self._call_symbolic(inputs, flat)
        return self.call(inputs, *args, **kwargs)

    def call(self, inputs, *args, **kwargs):
        raise TypeError(f"layer {self.name!r} ({type(self).__name__}) cannot be called on arrays; "
                        f"use it in a model (nn.Sequential or nn.Model)")

    def _call_symbolic(self, inputs, flat):
        from ..graph import KerasTensor, Node
        as_list = isinstance(inputs, (list, tuple))
        if self._multi_input:
            if not as_list or len(flat) < 2:
                raise ValueError(f"layer {self.name!r} ({type(self).__name__}) takes a list of at least "
                                 f"2 tensors, got {len(flat) if as_list else 'one tensor'}")
            shape = [t._shape for t in flat]
            self._check_inputs(flat)
        else:
            if as_list and len(flat) != 1:
                raise ValueError(f"layer {self.name!r} ({type(self).__name__}) takes one tensor, got a list "
                                 f"of {len(flat)}")
            shape = flat[0]._shape
            as_list = False
        if self.built and self._nodes:
            self._check_call_shape(shape)
        if not self.built:
            self.build(shape if self._multi_input else tuple(shape))
            self.built = True
        out_shape = tuple(self.compute_output_shape(shape))
        if not self._nodes:
            self.input_shape, self.output_shape = shape, out_shape
        node = Node(self, flat, as_list)
        out = KerasTensor(out_shape, node, 0, name=self.name)
        node.outputs.append(out)
        self._nodes.append(node)
        return out

    def _check_call_shape(self, shape):
        """A second call of a built layer must fit its weights (layers without weights take
        any shape their build accepts)."""
        first = self._nodes[0].input_shapes
        first = first if self._multi_input else first[0]
        if self._weights and tuple(map(tuple, shape) if self._multi_input else shape) != \
                tuple(map(tuple, first) if self._multi_input else first):
            raise ValueError(f"layer {self.name!r} was first called on input shape {_fmt(first)} and "
                             f"holds weights for it; it cannot be called on {_fmt(shape)}")
        if not self._weights and not self._multi_input:
            self.build(tuple(shape))  # re-validates the shape

    def _check_inputs(self, tensors):
        """Merges: check the input shapes (naming the layers that made them)."""

    @property
    def input(self):
        if not self._nodes:
            raise AttributeError(f"layer {self.name!r} has not been called on a symbolic tensor")
        n = self._nodes[0]
        return n.inputs if n.as_list else n.inputs[0]

    @property
    def output(self):
        if not self._nodes:
            raise AttributeError(f"layer {self.name!r} has not been called on a symbolic tensor")
        outs = self._nodes[0].outputs
        return outs[0] if len(outs) == 1 else list(outs)

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
        if budget is not None:  # the file's values replace these: no random draws to throw away
            value = np.zeros(shape, dtype=np.float32)
        else:
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
        self._params_changed()

    def _params_changed(self):
        """Weights were written from Python: every model running them refreshes packed copies."""
        if self._arena is not None:
            self._arena.params_changed()

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


def _fmt(shape):
    if shape and isinstance(shape[0], tuple):
        return "[" + ", ".join(_fmt(s) for s in shape) + "]"
    return "(None, " + ", ".join(map(str, shape)) + ")" if shape else "(None,)"


class InputLayer(Layer):
    """Keras's InputLayer: the start of a model. `nn.Input(...)` makes one and returns its
    symbolic tensor; in a Sequential, either sets the input shape."""

    _is_input_layer = True

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, batch_shape=None,
                 input_shape=None, batch_input_shape=None, sparse=None, **kwargs):
        from ..graph import KerasTensor, Node
        if sparse:
            raise ValueError("Input: sparse inputs are not supported")
        if dtype not in (None, "float32", np.float32, "int32", "int64", np.int32, np.int64):
            raise ValueError(f"Input: dtype must be float32 (integer inputs such as Embedding indices "
                             f"travel as float32), got {dtype!r}")
        shape = shape if shape is not None else input_shape
        batch_shape = batch_shape if batch_shape is not None else batch_input_shape
        if batch_shape is not None:
            shape = tuple(batch_shape)[1:]
            batch_size = batch_size if batch_size is not None else tuple(batch_shape)[0]
        if shape is None:
            raise ValueError("Input needs a shape, e.g. nn.Input(shape=(30,))")
        shape = _shape_tuple(shape, "Input shape")
        if any(s is None for s in shape):
            raise ValueError(f"Input shape must be fully known (no None), got {shape}")
        super().__init__(name=name or _default_name("InputLayer"), **kwargs)
        self.batch_size = _batch_size(batch_size)
        self.shape = shape
        self.built = True
        self.input_shape = self.output_shape = shape
        node = Node(self, [], False)
        self._output = KerasTensor(shape, node, 0, name=self.name)
        node.outputs.append(self._output)
        self._nodes.append(node)

    def get_config(self):
        return {"name": self.name, "batch_shape": [self.batch_size] + list(self.shape), "dtype": "float32"}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("trainable", None)
        return cls(**config)

    def __repr__(self):
        return f"<InputLayer name={self.name!r} shape=(None, {', '.join(map(str, self.shape))})>"


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, sparse=None):
    """Keras's `Input`: a symbolic tensor of per-sample shape `shape`, the start of a functional
    model (nn.Model) or of a Sequential."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                      batch_shape=batch_shape, sparse=sparse)._output
