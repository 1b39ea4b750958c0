"""Activations with Keras's names. Layers resolve them to a C kernel id with `get_id`; the
functions here apply them to NumPy arrays with the same kernels."""
import numpy as np

from . import _kernels as K

# name -> (kernel id, default alpha). Ids match NNC_ACT_* in csrc/include/nncore/nnc_core.h.
_TABLE = {
    "linear": (0, 0.0), "relu": (1, 0.0), "sigmoid": (2, 0.0), "tanh": (3, 0.0), "softmax": (4, 0.0),
    "leaky_relu": (5, 0.2), "elu": (6, 1.0), "gelu": (7, 0.0), "swish": (8, 0.0), "softplus": (9, 0.0),
    "selu": (10, 0.0), "relu6": (11, 0.0), "hard_sigmoid": (12, 0.0), "softsign": (13, 0.0),
}
_ALIASES = {"silu": "swish", None: "linear"}
_FUNCS = {}


def _canonical(identifier):
    if identifier is None:
        return "linear"
    if callable(identifier):
        name = _FUNCS.get(identifier)
        if name is None:
            raise ValueError(
                f"activation {identifier!r} is not one of nncore's built-in activations; "
                f"custom Python activations are not supported by the C engine. "
                f"Use one of: {', '.join(sorted(_TABLE))}")
        return name
    if not isinstance(identifier, str):
        raise TypeError(f"activation must be a string or an nncore activation function, got {identifier!r}")
    name = _ALIASES.get(identifier.lower(), identifier.lower())
    if name not in _TABLE:
        raise ValueError(f"unknown activation {identifier!r}; expected one of: {', '.join(sorted(_TABLE))}")
    return name


def serialize(identifier):
    """The Keras name of an activation (string, function or None)."""
    return _canonical(identifier)


def get_id(identifier):
    """(kernel id, alpha) for an activation name or function."""
    return _TABLE[_canonical(identifier)]


def _apply(name, x, alpha=None):
    x = np.asarray(x, dtype=np.float32)
    act, default_alpha = _TABLE[name]
    a = default_alpha if alpha is None else float(alpha)
    flat = np.ascontiguousarray(x.reshape(-1, x.shape[-1] if x.ndim else 1))
    out = np.empty_like(flat)
    K.act_forward(act, a, flat, out)
    return out.reshape(x.shape)


def _make(name, doc, has_alpha=False):
    if has_alpha:
        def f(x, alpha=None):
            return _apply(name, x, alpha)
    else:
        def f(x):
            return _apply(name, x)
    f.__name__ = name
    f.__doc__ = doc
    _FUNCS[f] = name
    return f


linear = _make("linear", "Identity.")
relu = _make("relu", "max(x, 0).")
sigmoid = _make("sigmoid", "1 / (1 + exp(-x)).")
tanh = _make("tanh", "Hyperbolic tangent.")
softmax = _make("softmax", "Softmax over the last axis.")
leaky_relu = _make("leaky_relu", "x if x >= 0 else alpha*x (Keras default alpha=0.2).", True)
elu = _make("elu", "x if x > 0 else alpha*(exp(x)-1).", True)
gelu = _make("gelu", "Gaussian error linear unit, exact erf form (Keras's default).")
swish = _make("swish", "x * sigmoid(x).")
silu = swish
softplus = _make("softplus", "log(1 + exp(x)).")
selu = _make("selu", "Scaled exponential linear unit.")
relu6 = _make("relu6", "min(max(x, 0), 6).")
hard_sigmoid = _make("hard_sigmoid", "relu6(x + 3) / 6.")
softsign = _make("softsign", "x / (1 + |x|).")


def get(identifier):
    """The activation function for a name (Keras's `activations.get`)."""
    name = _canonical(identifier)
    return {v: k for k, v in _FUNCS.items()}[name]
