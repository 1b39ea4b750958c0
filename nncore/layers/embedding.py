"""Embedding: integer indices -> dense vectors (Keras semantics)."""
import warnings

import numpy as np

from .. import _kernels as K
from .. import initializers
from .base import Layer

__all__ = ["Embedding"]

_MAX_INDEX = 1 << 24  # indices travel as float32 through the engine: exact below 2^24


class Embedding(Layer):
    """Maps each index in [0, input_dim) to a row of the (input_dim, output_dim) table
    "embeddings". Input: (batch, length) integers (floats are truncated toward zero, as Keras's
    cast); output: (batch, length, output_dim). An index outside [0, input_dim) is a ValueError,
    checked before training or prediction starts and again in C (never read out of bounds).
    embeddings_initializer 'uniform' is Keras's RandomUniform(-0.05, 0.05). mask_zero=True:
    index 0 is padding, and the recurrent layers after it skip those steps (Keras masking)."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 input_length=None, **kwargs):
        if input_length is not None and kwargs.get("input_shape") is None and \
                kwargs.get("batch_input_shape") is None:
            warnings.warn("Embedding: input_length is deprecated in Keras 3; use input_shape=(length,)",
                          DeprecationWarning, stacklevel=2)
            kwargs["input_shape"] = (int(input_length),)
        super().__init__(**kwargs)
        for name, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Embedding: {name} must be a positive int, got {v!r}")
        if input_dim > _MAX_INDEX:
            raise ValueError(f"Embedding: input_dim={input_dim} is above 2^24, which float32 inputs "
                             "cannot index exactly")
        if embeddings_constraint is not None:
            raise ValueError("Embedding: embeddings_constraint is not supported yet (pass None)")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = embeddings_regularizer
        self.mask_zero = bool(mask_zero)

    def build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"Embedding {self.name!r} expects samples of indices of shape (length,), "
                             f"got input shape (None, {', '.join(map(str, input_shape))})")
        init = self.embeddings_initializer
        if isinstance(init, str) and init.lower() == "uniform":
            init = initializers.RandomUniform(-0.05, 0.05)
        self.add_weight("embeddings", (self.input_dim, self.output_dim), init,
                        regularizer=self.embeddings_regularizer)

    @property
    def embeddings(self):
        return self._weights[0] if self._weights else None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def make_nodes(self, input_shape, params, grads):
        return [K.embedding_node(int(input_shape[0]), self.input_dim, self.output_dim, params, grads,
                                 self.mask_zero)]

    def _check_input(self, x, what="x"):
        """ValueError naming the first bad index (x: the float32 model input)."""
        x = np.asarray(x)
        t = np.trunc(x)
        bad = ~((t >= 0) & (t < self.input_dim))  # NaN is bad too
        if np.any(bad):
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"Embedding {self.name!r}: {what}{list(pos)} = {float(x[pos]):g} is not an index in "
                             f"[0, {self.input_dim}) (input_dim={self.input_dim})")

    def get_config(self):
        from .. import regularizers
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(regularizers.get(self.embeddings_regularizer)),
                "embeddings_constraint": None, "mask_zero": self.mask_zero}
