"""Dense, Activation and Masking."""
import numpy as np

from .. import activations, initializers, regularizers
from .. import _kernels as K
from .base import Layer

__all__ = ["Dense", "Activation", "Masking"]


class Dense(Layer):
    """y = activation(x @ kernel + bias); kernel is (input_dim, units) as in Keras."""

    _splittable = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if activity_regularizer is not None or kernel_constraint is not None or bias_constraint is not None:
            raise ValueError("Dense: activity_regularizer and weight constraints are not supported yet")
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units = units
        self.activation = activations.serialize(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"Dense {self.name!r} needs inputs with a feature axis")
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                        regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, regularizer=self.bias_regularizer)

    @property
    def kernel(self):
        return self._weights[0]

    @property
    def bias(self):
        return self._weights[1] if self.use_bias else None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def make_nodes(self, input_shape, params, grads, split_activation=False):
        name = "linear" if split_activation else self.activation
        act, alpha = activations.get_id(name)
        steps = int(np.prod(input_shape[:-1], dtype=np.int64))  # rank > 2: Dense on the last axis
        return [K.dense_node(input_shape[-1], self.units, self.use_bias, act, alpha, params, grads, steps)]

    def _check_call_shape(self, shape):
        if shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"Dense {self.name!r} holds a kernel for {self.kernel.shape[0]} input features; "
                             f"it cannot be called on input shape (None, {', '.join(map(str, shape))})")

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}


class Activation(Layer):
    """Applies an activation function (softmax over the last axis)."""

    _splittable = True
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.serialize(activation)

    def make_nodes(self, input_shape, params, grads, split_activation=False):
        if split_activation or self.activation == "linear":
            return []
        act, alpha = activations.get_id(self.activation)
        size = 1
        for s in input_shape:
            size *= s
        return [K.act_node(size, input_shape[-1], act, alpha)]

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class Masking(Layer):
    """Keras `Masking(mask_value=0.0)` for sequences (timesteps, features): a step whose
    features all equal mask_value is skipped by the recurrent layers after it (their state
    carries over it and it gets no gradient) and comes out of this layer as zeros. The mask
    passes through elementwise and normalisation layers and through recurrent layers that
    return sequences, as in Keras."""

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        try:
            v = float(mask_value)
        except (TypeError, ValueError):
            raise TypeError(f"Masking: mask_value must be a number, got {mask_value!r}") from None
        if not np.isfinite(v):
            raise ValueError(f"Masking: mask_value must be finite, got {mask_value!r}")
        self.mask_value = v

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                f"Masking {self.name!r} expects sequences of shape (timesteps, features), got "
                f"input shape (None, {', '.join(map(str, input_shape))})")

    def make_nodes(self, input_shape, params, grads):
        return [K.masking_node(int(input_shape[0]), int(input_shape[1]), self.mask_value)]

    def compute_mask(self, inputs):
        """The step mask [batch, timesteps] of an input array (True = a real step)."""
        return np.any(np.asarray(inputs, np.float32) != np.float32(self.mask_value), axis=-1)

    def call(self, inputs):
        x = np.asarray(inputs, np.float32)
        return x * self.compute_mask(x)[..., None]

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
