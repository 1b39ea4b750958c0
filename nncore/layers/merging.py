"""Merge layers (Keras's names): Concatenate, Add, Subtract, Multiply, Average, Maximum,
Minimum, Dot, and their functional forms. In a model each is one merge op of the C graph
(csrc/engine/graph.c); called on arrays they compute with NumPy."""
import numpy as np

from .base import Layer, _fmt

__all__ = ["Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
           "concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum", "dot"]


def _who(tensors):
    return ", ".join(f"{t._node.layer.name!r} {_fmt(t._shape)}" for t in tensors)


class _Merge(Layer):
    _multi_input = True
    _kind = None
    _np = None

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2:
            raise ValueError(f"{type(self).__name__} {self.name!r} takes a list of at least 2 inputs")

    def _check_inputs(self, tensors):
        shapes = {t._shape for t in tensors}
        if len(shapes) != 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: inputs must have the same shape, got "
                             f"{_who(tensors)}")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def graph_op(self, input_shapes):
        return self._kind, ()

    def call(self, inputs):
        arrs = [np.asarray(a, dtype=np.float32) for a in inputs]
        if len(arrs) < 2 or len({a.shape for a in arrs}) != 1:
            raise ValueError(f"{type(self).__name__}: expects a list of >= 2 arrays of one shape, got "
                             f"{[a.shape for a in arrs]}")
        return self._np(arrs)


class Add(_Merge):
    """Elementwise sum of its inputs."""
    _kind = "add"
    _np = staticmethod(lambda a: np.sum(a, axis=0))


class Subtract(_Merge):
    """inputs[0] - inputs[1]."""
    _kind = "subtract"
    _np = staticmethod(lambda a: a[0] - a[1])

    def _check_inputs(self, tensors):
        if len(tensors) != 2:
            raise ValueError(f"Subtract {self.name!r} takes exactly 2 inputs, got {len(tensors)}")
        super()._check_inputs(tensors)


class Multiply(_Merge):
    """Elementwise product."""
    _kind = "multiply"
    _np = staticmethod(lambda a: np.prod(a, axis=0))


class Average(_Merge):
    """Elementwise mean."""
    _kind = "average"
    _np = staticmethod(lambda a: np.mean(a, axis=0))


class Maximum(_Merge):
    """Elementwise maximum (the gradient goes to the first input holding it)."""
    _kind = "maximum"
    _np = staticmethod(lambda a: np.max(a, axis=0))


class Minimum(_Merge):
    """Elementwise minimum."""
    _kind = "minimum"
    _np = staticmethod(lambda a: np.min(a, axis=0))


class Concatenate(_Merge):
    """Joins its inputs along `axis` (the batch axis is 0, so axis=-1 or 1.. per sample)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or axis == 0:
            raise ValueError(f"Concatenate: axis must be a non-zero int (0 is the batch axis), got {axis!r}")
        self.axis = int(axis)

    def _axis(self, rank):
        a = self.axis if self.axis < 0 else self.axis - 1  # per-sample axis
        if not -rank <= a < rank:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} is out of range for inputs of "
                             f"rank {rank + 1}")
        return a % rank

    def _check_inputs(self, tensors):
        ranks = {len(t._shape) for t in tensors}
        if len(ranks) != 1:
            raise ValueError(f"Concatenate {self.name!r}: inputs must have the same rank, got {_who(tensors)}")
        a = self._axis(ranks.pop())
        rest = {t._shape[:a] + t._shape[a + 1:] for t in tensors}
        if len(rest) != 1:
            raise ValueError(f"Concatenate {self.name!r}: inputs must match on every axis but the "
                             f"concatenation axis {self.axis}, got {_who(tensors)}")

    def compute_output_shape(self, input_shape):
        a = self._axis(len(input_shape[0]))
        s = list(input_shape[0])
        s[a] = sum(sh[a] for sh in input_shape)
        return tuple(s)

    def graph_op(self, input_shapes):
        a = self._axis(len(input_shapes[0]))
        return "concat", (int(np.prod(input_shapes[0][:a], dtype=np.int64)),)

    def call(self, inputs):
        arrs = [np.asarray(x, dtype=np.float32) for x in inputs]
        return np.concatenate(arrs, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Dot product of two inputs along `axes` (an int or a pair; batch axis 0 excluded), for
    samples of rank 1 or 2; normalize=True takes the cosine (inputs L2-normalised along the
    axes first). Output: the remaining axes of the first input, then of the second; (1,) for
    two vectors."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        ax = (axes, axes) if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool) else axes
        try:
            ax = tuple(int(a) for a in ax)
        except TypeError:
            raise ValueError(f"Dot: axes must be an int or a pair of ints, got {axes!r}") from None
        if len(ax) != 2 or 0 in ax:
            raise ValueError(f"Dot: axes must be an int or a pair of non-zero ints (0 is the batch axis), got {axes!r}")
        self.axes = ax
        self.normalize = bool(normalize)

    def _dims(self, input_shape):
        """Per input: (a, b, contracted axis 0/1) with rank-1 samples seen as (1, d)."""
        out = []
        for s, ax in zip(input_shape, self.axes):
            r = len(s)
            a = ax if ax < 0 else ax - 1
            if r not in (1, 2) or not -r <= a < r:
                raise ValueError(f"Dot {self.name!r}: supports samples of rank 1 or 2 with axes inside "
                                 f"them, got input shape {_fmt(s)} and axes {self.axes}")
            a %= r
            out.append((1, s[0], 1) if r == 1 else (s[0], s[1], a))
        return out

    def _check_inputs(self, tensors):
        if len(tensors) != 2:
            raise ValueError(f"Dot {self.name!r} takes exactly 2 inputs, got {len(tensors)}")
        (a1, b1, x1), (a2, b2, x2) = self._dims([t._shape for t in tensors])
        if (b1 if x1 else a1) != (b2 if x2 else a2):
            raise ValueError(f"Dot {self.name!r}: the axes {self.axes} have different sizes in "
                             f"{_who(tensors)}")

    def compute_output_shape(self, input_shape):
        free = []
        for s, (a, b, x) in zip(input_shape, self._dims(input_shape)):
            if len(s) == 2:
                free.append(a if x else b)
        return tuple(free) or (1,)

    def graph_op(self, input_shapes):
        (a1, b1, x1), (a2, b2, x2) = self._dims(input_shapes)
        return "dot", (a1, b1, x1, a2, b2, x2, int(self.normalize))

    def call(self, inputs):
        x1, x2 = (np.asarray(x, dtype=np.float64) for x in inputs)
        d = self._dims([x1.shape[1:], x2.shape[1:]])
        m1 = x1.reshape(len(x1), d[0][0], d[0][1])
        m2 = x2.reshape(len(x2), d[1][0], d[1][1])
        if not d[0][2]:
            m1 = m1.transpose(0, 2, 1)
        if not d[1][2]:
            m2 = m2.transpose(0, 2, 1)
        if self.normalize:
            m1 = m1 / np.sqrt(np.maximum((m1 ** 2).sum(-1, keepdims=True), 1e-12))
            m2 = m2 / np.sqrt(np.maximum((m2 ** 2).sum(-1, keepdims=True), 1e-12))
        y = np.einsum("bik,bjk->bij", m1, m2)
        return y.reshape((len(x1),) + self.compute_output_shape([x1.shape[1:], x2.shape[1:]])).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes), "normalize": self.normalize}


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
