"""Flatten and Reshape: per-sample vectors are already flat in the engine, so these layers only
change the shape bookkeeping and make no node."""
from .base import Layer

__all__ = ["Flatten", "Reshape"]


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1*d2*...), row-major (channels_last order, as Keras)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError("Flatten: only data_format='channels_last' is supported")
        self.data_format = "channels_last"

    def compute_output_shape(self, input_shape):
        n = 1
        for s in input_shape:
            n *= s
        return (n,)

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
