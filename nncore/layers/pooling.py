"""MaxPooling1D/2D, AveragePooling1D/2D, GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D with
Keras's names and defaults (strides default to pool_size; 'same' pads without counting padded
positions). Computation: pool2d / global_pool engine nodes on NHWC (1-D pooling is H = 1);
data_format='channels_first' transposes at the layer boundary, as Conv2D does."""
from .. import _kernels as K
from ..ops.conv import _padding, _tuple, conv_output_length
from .base import Layer, _default_name
from .conv import _channels_first_nodes, _check_rank, _data_format


def _keras_name(layer, kwargs):
    # Keras names these max_pooling2d, global_average_pooling1d, ...
    if kwargs.get("name") is None:
        n = type(layer).__name__
        kwargs["name"] = _default_name("".join("_" + c.lower() if c.isupper() else c for c in n[:-2]).lstrip("_") + n[-2:].lower())

__all__ = ["MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D"]


def _split_channels(data_format, shape):
    """(spatial sizes, channels) of a per-sample shape in either data format."""
    if data_format == "channels_first":
        return tuple(shape[1:]), shape[0]
    return tuple(shape[:-1]), shape[-1]


class _Pool(Layer):
    rank = 2
    is_max = True

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        _keras_name(self, kwargs)
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = _tuple(pool_size, self.rank, f"{cls}: pool_size")
        self.strides = self.pool_size if strides is None else _tuple(strides, self.rank, f"{cls}: strides")
        self.padding = _padding(padding)
        self.data_format = _data_format(data_format)
        n = 1
        for p in self.pool_size:
            n *= p
        if n > 256:
            raise ValueError(f"{cls}: pool_size {self.pool_size} has more than 256 positions")

    def _geom(self, input_shape):
        cls = type(self).__name__
        _check_rank(self, input_shape)
        spatial, C = _split_channels(self.data_format, input_shape)
        outs, pads = [], []
        for n, k, s in zip(spatial, self.pool_size, self.strides):
            try:
                o, p = conv_output_length(n, k, s, self.padding)
            except ValueError as e:
                raise ValueError(f"{cls} {self.name!r}: {e} (input shape "
                                 f"(None, {', '.join(map(str, input_shape))}))") from None
            outs.append(o)
            pads.append(p)
        if self.rank == 1:
            geom = (1, spatial[0], C, 1, self.pool_size[0], 1, self.strides[0], 0, pads[0], 1, outs[0])
        else:
            geom = (spatial[0], spatial[1], C, self.pool_size[0], self.pool_size[1],
                    self.strides[0], self.strides[1], pads[0], pads[1], outs[0], outs[1])
        return geom, ((C,) + tuple(outs) if self.data_format == "channels_first" else tuple(outs) + (C,))

    def compute_output_shape(self, input_shape):
        return self._geom(input_shape)[1]

    def make_nodes(self, input_shape, params, grads):
        geom, _ = self._geom(input_shape)
        node = K.pool2d_node(geom, self.is_max)
        if self.data_format == "channels_last":
            return [node]
        C = geom[2]
        return _channels_first_nodes(C, geom[0] * geom[1], C, geom[9] * geom[10], [node])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling2D(_Pool):
    """Max over pool_size windows of (batch, H, W, C)."""
    rank, is_max = 2, True

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(_Pool):
    """Mean over pool_size windows of (batch, H, W, C) (padded positions not counted)."""
    rank, is_max = 2, False

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling1D(_Pool):
    """Max over windows of steps of (batch, steps, C)."""
    rank, is_max = 1, True


class AveragePooling1D(_Pool):
    """Mean over windows of steps of (batch, steps, C)."""
    rank, is_max = 1, False


class _GlobalPool(Layer):
    rank = 2
    is_max = False

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        _keras_name(self, kwargs)
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        _check_rank(self, input_shape)
        C = _split_channels(self.data_format, input_shape)[1]
        if not self.keepdims:
            return (C,)
        return (C,) + (1,) * self.rank if self.data_format == "channels_first" else (1,) * self.rank + (C,)

    def make_nodes(self, input_shape, params, grads):
        _check_rank(self, input_shape)
        spatial, C = _split_channels(self.data_format, input_shape)
        S = 1
        for s in spatial:
            S *= s
        node = K.global_pool_node(S, C, self.is_max)
        return [node] if self.data_format == "channels_last" else [K.transpose_node(C, S, 1), node]

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPool):
    """Mean over H and W: (batch, H, W, C) -> (batch, C)."""
    rank, is_max = 2, False


class GlobalMaxPooling2D(_GlobalPool):
    """Max over H and W: (batch, H, W, C) -> (batch, C)."""
    rank, is_max = 2, True


class GlobalAveragePooling1D(_GlobalPool):
    """Mean over steps: (batch, steps, C) -> (batch, C)."""
    rank, is_max = 1, False


class GlobalMaxPooling1D(_GlobalPool):
    """Max over steps: (batch, steps, C) -> (batch, C)."""
    rank, is_max = 1, True


# Keras aliases
MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
