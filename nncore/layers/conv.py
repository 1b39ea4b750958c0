"""Conv1D, Conv2D and ZeroPadding1D/2D with Keras's names, defaults and weight layouts
(Conv2D kernel (KH, KW, C_in, C_out), Conv1D kernel (K, C_in, C_out), bias (C_out,)), so Keras
weights load unchanged. Computation: the conv2d engine node (NHWC; Conv1D is H = 1);
data_format='channels_first' transposes at the layer boundary."""
from .. import activations, initializers
from .. import _kernels as K
from ..ops.conv import _padding, _tuple, conv_output_length
from .base import Layer, _default_name

__all__ = ["Conv1D", "Conv2D", "ZeroPadding1D", "ZeroPadding2D"]


def _data_format(df):
    df = "channels_last" if df is None else df
    if df not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {df!r}")
    return df


def _check_rank(layer, input_shape):
    """ValueError unless a per-sample shape has the layer's rank (spatial dims + channels)."""
    if len(input_shape) != layer.rank + 1:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects inputs of rank {layer.rank + 2}, "
                         f"got input shape (None, {', '.join(map(str, input_shape))})")


def _channels_first_nodes(C_in, S_in, C_out, S_out, nodes):
    """An NHWC computation wrapped for channels_first data: (C_in, S_in) transposed in, the nodes,
    then (S_out, C_out) transposed back (S: the spatial positions)."""
    return [K.transpose_node(C_in, S_in, 1)] + nodes + [K.transpose_node(S_out, C_out, 1)]


class _Conv(Layer):
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        if kwargs.get("name") is None:
            kwargs["name"] = _default_name(type(self).__name__.lower())  # Keras: conv2d, conv2d_1
        super().__init__(**kwargs)
        cls = type(self).__name__
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"{cls}: filters must be a positive int, got {filters!r}")
        if groups != 1:
            raise ValueError(f"{cls}: groups != 1 is not supported")
        r = self.rank
        self.filters = filters
        self.kernel_size = _tuple(kernel_size, r, f"{cls}: kernel_size")
        self.strides = _tuple(strides, r, f"{cls}: strides")
        self.dilation_rate = _tuple(dilation_rate, r, f"{cls}: dilation_rate")
        self.padding = _padding(padding, ("valid", "same", "causal") if r == 1 else ("valid", "same"))
        if self.padding != "valid" and any(s > 1 for s in self.strides) and any(d > 1 for d in self.dilation_rate):
            raise ValueError(f"{cls}: strides > 1 with dilation_rate > 1 is not supported (as in Keras)")
        self.data_format = _data_format(data_format)
        self.groups = groups
        self.activation = activations.serialize(activation)
        if self.activation == "softmax":
            raise ValueError(f"{cls}: activation='softmax' is not supported on convolutions; "
                             f"add an Activation('softmax') layer after Flatten")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    # (spatial..., channels) in NHWC order, whatever the data format
    def _nhwc(self, input_shape):
        _check_rank(self, input_shape)
        if self.data_format == "channels_first":
            return tuple(input_shape[1:]) + (input_shape[0],)
        return tuple(input_shape)

    def _geom(self, input_shape):
        s = self._nhwc(input_shape)
        spatial, C = s[:-1], s[-1]
        outs, pads = [], []
        for n, k, st, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate):
            try:
                o, p = conv_output_length(n, k, st, self.padding, d)
            except ValueError as e:
                raise ValueError(f"{type(self).__name__} {self.name!r}: {e} (input shape "
                                 f"(None, {', '.join(map(str, input_shape))}))") from None
            outs.append(o)
            pads.append(p)
        if self.rank == 1:
            H, W, KH, KW, sh, sw, dh, dw = 1, spatial[0], 1, self.kernel_size[0], 1, self.strides[0], 1, self.dilation_rate[0]
            OH, OW, pt, pl = 1, outs[0], 0, pads[0]
        else:
            (H, W), (KH, KW) = spatial, self.kernel_size
            (sh, sw), (dh, dw) = self.strides, self.dilation_rate
            (OH, OW), (pt, pl) = outs, pads
        return (H, W, C, KH, KW, self.filters, sh, sw, dh, dw, pt, pl, OH, OW), tuple(outs)

    def build(self, input_shape):
        C = self._nhwc(input_shape)[-1]
        self._geom(input_shape)  # validates the geometry
        self.add_weight("kernel", tuple(self.kernel_size) + (C, self.filters), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)

    @property
    def kernel(self):
        return self._weights[0]

    @property
    def bias(self):
        return self._weights[1] if self.use_bias else None

    def compute_output_shape(self, input_shape):
        _, outs = self._geom(input_shape)
        if self.data_format == "channels_first":
            return (self.filters,) + outs
        return outs + (self.filters,)

    def make_nodes(self, input_shape, params, grads):
        geom, outs = self._geom(input_shape)
        C = self._nhwc(input_shape)[-1]
        act, alpha = activations.get_id(self.activation)
        node = K.conv2d_node(geom, self.use_bias, act, alpha, params, grads)
        if self.data_format == "channels_last":
            return [node]
        return _channels_first_nodes(C, geom[0] * geom[1], self.filters, geom[12] * geom[13], [node])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
                "data_format": self.data_format, "dilation_rate": self.dilation_rate,
                "groups": self.groups, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


class Conv2D(_Conv):
    """2-D convolution: (batch, H, W, C_in) -> (batch, OH, OW, filters), kernel HWIO."""
    rank = 2


class Conv1D(_Conv):
    """1-D convolution over steps: (batch, steps, C_in) -> (batch, out_steps, filters), kernel
    (kernel_size, C_in, filters); padding 'valid', 'same' or 'causal'."""
    rank = 1


def _pad_pairs(padding, rank, cls):
    if rank == 1:
        if isinstance(padding, (int,)) and not isinstance(padding, bool):
            padding = (padding, padding)
        t = _tuple(padding, 2, f"{cls}: padding", allow_zero=True)
        return ((0, 0), t)
    if isinstance(padding, int) and not isinstance(padding, bool):
        padding = ((padding, padding), (padding, padding))
    try:
        a, b = padding
    except (TypeError, ValueError):
        raise ValueError(f"{cls}: padding must be an int, a tuple of 2 ints or a tuple of 2 tuples "
                         f"of 2 ints, got {padding!r}") from None
    pairs = []
    for v in (a, b):
        if isinstance(v, int) and not isinstance(v, bool):
            v = (v, v)
        pairs.append(_tuple(v, 2, f"{cls}: padding", allow_zero=True))
    return tuple(pairs)


class _ZeroPadding(Layer):
    rank = 2

    def __init__(self, padding=1, data_format=None, **kwargs):
        if kwargs.get("name") is None:
            kwargs["name"] = _default_name(f"zero_padding{self.rank}d")
        super().__init__(**kwargs)
        self._pairs = _pad_pairs(padding, self.rank, type(self).__name__)
        self.padding = self._pairs[1] if self.rank == 1 else self._pairs
        self.data_format = _data_format(data_format) if self.rank == 2 else "channels_last"

    def compute_output_shape(self, input_shape):
        _check_rank(self, input_shape)
        (t, b), (l, r) = self._pairs
        if self.rank == 1:
            return (input_shape[0] + l + r, input_shape[1])
        if self.data_format == "channels_first":
            return (input_shape[0], input_shape[1] + t + b, input_shape[2] + l + r)
        return (input_shape[0] + t + b, input_shape[1] + l + r, input_shape[2])

    def make_nodes(self, input_shape, params, grads):
        _check_rank(self, input_shape)
        (t, b), (l, r) = self._pairs
        if self.rank == 1:
            return [K.zeropad2d_node(1, input_shape[0], input_shape[1], 0, 0, l, r)]
        if self.data_format == "channels_first":  # (C, H, W): pad H, W with inner = 1 channel
            C, H, W = input_shape
            if C == 1:
                return [K.zeropad2d_node(H, W, 1, t, b, l, r)]
            return _channels_first_nodes(C, H * W, C, (H + t + b) * (W + l + r),
                                         [K.zeropad2d_node(H, W, C, t, b, l, r)])
        H, W, C = input_shape
        return [K.zeropad2d_node(H, W, C, t, b, l, r)]

    def get_config(self):
        cfg = {**super().get_config(), "padding": self.padding}
        if self.rank == 2:
            cfg["data_format"] = self.data_format
        return cfg


class ZeroPadding2D(_ZeroPadding):
    """Adds rows/columns of zeros: padding int, (sym_h, sym_w) or ((top, bottom), (left, right))."""
    rank = 2


class ZeroPadding1D(_ZeroPadding):
    """Adds zeros at the start and end of the steps axis: padding int or (left, right)."""
    rank = 1
