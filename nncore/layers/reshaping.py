"""Flatten and Reshape: per-sample vectors are already flat in the engine, so these layers only
change the shape bookkeeping and make no node (except Flatten of channels_first data, one
transpose)."""
from .. import _kernels as K
from .base import Layer
from .conv import _data_format

__all__ = ["Flatten", "Reshape"]


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
