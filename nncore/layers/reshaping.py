"""Flatten and Reshape: per-sample vectors are already flat in the engine, so these layers only
change the shape bookkeeping and make no node (except Flatten of channels_first data, one
transpose)."""
from .. import _kernels as K
from .base import Layer
from .conv import _data_format

__all__ = ["Flatten", "Reshape", "RepeatVector", "Permute", "TimeDistributed"]
import numpy as np


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1*d2*...), row-major. As in Keras, data_format=
    'channels_first' moves the channel axis last before flattening, so that the Dense weights
    after it are the same for a model in either data format."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)

    def compute_output_shape(self, input_shape):
        n = 1
        for s in input_shape:
            n *= s
        return (n,)

    def make_nodes(self, input_shape, params, grads):
        if self.data_format == "channels_last" or len(input_shape) < 2:
            return []
        C, S = input_shape[0], self.compute_output_shape(input_shape)[0] // input_shape[0]
        return [K.transpose_node(C, S, 1)]

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshape samples to target_shape (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            t = tuple(int(s) for s in target_shape)
        except TypeError:
            raise ValueError(f"Reshape: target_shape must be a tuple of ints, got {target_shape!r}") from None
        if sum(1 for s in t if s == -1) > 1 or any(s == 0 or s < -1 for s in t):
            raise ValueError(f"Reshape: target_shape must hold positive sizes and at most one -1, got {target_shape!r}")
        self.target_shape = t

    def compute_output_shape(self, input_shape):
        n = 1
        for s in input_shape:
            n *= s
        known = 1
        for s in self.target_shape:
            if s != -1:
                known *= s
        if -1 in self.target_shape:
            if n % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape input of shape "
                                 f"{tuple(input_shape)} ({n} values) into {self.target_shape}")
            return tuple(n // known if s == -1 else s for s in self.target_shape)
        if known != n:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape input of shape "
                             f"{tuple(input_shape)} ({n} values) into {self.target_shape}")
        return self.target_shape

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features)."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"RepeatVector: n must be a positive int, got {n!r}")
        self.n = int(n)

    def build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"RepeatVector {self.name!r} expects (batch, features), got input shape "
                             f"(None, {', '.join(map(str, input_shape))})")

    def compute_output_shape(self, input_shape):
        return (self.n,) + tuple(input_shape)

    def make_nodes(self, input_shape, params, grads):
        d = int(input_shape[0])
        return [K.gather_node(d, np.tile(np.arange(d), self.n))]

    def call(self, inputs):
        x = np.asarray(inputs, np.float32)
        return np.repeat(x[:, None, :], self.n, axis=1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Permute(Layer):
    """Permutes the per-sample axes: dims is a permutation of 1..rank (Keras)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            d = tuple(int(v) for v in dims)
        except TypeError:
            raise ValueError(f"Permute: dims must be a tuple of ints, got {dims!r}") from None
        if sorted(d) != list(range(1, len(d) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(d)}, got {dims!r}")
        self.dims = d

    def build(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ValueError(f"Permute {self.name!r}: dims {self.dims} do not fit input shape "
                             f"(None, {', '.join(map(str, input_shape))})")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[d - 1] for d in self.dims)

    def make_nodes(self, input_shape, params, grads):
        idx = np.arange(int(np.prod(input_shape))).reshape(input_shape)
        perm = idx.transpose([d - 1 for d in self.dims]).reshape(-1)
        if np.array_equal(perm, np.arange(perm.size)):
            return []
        return [K.gather_node(perm.size, perm)]

    def call(self, inputs):
        return np.transpose(np.asarray(inputs, np.float32), (0,) + self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class TimeDistributed(Layer):
    """Applies `layer` to every step of (batch, steps, ...): Dense (one GEMM over batch*steps
    rows), Activation and Dropout. The weights are the inner layer's (Keras)."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        from .core import Activation, Dense
        from .regularization import Dropout
        if isinstance(layer, dict):
            from ..graph import layer_from_config
            layer = layer_from_config(layer)
        if not isinstance(layer, (Dense, Activation, Dropout)):
            raise ValueError(f"TimeDistributed: supports Dense, Activation and Dropout, got "
                             f"{type(layer).__name__}")
        self.layer = layer
        self._specs = layer._specs      # one list: the arena's views reach the inner layer too
        self._weights = layer._weights

    @property
    def _splittable(self):
        return self.layer._splittable

    @property
    def activation(self):
        return getattr(self.layer, "activation", None)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"TimeDistributed {self.name!r} expects (batch, steps, ...), got input shape "
                             f"(None, {', '.join(map(str, input_shape))})")
        self.layer._build_once(tuple(input_shape[1:]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(self.layer.compute_output_shape(tuple(input_shape[1:])))

    def make_nodes(self, input_shape, params, grads, **kw):
        return self.layer.make_nodes(tuple(input_shape), params, grads, **kw)

    def get_config(self):
        from ..graph import _class_name
        return {**super().get_config(),
                "layer": {"class_name": _class_name(self.layer), "config": self.layer.get_config()}}
