"""BatchNormalization, LayerNormalization and Normalization (Keras semantics, channels last)."""
import numpy as np

from .. import _kernels as K
from .. import initializers
from .base import Layer

__all__ = ["BatchNormalization", "LayerNormalization", "Normalization"]




def _last_axis(layer, axis, input_shape):
    """Validates that `axis` (Keras counts the batch dim: -1 or len(input_shape)) is the last
    axis; only channels-last normalisation is implemented."""
    ndim = len(input_shape) + 1
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise ValueError(f"{type(layer).__name__} {layer.name!r}: only axis=-1 (the last axis) "
                             f"is supported, got axis={axis!r}")
        axis = axis[0]
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: axis={axis!r} is out of range for "
                         f"input shape (None, {', '.join(map(str, input_shape))})")
    if axis % ndim != ndim - 1 or ndim < 2:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: only axis=-1 (features/channels "
                         f"last) is supported, got axis={axis!r} for input shape "
                         f"(None, {', '.join(map(str, input_shape))})")


def _check_axis_arg(layer, axis, allow_list):
    ok_int = isinstance(axis, (int, np.integer)) and not isinstance(axis, bool)
    ok_list = allow_list and isinstance(axis, (list, tuple)) and all(
        isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis)
    if not (ok_int or ok_list):
        raise ValueError(f"{type(layer).__name__}: axis must be an int{' or a list of ints' if allow_list else ''}, "
                         f"got {axis!r}")


def _positive_float(layer, name, value):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{type(layer).__name__}: {name} must be a number, got {value!r}") from None
    if not (v > 0 and np.isfinite(v)):
        raise ValueError(f"{type(layer).__name__}: {name} must be positive and finite, got {value!r}")
    return v


def _only_none(layer, **kw):
    for k, v in kw.items():
        if v is not None:
            raise ValueError(f"{type(layer).__name__}: {k} is not supported yet (pass None)")


class BatchNormalization(Layer):
    """Keras's BatchNormalization over the last axis.

    Training: normalises with the batch mean and (biased) variance and updates
    moving = moving * momentum + batch * (1 - momentum); inference: the moving statistics.
    With trainable=False the layer runs in inference mode even during fit (as Keras).
    Weights: gamma (if scale), beta (if center), moving_mean, moving_variance (non-trainable)."""
    _nonnegative_weights = ("moving_variance",)

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, **kwargs):
        self._frozen = np.zeros(1, dtype=np.int32)  # read by the C node at every forward
        super().__init__(**kwargs)
        _check_axis_arg(self, axis, allow_list=False)
        try:
            momentum = float(momentum)
        except (TypeError, ValueError):
            raise ValueError(f"BatchNormalization: momentum must be a number, got {momentum!r}") from None
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum}")
        _only_none(self, beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        self.axis = int(axis)
        self.momentum = momentum
        self.epsilon = _positive_float(self, "epsilon", epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.synchronized = bool(synchronized)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self.beta_regularizer = beta_regularizer
        self.gamma_regularizer = gamma_regularizer

    @property
    def trainable(self):
        return not bool(self._frozen[0])

    @trainable.setter
    def trainable(self, value):
        self._frozen[0] = 0 if value else 1

    def build(self, input_shape):
        _last_axis(self, self.axis, input_shape)
        c = (input_shape[-1],)
        if self.scale:
            self.add_weight("gamma", c, self.gamma_initializer, regularizer=self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", c, self.beta_initializer, regularizer=self.beta_regularizer)
        self.add_weight("moving_mean", c, self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", c, self.moving_variance_initializer, trainable=False)

    def make_nodes(self, input_shape, params, grads):
        size = int(np.prod(input_shape))
        return [K.batchnorm_node(size, input_shape[-1], self.momentum, self.epsilon, self.center,
                                 self.scale, self._frozen, params, grads)]

    def _named(self, name):
        for spec, w in zip(self._specs, self._weights):
            if spec[0] == name:
                return w
        return None

    gamma = property(lambda self: self._named("gamma"))
    beta = property(lambda self: self._named("beta"))
    moving_mean = property(lambda self: self._named("moving_mean"))
    moving_variance = property(lambda self: self._named("moving_variance"))

    def get_config(self):
        from .. import regularizers
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
                "beta_regularizer": regularizers.serialize(regularizers.get(self.beta_regularizer)),
                "gamma_regularizer": regularizers.serialize(regularizers.get(self.gamma_regularizer)),
                "beta_constraint": None, "gamma_constraint": None,
                "synchronized": self.synchronized}


class LayerNormalization(Layer):
    """Keras's LayerNormalization over the last axis: per sample (and position),
    y = gamma * (x - mean) / sqrt(var + epsilon) + beta. Weights: gamma (if scale), beta (if
    center). Same in training and inference."""

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        _check_axis_arg(self, axis, allow_list=True)
        if rms_scaling:
            raise ValueError("LayerNormalization: rms_scaling=True is not supported yet")
        _only_none(self, beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = _positive_float(self, "epsilon", epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = False
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.beta_regularizer = beta_regularizer
        self.gamma_regularizer = gamma_regularizer

    def build(self, input_shape):
        _last_axis(self, self.axis, input_shape)
        c = (input_shape[-1],)
        if self.scale:
            self.add_weight("gamma", c, self.gamma_initializer, regularizer=self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", c, self.beta_initializer, regularizer=self.beta_regularizer)

    def make_nodes(self, input_shape, params, grads):
        size = int(np.prod(input_shape))
        return [K.layernorm_node(size, input_shape[-1], self.epsilon, self.center, self.scale,
                                 params, grads)]

    def get_config(self):
        from .. import regularizers
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": False,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(regularizers.get(self.beta_regularizer)),
                "gamma_regularizer": regularizers.serialize(regularizers.get(self.gamma_regularizer)),
                "beta_constraint": None, "gamma_constraint": None}


class Normalization(Layer):
    """Keras's Normalization preprocessing layer: y = (x - mean) / max(sqrt(variance), 1e-7)
    per feature of the last axis (axis=-1), or with one scalar mean/variance (axis=None).

    Either give `mean` and `variance`, or call `adapt(data)` to learn them from data in one
    vectorised pass; adapted statistics are the non-trainable weights mean, variance and count
    (Keras's layout). invert=True maps standardised values back."""
    _nonnegative_weights = ("variance",)

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axis = (int(axis),)
        elif isinstance(axis, (list, tuple)) and all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            axis = tuple(int(a) for a in axis)
        else:
            raise ValueError(f"Normalization: axis must be an int, a tuple of ints or None, got {axis!r}")
        if len(axis) > 1:
            raise ValueError(f"Normalization: only axis=-1 (features last) or axis=None is supported, got {axis}")
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: pass both mean and variance, or neither (and call adapt)")
        self.axis = axis
        self.invert = bool(invert)
        self.input_mean = None if mean is None else self._stat(mean, "mean")
        self.input_variance = None if variance is None else self._stat(variance, "variance")
        if self.input_variance is not None and np.any(self.input_variance < 0):
            raise ValueError("Normalization: variance must be >= 0")
        self._adapted = False
        self._const = None

    @staticmethod
    def _stat(v, what):
        a = np.asarray(v)
        if a.dtype == object or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise TypeError(f"Normalization: {what} must hold real numbers")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"Normalization: {what} contains NaN or infinity")
        return a

    def _channels(self, input_shape):
        if self.axis == ():
            return 1
        _last_axis(self, self.axis, input_shape)
        return int(input_shape[-1])

    def build(self, input_shape):
        c = self._channels(input_shape)
        shape = () if self.axis == () else (c,)
        if self.input_mean is None:
            self.add_weight("mean", shape, "zeros", trainable=False)
            self.add_weight("variance", shape, "ones", trainable=False)
            self.add_weight("count", (), "zeros", trainable=False)
        else:
            consts = []
            for v, what in ((self.input_mean, "mean"), (self.input_variance, "variance")):
                if v.size == 1:
                    v = np.full(c, float(v.reshape(-1)[0]))
                elif v.size == c and (v.ndim <= 1 or v.shape[-1] == c):
                    v = v.reshape(c)
                else:
                    raise ValueError(f"Normalization {self.name!r}: {what} of shape {v.shape} does not "
                                     f"broadcast to the {c} features of input shape (None, "
                                     f"{', '.join(map(str, input_shape))})")
                consts.append(np.ascontiguousarray(v, dtype=np.float32))
            self._const = consts

    def make_nodes(self, input_shape, params, grads):
        size = int(np.prod(input_shape))
        c = self._channels(input_shape)
        if self._const is not None:
            return [K.normalization_node(size, c, self.invert, mean=self._const[0],
                                         variance=self._const[1])]
        return [K.normalization_node(size, c, self.invert, params, grads)]

    @property
    def mean(self):
        if self._const is not None:
            return self._const[0]
        return self._weights[0] if self._weights else None

    @property
    def variance(self):
        if self._const is not None:
            return self._const[1]
        return self._weights[1] if self._weights else None

    def adapt(self, data, batch_size=None, steps=None):
        """Learn mean and variance of `data` (n samples, each of the layer's input shape) over
        every axis but the last (all axes with axis=None), in one vectorised float64 pass."""
        if self.input_mean is not None:
            raise ValueError("Normalization: adapt() cannot be used when mean and variance were given")
        try:
            a = np.asarray(data)
        except Exception as e:
            raise ValueError(f"Normalization.adapt: data could not be converted to an array: {e}") from None
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise TypeError(f"Normalization.adapt: data must hold real numbers, got dtype {a.dtype}")
        if a.ndim == 0:
            raise ValueError("Normalization.adapt: data must have a batch dimension, got a scalar")
        if a.ndim == 1:
            a = a.reshape(-1, 1)
        if a.shape[0] == 0 or a.size == 0:
            raise ValueError("Normalization.adapt: data is empty (0 samples)")
        a = a.astype(np.float64, copy=False)
        if not np.all(np.isfinite(a)):
            raise ValueError("Normalization.adapt: data contains NaN or infinity")
        shape = tuple(a.shape[1:])
        if self.built:
            if self.input_shape is not None and shape != tuple(self.input_shape):
                raise ValueError(f"Normalization.adapt: data samples have shape {shape}, but the layer "
                                 f"was built for {tuple(self.input_shape)}")
        else:
            self._build_once(shape)
        c = self._channels(shape)
        flat = a.reshape(-1, c) if c > 1 or self.axis != () else a.reshape(-1, 1)
        mean = flat.mean(axis=0)
        var = flat.var(axis=0)  # biased, as Keras
        if self.axis == ():
            mean, var = mean.reshape(()), var.reshape(())
        self._weights[0][...] = mean.astype(np.float32)
        self._weights[1][...] = var.astype(np.float32)
        self._weights[2][...] = np.float32(flat.shape[0])
        self._adapted = True
        self._params_changed()

    def get_config(self):
        cfg = {**super().get_config(), "axis": list(self.axis) if self.axis != () else None,
               "invert": self.invert,
               "mean": None if self.input_mean is None else self.input_mean.tolist(),
               "variance": None if self.input_variance is None else self.input_variance.tolist()}
        return cfg
