"""Dropout, SpatialDropout1D/2D, GaussianNoise and GaussianDropout (Keras semantics).

Active only in training (fit, train_on_batch); identity in predict/evaluate. Masks and noise
come from a counter-based hash of (seed, step, sample, element) in C, so they are the same for
any thread count; seed=None draws a seed from nncore's generator (nn.utils.set_random_seed)
when the model is built."""
import numpy as np

from .. import _kernels as K
from .. import utils
from .base import Layer

__all__ = ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout"]


def _rate(layer, rate):
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"{type(layer).__name__}: rate must be a number in [0, 1), got {rate!r}") from None
    if not 0.0 <= r < 1.0:
        raise ValueError(f"{type(layer).__name__}: rate must be in [0, 1) (the fraction of inputs to "
                         f"drop), got {rate!r}")
    return r


def _seed(layer, seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{type(layer).__name__}: seed must be a non-negative int or None, got {seed!r}")
    return int(seed)


def _node_seed(seed):
    return int(utils.rng().integers(0, 2 ** 63)) if seed is None else seed


class Dropout(Layer):
    """Sets a fraction `rate` of the inputs to 0 during training and scales the rest by
    1/(1 - rate); identity at inference. noise_shape (with the batch dim, None = full size,
    1 = shared) broadcasts one mask along axes, as Keras."""

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _rate(self, rate)
        if noise_shape is not None:
            try:
                noise_shape = tuple(None if s is None else int(s) for s in noise_shape)
            except TypeError:
                raise ValueError(f"Dropout: noise_shape must be a tuple, got {noise_shape!r}") from None
        self.noise_shape = noise_shape
        self.seed = _seed(self, seed)

    def _bcast(self, input_shape):
        """(dims, bcast flags, batch_bcast) for the C node; None when no broadcast."""
        ns = self.noise_shape
        if ns is None:
            return None
        if len(ns) != len(input_shape) + 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape {ns} must have one entry per "
                             f"input axis including the batch: input shape (None, "
                             f"{', '.join(map(str, input_shape))})")
        flags = []
        for s, d in zip(ns[1:], input_shape):
            if s is None or s == d:
                flags.append(False)
            elif s == 1:
                flags.append(True)
            else:
                raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape {ns} does not broadcast "
                                 f"against input shape (None, {', '.join(map(str, input_shape))})")
        if ns[0] is not None and ns[0] < 1:
            raise ValueError(f"{type(self).__name__}: bad noise_shape {ns}")
        return list(input_shape), flags, ns[0] == 1

    def build(self, input_shape):
        self._bcast(input_shape)

    def make_nodes(self, input_shape, params, grads):
        if self.rate == 0.0:
            return []
        size = int(np.prod(input_shape))
        b = self._bcast(input_shape)
        if b is None:
            return [K.dropout_node(size, self.rate, _node_seed(self.seed))]
        return [K.dropout_node(size, self.rate, _node_seed(self.seed), b[0], b[1], b[2])]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
                "seed": self.seed}


class SpatialDropout1D(Dropout):
    """Drops whole channels of (steps, channels) samples: noise_shape (batch, 1, channels)."""

    _ndim = 2

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)

    def build(self, input_shape):
        if len(input_shape) != self._ndim:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects samples of rank {self._ndim} "
                             f"(channels last), got input shape (None, {', '.join(map(str, input_shape))})")

    def _bcast(self, input_shape):
        return list(input_shape), [True] * (len(input_shape) - 1) + [False], False

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("noise_shape")
        return cfg


class SpatialDropout2D(SpatialDropout1D):
    """Drops whole channels of (rows, cols, channels) samples (data_format='channels_last')."""

    _ndim = 3

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError("SpatialDropout2D: only data_format='channels_last' is supported")
        self.data_format = "channels_last"

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class GaussianNoise(Layer):
    """Adds N(0, stddev^2) noise during training; identity at inference."""

    supports_masking = True

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        try:
            s = float(stddev)
        except (TypeError, ValueError):
            raise ValueError(f"GaussianNoise: stddev must be a number, got {stddev!r}") from None
        if not (s >= 0 and np.isfinite(s)):
            raise ValueError(f"GaussianNoise: stddev must be finite and >= 0, got {stddev!r}")
        self.stddev = s
        self.seed = _seed(self, seed)

    def make_nodes(self, input_shape, params, grads):
        if self.stddev == 0.0:
            return []
        return [K.gaussian_noise_node(int(np.prod(input_shape)), self.stddev, _node_seed(self.seed), False)]

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(Layer):
    """Multiplies by N(1, rate/(1-rate)) noise during training; identity at inference."""

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _rate(self, rate)
        self.seed = _seed(self, seed)

    def make_nodes(self, input_shape, params, grads):
        if self.rate == 0.0:
            return []
        s = float(np.sqrt(self.rate / (1.0 - self.rate)))
        return [K.gaussian_noise_node(int(np.prod(input_shape)), s, _node_seed(self.seed), True)]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
