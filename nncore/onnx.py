"""ONNX export: `nn.onnx.export(model, "model.onnx")` writes a Sequential model for other
runtimes (onnxruntime, TensorRT, ...). Needs the `onnx` package (`pip install nncore[onnx]`).

The graph takes float32 input of shape (batch, *model.input_shape[1:]) with a symbolic batch
dimension and gives the model's predict() output. Each layer class has a converter registered
with `@register(LayerClass)`: a function (graph, layer, x, input_shape) -> output name, where x
is the name of the layer's input tensor (batch first, Keras layout) and input_shape excludes
the batch. Adding a layer means adding one converter; a layer with none raises a ValueError
naming it. Channels-last convolutions and pooling are wrapped in transposes to ONNX's NCHW.
Dropout is the identity and normalisation layers use their moving statistics (inference form).
"""
import math

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - exercised only without onnx
    raise ImportError("nncore.onnx needs the onnx package: pip install 'nncore[onnx]' "
                      "(or pip install onnx)") from e

from . import activations as activations_mod
from . import layers as L

__all__ = ["export", "register", "supported_layers", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17
_CONVERTERS = {}


def register(*layer_classes):
    """Decorator registering an ONNX converter for one or more layer classes."""
    def deco(fn):
        for cls in layer_classes:
            _CONVERTERS[cls] = fn
        return fn
    return deco


def supported_layers():
    """Names of the layer classes export() can convert."""
    return sorted({c.__name__ for c in _CONVERTERS})


class Graph:
    """Collects nodes and initializers; every helper returns the name of its output."""

    def __init__(self, opset):
        self.opset = opset
        self.nodes, self.initializers = [], []
        self._n = 0

    def name(self, hint):
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, array, hint="const", dtype=np.float32):
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(array, dtype=dtype)), name))
        return name

    def ints(self, values, hint="shape"):
        return self.const(np.asarray(values, dtype=np.int64), hint, np.int64)

    def op(self, op_type, inputs, n_outputs=1, hint=None, **attrs):
        outs = [self.name(hint or op_type.lower()) for _ in range(n_outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if n_outputs == 1 else outs

    # small conveniences
    def transpose(self, x, perm):
        return self.op("Transpose", [x], perm=list(perm))

    def reshape(self, x, shape):
        return self.op("Reshape", [x, self.ints(shape)])

    def reverse_time(self, x, axis=1):
        """x reversed along axis (Slice with step -1)."""
        return self.op("Slice", [x, self.ints([-1]), self.ints([-(2 ** 62)]), self.ints([axis]), self.ints([-1])])

    def reduce(self, op_type, x, axes, keepdims):
        # ReduceMean/ReduceMax take axes as an input from opset 18 on
        if self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))


# ---- activations ------------------------------------------------------------------------------
def activation(g, name, x):
    """Apply nncore activation `name` (with its default alpha, as the layers use it) to x."""
    _, alpha = activations_mod.get_id(name)
    name = activations_mod.serialize(name)
    if name == "linear":
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
              "softsign": "Softsign"}
    if name in simple:
        return g.op(simple[name], [x])
    if name == "softmax":
        return g.op("Softmax", [x], axis=-1)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], alpha=float(alpha))
    if name == "elu":
        return g.op("Elu", [x], alpha=float(alpha))
    if name == "selu":
        return g.op("Selu", [x], alpha=1.6732632423543772, gamma=1.0507009873554805)
    if name == "relu6":
        return g.op("Clip", [x, g.const(0.0, "zero"), g.const(6.0, "six")])
    if name == "hard_sigmoid":  # relu6(x + 3) / 6
        return g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
    if name == "swish":
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if name == "gelu":  # exact (erf) form
        if g.opset >= 20:
            return g.op("Gelu", [x])
        e = g.op("Erf", [g.op("Mul", [x, g.const(1.0 / math.sqrt(2.0), "rsqrt2")])])
        return g.op("Mul", [g.op("Mul", [x, g.const(0.5, "half")]), g.op("Add", [e, g.const(1.0, "one")])])
    raise ValueError(f"activation {name!r} has no ONNX conversion")


# ---- core layers ------------------------------------------------------------------------------
@register(L.Dense)
def _dense(g, layer, x, shape):
    w = layer.get_weights()
    args = [x, g.const(w[0], layer.name + "_kernel")]
    if layer.use_bias:
        args.append(g.const(w[1], layer.name + "_bias"))
    if len(shape) == 1:
        return activation(g, layer.activation, g.op("Gemm", args))
    y = g.op("MatMul", args[:2])  # rank > 2: the last axis, as Keras
    return activation(g, layer.activation, g.op("Add", [y, args[2]]) if layer.use_bias else y)


@register(L.TimeDistributed)
def _time_distributed(g, layer, x, shape):
    return _converter(layer.layer)(g, layer.layer, x, shape)


@register(L.Permute)
def _permute(g, layer, x, shape):
    return g.transpose(x, (0,) + tuple(layer.dims))


@register(L.RepeatVector)
def _repeat_vector(g, layer, x, shape):
    u = g.op("Unsqueeze", [x, g.ints([1])])
    return g.op("Tile", [u, g.ints([1, layer.n, 1])])


# ---- merges: x is the list of input names, shape the list of input shapes -------------------
@register(L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate, L.Dot)
def _merge(g, layer, xs, shapes):
    if isinstance(layer, L.Concatenate):
        return g.op("Concat", xs, axis=layer._axis(len(shapes[0])) + 1)
    if isinstance(layer, L.Subtract):
        return g.op("Sub", xs)
    if isinstance(layer, L.Dot):
        if any(len(s) != 1 for s in shapes):
            raise ValueError(f"layer {layer.name!r} (Dot): only vector inputs can be exported to ONNX")
        if layer.normalize:
            xs = [g.op("Div", [x, g.op("Sqrt", [g.op("Max", [g.op("ReduceSum", [g.op("Mul", [x, x]), g.ints([1])],
                                                                   keepdims=1), g.const(1e-12, "eps")])])])
                  for x in xs]
        return g.op("ReduceSum", [g.op("Mul", xs), g.ints([1])], keepdims=1)
    op = {L.Add: "Sum", L.Multiply: "Mul", L.Average: "Mean", L.Maximum: "Max", L.Minimum: "Min"}[type(layer)]
    if op == "Mul":
        y = xs[0]
        for x in xs[1:]:
            y = g.op("Mul", [y, x])
        return y
    return g.op(op, xs)


@register(L.Activation)
def _activation(g, layer, x, shape):
    return activation(g, layer.activation, x)


@register(L.Flatten)
def _flatten(g, layer, x, shape):
    if layer.data_format == "channels_first" and len(shape) >= 2:  # channel axis last first
        x = g.transpose(x, (0,) + tuple(range(2, len(shape) + 1)) + (1,))
    return g.op("Flatten", [x], axis=1)


@register(L.Reshape)
def _reshape(g, layer, x, shape):
    return g.reshape(x, [-1] + list(layer.compute_output_shape(shape)))


@register(L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.GaussianNoise, L.GaussianDropout)
def _identity(g, layer, x, shape):
    return x  # inference form


# ---- convolution, padding, pooling (channels_last -> NCHW and back) ------------------------------
def _conv_pads(n, k, s, d, out, pad_begin):
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return pad_begin, max(total - pad_begin, 0)


@register(L.Conv1D, L.Conv2D)
def _conv(g, layer, x, shape):
    geom, _ = layer._geom(shape)
    H, W, C, KH, KW, F, sh, sw, dh, dw, pt, pl, OH, OW = geom
    w = layer.get_weights()
    rank = layer.rank
    cf = layer.data_format == "channels_first"
    if rank == 1:
        kern = np.transpose(w[0], (2, 1, 0))                 # (K, C, F) -> (F, C, K)
        pads = list(_conv_pads(W, KW, sw, dw, OW, pl))
        attrs = dict(kernel_shape=[KW], strides=[sw], dilations=[dw], pads=[pads[0], pads[1]])
        to_cf, from_cf = (0, 2, 1), (0, 2, 1)
    else:
        kern = np.transpose(w[0], (3, 2, 0, 1))              # (KH, KW, C, F) -> (F, C, KH, KW)
        ph = _conv_pads(H, KH, sh, dh, OH, pt)
        pw = _conv_pads(W, KW, sw, dw, OW, pl)
        attrs = dict(kernel_shape=[KH, KW], strides=[sh, sw], dilations=[dh, dw],
                     pads=[ph[0], pw[0], ph[1], pw[1]])
        to_cf, from_cf = (0, 3, 1, 2), (0, 2, 3, 1)
    xin = x if cf else g.transpose(x, to_cf)
    args = [xin, g.const(kern, layer.name + "_kernel")]
    if layer.use_bias:
        args.append(g.const(w[1], layer.name + "_bias"))
    y = activation(g, layer.activation, g.op("Conv", args, **attrs))
    return y if cf else g.transpose(y, from_cf)


@register(L.ZeroPadding1D, L.ZeroPadding2D)
def _zeropad(g, layer, x, shape):
    (t, b), (l, r) = layer._pairs
    if layer.rank == 1:
        pads = [0, l, 0, 0, r, 0]
    elif layer.data_format == "channels_first":
        pads = [0, 0, t, l, 0, 0, b, r]
    else:
        pads = [0, t, l, 0, 0, b, r, 0]
    return g.op("Pad", [x, g.ints(pads, "pads")], mode="constant")


@register(L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D)
def _pool(g, layer, x, shape):
    geom, out = layer._geom(shape)
    H, W, C, PH, PW, sh, sw, pt, pl, OH, OW = geom
    if layer.rank == 1:
        pw = _conv_pads(W, PW, sw, 1, OW, pl)
        attrs = dict(kernel_shape=[PW], strides=[sw], pads=[pw[0], pw[1]])
        to_cf, from_cf = (0, 2, 1), (0, 2, 1)
    else:
        ph = _conv_pads(H, PH, sh, 1, OH, pt)
        pw = _conv_pads(W, PW, sw, 1, OW, pl)
        attrs = dict(kernel_shape=[PH, PW], strides=[sh, sw], pads=[ph[0], pw[0], ph[1], pw[1]])
        to_cf, from_cf = (0, 3, 1, 2), (0, 2, 3, 1)
    cf = layer.data_format == "channels_first"
    xin = x if cf else g.transpose(x, to_cf)
    if layer.is_max:
        y = g.op("MaxPool", [xin], **attrs)
    else:  # padded positions are not counted, as in nncore and Keras
        y = g.op("AveragePool", [xin], count_include_pad=0, **attrs)
    return y if cf else g.transpose(y, from_cf)


@register(L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D)
def _global_pool(g, layer, x, shape):
    first = 2 if layer.data_format == "channels_first" else 1
    axes = list(range(first, first + len(shape) - 1))  # every spatial axis
    return g.reduce("ReduceMax" if layer.is_max else "ReduceMean", x, axes, layer.keepdims)


# ---- recurrent layers -----------------------------------------------------------------------
_RNN_ACT = {"sigmoid": ("Sigmoid", None, None), "tanh": ("Tanh", None, None), "relu": ("Relu", None, None),
            "linear": ("Affine", 1.0, 0.0), "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5)}


def _rnn_acts(names):
    ops, alphas, betas, any_ab = [], [], [], False
    for n in names:
        op, a, b = _RNN_ACT[n]
        ops.append(op)
        alphas.append(0.0 if a is None else a)
        betas.append(0.0 if b is None else b)
        any_ab |= a is not None
    attrs = {"activations": ops}
    if any_ab:
        attrs.update(activation_alpha=alphas, activation_beta=betas)
    return attrs


def _rnn_keras(g, layer, x, weights):
    if layer.stateful:  # an ONNX graph keeps no state between runs
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): stateful=True cannot be "
                         f"exported to ONNX")
    """One Keras RNN layer (LSTM/GRU/SimpleRNN) on x (batch, T, I) -> Keras's output (a
    sequence in processing order when go_backwards, as Keras returns it, or the last state)."""
    H = layer.units
    kind = layer._kind
    w = weights
    kern, rec = w[0], w[1]
    bias = w[2] if layer.use_bias else None
    if kind == "lstm":  # Keras i, f, c, o -> ONNX i, o, f, c
        perm = np.concatenate([np.arange(0, H), np.arange(3 * H, 4 * H), np.arange(H, 2 * H), np.arange(2 * H, 3 * H)])
        W, R = kern[:, perm].T, rec[:, perm].T
        B = np.concatenate([bias[perm], np.zeros(4 * H)]) if bias is not None else None
        op, acts = "LSTM", [layer.recurrent_activation, layer.activation, layer.activation]
        extra = {}
    elif kind == "gru":  # z, r, h in both
        W, R = kern.T, rec.T
        if bias is None:
            B = None
        elif layer.reset_after:
            B = np.concatenate([bias[0], bias[1]])
        else:
            B = np.concatenate([bias, np.zeros(3 * H)])
        op, acts = "GRU", [layer.recurrent_activation, layer.activation]
        extra = {"linear_before_reset": int(layer.reset_after)}
    else:
        W, R = kern.T, rec.T
        B = np.concatenate([bias, np.zeros(H)]) if bias is not None else None
        op, acts = "RNN", [layer.activation]
        extra = {}
    for a in acts:
        if a not in _RNN_ACT:
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): activation {a!r} has no ONNX RNN form")
    xt = g.transpose(x, (1, 0, 2))  # (T, batch, I): layout 0, which every runtime supports
    args = [xt, g.const(W[None], layer.name + "_W"), g.const(R[None], layer.name + "_R")]
    if B is not None:
        args.append(g.const(B[None], layer.name + "_B"))
    y, y_h = g.op(op, args, n_outputs=2, hidden_size=H,
                  direction="reverse" if layer.go_backwards else "forward", **_rnn_acts(acts), **extra)
    if not layer.return_sequences:
        return g.reshape(y_h, [-1, H])                       # (1, batch, H) -> (batch, H)
    seq = g.transpose(g.reshape(y, [0, -1, H]), (1, 0, 2))     # (T, 1, batch, H) -> (batch, T, H)
    # ONNX aligns a reverse pass with input time; Keras returns it in processing order
    return g.reverse_time(seq) if layer.go_backwards else seq


@register(L.LSTM, L.GRU, L.SimpleRNN)
def _rnn(g, layer, x, shape):
    return _rnn_keras(g, layer, x, layer.get_weights())


@register(L.Bidirectional)
def _bidirectional(g, layer, x, shape):
    f, b = layer.forward_layer, layer.backward_layer
    w = layer.get_weights()
    nf = len(f.get_weights())
    yf = _rnn_keras(g, f, x, w[:nf])
    yb = _rnn_keras(g, b, x, w[nf:])
    if layer.return_sequences:
        yb = g.reverse_time(yb)  # Keras re-aligns the backward sequence to input order
    mode = layer.merge_mode
    if mode == "concat":
        return g.op("Concat", [yf, yb], axis=-1)
    if mode == "sum":
        return g.op("Add", [yf, yb])
    if mode == "mul":
        return g.op("Mul", [yf, yb])
    return g.op("Mul", [g.op("Add", [yf, yb]), g.const(0.5, "half")])


# ---- normalisation (inference form) -----------------------------------------------------------
def _norm_params(layer, names):
    """Named weights of a normalisation layer (gamma/beta may be absent: scale/center False)."""
    out = {}
    for (name, *_), w in zip(layer._specs, layer.get_weights()):
        out[name.split("/")[-1]] = w
    return [out.get(n) for n in names]


def _bcast(shape, axes, values):
    """values (over `axes` of a sample of `shape`) reshaped to broadcast against (batch, *shape)."""
    full = [1] * (len(shape) + 1)
    for a in axes:
        full[a] = shape[a - 1]
    return np.asarray(values, np.float32).reshape(full)


def _axes(layer, shape):
    ax = getattr(layer, "axis", -1)
    ax = [ax] if isinstance(ax, (int, np.integer)) else list(ax)
    return sorted(a % (len(shape) + 1) if a < 0 else a for a in ax)


@register(L.BatchNormalization)
def _batchnorm(g, layer, x, shape):
    gamma, beta, mean, var = _norm_params(layer, ("gamma", "beta", "moving_mean", "moving_variance"))
    axes = _axes(layer, shape)
    scale = (np.ones_like(mean) if gamma is None else gamma) / np.sqrt(var.astype(np.float64) + layer.epsilon)
    shift = (0.0 if beta is None else beta) - mean * scale
    y = g.op("Mul", [x, g.const(_bcast(shape, axes, scale), layer.name + "_scale")])
    return g.op("Add", [y, g.const(_bcast(shape, axes, shift), layer.name + "_shift")])


@register(L.LayerNormalization)
def _layernorm(g, layer, x, shape):
    gamma, beta = _norm_params(layer, ("gamma", "beta"))
    axes = _axes(layer, shape)
    mean = g.reduce("ReduceMean", x, axes, True)
    d = g.op("Sub", [x, mean])
    var = g.reduce("ReduceMean", g.op("Mul", [d, d]), axes, True)
    y = g.op("Div", [d, g.op("Sqrt", [g.op("Add", [var, g.const(float(layer.epsilon), "eps")])])])
    if gamma is not None:
        y = g.op("Mul", [y, g.const(_bcast(shape, axes, gamma), layer.name + "_gamma")])
    if beta is not None:
        y = g.op("Add", [y, g.const(_bcast(shape, axes, beta), layer.name + "_beta")])
    return y


@register(L.Normalization)
def _normalization(g, layer, x, shape):
    mean = np.asarray(layer.mean, np.float64)
    std = np.maximum(np.sqrt(np.asarray(layer.variance, np.float64)), 1e-7)
    if layer.invert:  # standardised values back to the data's scale
        y = g.op("Mul", [x, g.const(std, layer.name + "_std")])
        return g.op("Add", [y, g.const(mean, layer.name + "_mean")])
    y = g.op("Sub", [x, g.const(mean, layer.name + "_mean")])
    return g.op("Div", [y, g.const(std, layer.name + "_std")])


@register(L.Embedding)
def _embedding(g, layer, x, shape):
    if layer.mask_zero:  # the recurrent layers after it would run over the padding
        raise ValueError(f"layer {layer.name!r} (Embedding): mask_zero=True (Keras masking) "
                         f"cannot be exported to ONNX")
    # the model input is float32; indices truncate toward zero, as nncore (and Keras's cast) do
    idx = g.op("Cast", [x], to=TensorProto.INT64)
    return g.op("Gather", [g.const(layer.get_weights()[0], layer.name + "_embeddings"), idx], axis=0)


# ---- export -------------------------------------------------------------------------------------
def _converter(layer):
    for cls in type(layer).__mro__:
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) cannot be exported to ONNX; "
                     f"supported layers: {', '.join(supported_layers())}")


def to_onnx(model, opset=DEFAULT_OPSET, input_name="input", output_name="output", doc_string=None):
    """The model as an onnx.ModelProto (checked with onnx.checker). A Sequential has one input
    and one output named input_name/output_name; a functional model's inputs and outputs are
    named after its input layers and its output names (model.input_names/output_names)."""
    from . import __version__
    from .models import Model, Sequential
    if not isinstance(model, Model):
        raise TypeError(f"export expects an nn.Sequential or nn.Model, got {type(model).__name__}")
    if int(opset) < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    model._require_built()
    ins, steps, outs = model._steps()
    for layer, *_ in steps:  # fail before doing any work
        _converter(layer)
    seq = isinstance(model, Sequential)
    in_names = [input_name] if seq else list(model.input_names)
    out_names = [output_name] if seq else list(model.output_names)
    g = Graph(int(opset))
    name = dict(zip(ins, in_names))
    for layer, in_keys, out_key, in_shape, _ in steps:
        x = [name[k] for k in in_keys] if layer._multi_input else name[in_keys[0]]
        name[out_key] = _converter(layer)(g, layer, x, in_shape)
    for k, nm in zip(outs, out_names):
        g.nodes.append(helper.make_node("Identity", [name[k]], [nm], name=f"output_identity_{nm}"))
    graph = helper.make_graph(
        g.nodes, model.name,
        [helper.make_tensor_value_info(nm, TensorProto.FLOAT, ["batch", *s])
         for nm, s in zip(in_names, model._in_shapes())],
        [helper.make_tensor_value_info(nm, TensorProto.FLOAT, ["batch", *s])
         for nm, s in zip(out_names, model._engine_out_shapes)],
        initializer=g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="nncore", producer_version=__version__,
                              doc_string=doc_string or "")
    onnx.checker.check_model(proto)
    return proto


def shape_in(model):
    return list(model._input_shape)


def export(model, path, opset=DEFAULT_OPSET, input_name="input", output_name="output"):
    """Write `model` (an nn.Sequential or nn.Model) to an ONNX file at `path`; returns the ModelProto.

    The graph computes model.predict (inference form: Dropout is the identity, normalisation
    uses moving statistics). Raises ValueError naming the first layer that has no converter."""
    proto = to_onnx(model, opset=opset, input_name=input_name, output_name=output_name)
    onnx.save(proto, path)
    return proto
