"""Convolution and pooling on NHWC NumPy arrays (channels_last, Keras layouts).

Forward ops return the output; with ``return_context=True`` they return ``(y, ctx)`` where
``ctx`` is a small context object holding what the backward needs (the input, the weights and
the packed-weight plan for convolutions, the argmax bytes for max pooling). Every backward
takes either such a context or the forward's arguments::

    y, ctx = nn.ops.conv2d(x, kernel, bias, padding="same", activation="relu",
                           return_context=True)
    dx, dkernel, dbias = nn.ops.conv2d_backward(ctx, dy)
    # or, recomputing the forward internally:
    dx, dkernel, dbias = nn.ops.conv2d_backward((x, kernel, bias), dy, padding="same",
                                                activation="relu")

``dy`` is the gradient with respect to the op's output (after the activation). Shapes:
conv2d x (N, H, W, C_in), kernel (KH, KW, C_in, C_out) (HWIO); conv1d x (N, L, C_in), kernel
(K, C_in, C_out). ``padding`` is 'valid' or 'same' (Keras/TensorFlow rule: the extra padded
row/column goes after), and 'causal' for conv1d. Pooling windows never count padded positions
(Keras: padded averages divide by the number of real elements).

Inputs of any float/int dtype, strides or read-only flags are accepted and converted to
C-contiguous float32 once. All results are float32 and bitwise identical for any thread count.
"""
import threading

import numpy as np

from .. import _kernels as K
from .matmul import _as_f32

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward",
    "max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool1d", "avg_pool1d_backward", "avg_pool2d", "avg_pool2d_backward",
    "global_avg_pool1d", "global_avg_pool1d_backward", "global_avg_pool2d",
    "global_avg_pool2d_backward", "global_max_pool1d", "global_max_pool1d_backward",
    "global_max_pool2d", "global_max_pool2d_backward",
    "ConvContext", "PoolContext", "conv_output_length",
]

# Activations fused into the GEMM epilogue (linear, relu, leaky_relu, relu6; ids from nnc_core.h).
_FUSED = (0, 1, 5, 11)


def _resolve_act(activation):
    """(act_id, alpha, name) from a Keras activation name or nncore function (None = linear)."""
    from .. import activations as _acts
    try:
        name = _acts.serialize(activation)
    except TypeError as e:
        raise ValueError(f"bad activation: {e}") from None
    act_id, alpha = _acts.get_id(name)
    return int(act_id), float(alpha), name


def _tuple(v, n, name, allow_zero=False):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v),) * n
    try:
        ok = all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v)
        t = tuple(int(i) for i in v) if ok else ()
    except TypeError:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v!r}") from None
    if not ok or len(t) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v!r}")
    lo = 0 if allow_zero else 1
    if any(i < lo for i in t):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {v!r}")
    return t


def _padding(padding, allowed=("valid", "same")):
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise ValueError(f"padding must be one of {list(allowed)}, got {padding!r}")
    return padding.lower()


def conv_output_length(length, k, stride, padding, dilation=1):
    """(output length, padding before) for one spatial dim; ValueError when impossible."""
    keff = (k - 1) * dilation + 1
    if padding == "valid":
        if length < keff:
            raise ValueError(f"kernel extent {keff} (size {k}, dilation {dilation}) is larger "
                             f"than the input length {length} with padding='valid'")
        return (length - keff) // stride + 1, 0
    if padding == "same":
        if length < 1:
            raise ValueError(f"input length must be positive, got {length}")
        out = -(-length // stride)
        total = max((out - 1) * stride + keff - length, 0)
        return out, total // 2
    if padding == "causal":
        return (length - 1) // stride + 1, keff - 1
    raise ValueError(f"unknown padding {padding!r}")


class ConvContext:
    """What conv1d/conv2d_backward need: input, kernel, bias, output, activation, and a plan of
    its own (taken out of the thread's cache, whose packed weights and scratch other forwards
    reuse), used under the context's lock, so a context may go to another thread. Its backward
    hands the plan to the cache of the thread it ran on (a later backward makes a new one)."""
    __slots__ = ("x", "kernel", "bias", "y", "z", "act", "alpha", "plan", "geom", "ndim", "x_shape",
                 "k_shape", "lock")

    def __repr__(self):
        return f"ConvContext(x{self.x_shape}, kernel{self.k_shape}, act={self.act})"


class PoolContext:
    """What the pooling backwards need: geometry, input shape, argmax bytes (max), x/y (global max)."""
    __slots__ = ("kind", "geom", "x_shape", "y_shape", "argmax", "x", "y")

    def __repr__(self):
        return f"PoolContext({self.kind}, x{self.x_shape} -> y{self.y_shape})"


_local = threading.local()


def _plan(geom, take=False):
    """A Conv2DPlan per geometry, cached per Python thread (packing and scratch are reused);
    take=True hands the plan over (to a context) and the cache makes a new one next time."""
    cache = getattr(_local, "plans", None)
    if cache is None:
        cache = _local.plans = {}
    if take:
        return cache.pop(geom, None) or K.Conv2DPlan(geom)
    p = cache.get(geom)
    if p is None:
        p = _cache_put(cache, geom, K.Conv2DPlan(geom))
    return p


def _cache_put(cache, geom, plan):
    if len(cache) >= 32:
        cache.pop(next(iter(cache)))
    cache[geom] = plan
    return plan


def _give_back(geom, plan):
    """A context's plan after its backward, into this thread's cache if it has none for geom."""
    cache = getattr(_local, "plans", None)
    if cache is None:
        cache = _local.plans = {}
    if geom not in cache:
        _cache_put(cache, geom, plan)


def _conv_forward(x, kernel, bias, strides, padding, dilation, activation, ndim, return_context):
    x = _as_f32(x, "x")
    kernel = _as_f32(kernel, "kernel")
    if x.ndim != ndim + 2:
        raise ValueError(f"conv{ndim}d expects x of rank {ndim + 2} (batch, "
                         f"{'steps' if ndim == 1 else 'height, width'}, channels), got shape {x.shape}")
    if kernel.ndim != ndim + 2:
        raise ValueError(f"conv{ndim}d expects a kernel of rank {ndim + 2} "
                         f"({'K' if ndim == 1 else 'KH, KW'}, C_in, C_out), got shape {kernel.shape}")
    if any(s <= 0 for s in x.shape[1:]) or any(s <= 0 for s in kernel.shape):
        raise ValueError(f"zero-size dimension in x {x.shape} or kernel {kernel.shape}")
    if kernel.shape[-2] != x.shape[-1]:
        raise ValueError(f"channel mismatch: x has {x.shape[-1]} channels but the kernel expects "
                         f"{kernel.shape[-2]} (kernel shape {kernel.shape})")
    F = kernel.shape[-1]
    if bias is not None:
        bias = _as_f32(bias, "bias")
        if bias.shape != (F,):
            raise ValueError(f"bias must have shape ({F},), got {bias.shape}")
    strides = _tuple(strides, ndim, "strides")
    dilation = _tuple(dilation, ndim, "dilation_rate")
    padding = _padding(padding, ("valid", "same", "causal") if ndim == 1 else ("valid", "same"))
    act, alpha, act_name = _resolve_act(activation)
    if ndim == 1:
        x4 = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
        k4 = kernel.reshape(1, *kernel.shape)
        strides, dilation = (1,) + strides, (1,) + dilation
    else:
        x4, k4 = x, kernel
    N, H, W, C = x4.shape
    KH, KW = k4.shape[:2]
    if ndim == 1:
        OH, pt = 1, 0
    else:
        OH, pt = conv_output_length(H, KH, strides[0], padding, dilation[0])
    OW, pl = conv_output_length(W, KW, strides[1], padding, dilation[1])
    geom = (H, W, C, KH, KW, F, strides[0], strides[1], dilation[0], dilation[1], pt, pl, OH, OW)
    plan = _plan(geom, take=return_context)
    plan.set_weights(k4)
    y = np.empty((N, OH, OW, F), np.float32)
    z = None
    if act in _FUSED:  # in the GEMM epilogue
        plan.forward(x4, bias, act, alpha, y)
    else:  # z = conv + bias, then one elementwise pass (softmax is over the channels)
        z = np.empty_like(y)
        plan.forward(x4, bias, 0, 0.0, z)
        K.act_forward(act, alpha, z, y)
    out = y.reshape(N, OW, F) if ndim == 1 else y
    if not return_context:
        return out
    ctx = ConvContext()
    ctx.x, ctx.kernel, ctx.bias, ctx.y = x4, k4, bias, y
    ctx.act, ctx.alpha, ctx.plan, ctx.geom, ctx.ndim, ctx.z = act, alpha, plan, geom, ndim, z
    ctx.x_shape, ctx.k_shape = x.shape, kernel.shape
    ctx.lock = threading.Lock()
    return out, ctx


def _conv_backward(ctx, dy, ndim):
    if ctx.ndim != ndim:
        raise ValueError(f"context is from conv{ctx.ndim}d, not conv{ndim}d")
    dy = np.array(dy, dtype=np.float32, order="C", copy=True)  # overwritten in place below
    if dy.size != ctx.y.size or dy.shape[0] != ctx.y.shape[0]:
        raise ValueError(f"dy has shape {dy.shape}; the forward output had shape "
                         f"{ctx.y.shape if ndim == 2 else (ctx.y.shape[0],) + ctx.y.shape[2:]}")
    dy = dy.reshape(ctx.y.shape)
    with ctx.lock:
        return _conv_backward_locked(ctx, dy, ndim)


def _conv_backward_locked(ctx, dy, ndim):
    plan, ctx.plan = ctx.plan, None
    if plan is None:  # the context's plan went back to a cache after an earlier backward
        plan = K.Conv2DPlan(ctx.geom)
        plan.set_weights(ctx.kernel)
    F = ctx.y.shape[-1]
    db = np.empty(F, np.float32) if ctx.bias is not None else None
    if ctx.act in _FUSED:
        K.conv_act_backward(ctx.act, ctx.alpha, ctx.y, dy, db)
    else:
        K.act_backward(ctx.act, ctx.alpha, ctx.z, ctx.y, dy, dx=dy, db=db)
    dx = np.empty(ctx.x.shape, np.float32)
    dk = np.empty(ctx.kernel.shape, np.float32)
    plan.backward_data(dy, dx)
    plan.backward_weights(ctx.x, dy, dk, None)
    _give_back(ctx.geom, plan)
    return dx.reshape(ctx.x_shape), dk.reshape(ctx.k_shape), db


def _ctx_from_args(args, dy, fwd, kwargs):
    if isinstance(args, dict):
        return fwd(**args, **kwargs, return_context=True)[1]
    if isinstance(args, (tuple, list)) and 2 <= len(args) <= 3:
        return fwd(*args, **kwargs, return_context=True)[1]
    raise TypeError("expected a context from the forward (return_context=True) or a tuple "
                    "(x, kernel[, bias])")


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, activation=None,
           return_context=False):
    """2-D convolution, NHWC input and HWIO kernel. bias and relu/leaky_relu/relu6 are fused in
    the GEMM epilogue; any other Keras activation runs as one elementwise pass after it."""
    return _conv_forward(x, kernel, bias, strides, padding, dilation_rate, activation, 2,
                         return_context)


def conv2d_backward(ctx_or_args, dy, **forward_kwargs):
    """(dx, dkernel, dbias) for the upstream gradient dy (dbias is None without a bias).
    ctx_or_args: the context from conv2d(..., return_context=True), or (x, kernel[, bias]) with
    the forward's keyword arguments (strides, padding, dilation_rate, activation)."""
    ctx = ctx_or_args if isinstance(ctx_or_args, ConvContext) else _ctx_from_args(
        ctx_or_args, dy, conv2d, forward_kwargs)
    return _conv_backward(ctx, dy, 2)


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, activation=None,
           return_context=False):
    """1-D convolution: x (N, L, C_in), kernel (K, C_in, C_out); padding valid/same/causal."""
    return _conv_forward(x, kernel, bias, strides, padding, dilation_rate, activation, 1,
                         return_context)


def conv1d_backward(ctx_or_args, dy, **forward_kwargs):
    """(dx, dkernel, dbias); see conv2d_backward."""
    ctx = ctx_or_args if isinstance(ctx_or_args, ConvContext) else _ctx_from_args(
        ctx_or_args, dy, conv1d, forward_kwargs)
    return _conv_backward(ctx, dy, 1)


# ---------------------------------------------------------------- pooling

def _pool_setup(x, pool_size, strides, padding, ndim, kind):
    x = _as_f32(x, "x")
    if x.ndim != ndim + 2:
        raise ValueError(f"{kind}_pool{ndim}d expects x of rank {ndim + 2}, got shape {x.shape}")
    if any(s <= 0 for s in x.shape[1:]):
        raise ValueError(f"zero-size dimension in x {x.shape}")
    pool = _tuple(pool_size, ndim, "pool_size")
    strides = pool if strides is None else _tuple(strides, ndim, "strides")
    padding = _padding(padding)
    if ndim == 1:
        pool, strides = (1,) + pool, (1,) + strides
        x4 = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
    else:
        x4 = x
    if pool[0] * pool[1] > 256:
        raise ValueError(f"pool_size {pool_size} has more than 256 positions")
    N, H, W, C = x4.shape
    OH, pt = conv_output_length(H, pool[0], strides[0], padding)
    OW, pl = conv_output_length(W, pool[1], strides[1], padding)
    geom = (H, W, C, pool[0], pool[1], strides[0], strides[1], pt, pl, OH, OW)
    return x, x4, geom


def _pool_forward(kind, x, pool_size, strides, padding, ndim, return_context):
    x, x4, geom = _pool_setup(x, pool_size, strides, padding, ndim, kind)
    N, C = x4.shape[0], x4.shape[3]
    OH, OW = geom[9], geom[10]
    y = np.empty((N, OH, OW, C), np.float32)
    argmax = None
    if kind == "max":
        argmax = np.empty((N, OH, OW, C), np.uint8) if return_context else None
        K.maxpool2d_forward(geom, x4, y, argmax)
    else:
        K.avgpool2d_forward(geom, x4, y)
    out = y.reshape(N, OW, C) if ndim == 1 else y
    if not return_context:
        return out
    ctx = PoolContext()
    ctx.kind, ctx.geom, ctx.x_shape, ctx.y_shape = f"{kind}{ndim}d", geom, x.shape, out.shape
    ctx.argmax, ctx.x, ctx.y = argmax, None, None
    return out, ctx


def _pool_backward(kind, ctx_or_args, dy, ndim, kwargs):
    if not isinstance(ctx_or_args, PoolContext):
        x = ctx_or_args[0] if isinstance(ctx_or_args, (tuple, list)) else ctx_or_args
        fwd = {"max": (max_pool1d, max_pool2d), "avg": (avg_pool1d, avg_pool2d)}[kind][ndim - 1]
        ctx = fwd(x, **kwargs, return_context=True)[1]
    else:
        ctx = ctx_or_args
    if ctx.kind != f"{kind}{ndim}d":
        raise ValueError(f"context is from {ctx.kind} pooling, not {kind}{ndim}d")
    dy = _as_f32(dy, "dy")
    if dy.shape != tuple(ctx.y_shape):
        raise ValueError(f"dy has shape {dy.shape}, expected {tuple(ctx.y_shape)}")
    dx = np.empty(ctx.x_shape, np.float32)
    N = ctx.x_shape[0]
    dx4 = dx.reshape(N, 1, *ctx.x_shape[1:]) if ndim == 1 else dx
    if kind == "max":
        K.maxpool2d_backward(ctx.geom, dy, ctx.argmax, dx4)
    else:
        K.avgpool2d_backward(ctx.geom, dy, dx4)
    return dx


def max_pool2d(x, pool_size=(2, 2), strides=None, padding="valid", return_context=False):
    """Max pooling over (N, H, W, C); strides default to pool_size (Keras)."""
    return _pool_forward("max", x, pool_size, strides, padding, 2, return_context)


def max_pool2d_backward(ctx_or_args, dy, **forward_kwargs):
    """dx for dy: to the first maximum of each window. ctx_or_args: context or x (+ forward kwargs)."""
    return _pool_backward("max", ctx_or_args, dy, 2, forward_kwargs)


def max_pool1d(x, pool_size=2, strides=None, padding="valid", return_context=False):
    """Max pooling over (N, L, C)."""
    return _pool_forward("max", x, pool_size, strides, padding, 1, return_context)


def max_pool1d_backward(ctx_or_args, dy, **forward_kwargs):
    return _pool_backward("max", ctx_or_args, dy, 1, forward_kwargs)


def avg_pool2d(x, pool_size=(2, 2), strides=None, padding="valid", return_context=False):
    """Average pooling over (N, H, W, C); padded positions are not counted (Keras)."""
    return _pool_forward("avg", x, pool_size, strides, padding, 2, return_context)


def avg_pool2d_backward(ctx_or_args, dy, **forward_kwargs):
    return _pool_backward("avg", ctx_or_args, dy, 2, forward_kwargs)


def avg_pool1d(x, pool_size=2, strides=None, padding="valid", return_context=False):
    return _pool_forward("avg", x, pool_size, strides, padding, 1, return_context)


def avg_pool1d_backward(ctx_or_args, dy, **forward_kwargs):
    return _pool_backward("avg", ctx_or_args, dy, 1, forward_kwargs)


# ---------------------------------------------------------------- global pooling

def _global_forward(kind, x, ndim, return_context):
    x = _as_f32(x, "x")
    if x.ndim != ndim + 2:
        raise ValueError(f"global_{kind}_pool{ndim}d expects x of rank {ndim + 2}, got shape {x.shape}")
    if any(s <= 0 for s in x.shape[1:]):
        raise ValueError(f"zero-size dimension in x {x.shape}")
    N, C = x.shape[0], x.shape[-1]
    S = int(np.prod(x.shape[1:-1]))
    x3 = x.reshape(N, S, C)
    y = np.empty((N, C), np.float32)
    K.global_pool_forward(kind == "max", x3, y)
    if not return_context:
        return y
    ctx = PoolContext()
    ctx.kind, ctx.geom, ctx.x_shape, ctx.y_shape = f"global_{kind}{ndim}d", None, x.shape, y.shape
    ctx.argmax, ctx.x, ctx.y = None, (x3 if kind == "max" else None), (y if kind == "max" else None)
    return y, ctx


def _global_backward(kind, ctx_or_args, dy, ndim):
    if not isinstance(ctx_or_args, PoolContext):
        x = ctx_or_args[0] if isinstance(ctx_or_args, (tuple, list)) else ctx_or_args
        ctx = _global_forward(kind, x, ndim, True)[1]
    else:
        ctx = ctx_or_args
    if ctx.kind != f"global_{kind}{ndim}d":
        raise ValueError(f"context is from {ctx.kind} pooling, not global_{kind}{ndim}d")
    dy = _as_f32(dy, "dy")
    if dy.shape != tuple(ctx.y_shape):
        raise ValueError(f"dy has shape {dy.shape}, expected {tuple(ctx.y_shape)}")
    N, C = ctx.x_shape[0], ctx.x_shape[-1]
    S = int(np.prod(ctx.x_shape[1:-1]))
    dx = np.empty((N, S, C), np.float32)
    if kind == "max":
        K.global_maxpool_backward(ctx.x, ctx.y, dy, dx)
    else:
        K.global_avgpool_backward(dy, dx)
    return dx.reshape(ctx.x_shape)


def global_avg_pool2d(x, return_context=False):
    """Mean over H and W: (N, H, W, C) -> (N, C)."""
    return _global_forward("avg", x, 2, return_context)


def global_avg_pool2d_backward(ctx_or_args, dy):
    return _global_backward("avg", ctx_or_args, dy, 2)


def global_avg_pool1d(x, return_context=False):
    """Mean over steps: (N, L, C) -> (N, C)."""
    return _global_forward("avg", x, 1, return_context)


def global_avg_pool1d_backward(ctx_or_args, dy):
    return _global_backward("avg", ctx_or_args, dy, 1)


def global_max_pool2d(x, return_context=False):
    """Max over H and W: (N, H, W, C) -> (N, C)."""
    return _global_forward("max", x, 2, return_context)


def global_max_pool2d_backward(ctx_or_args, dy):
    """dy goes to the first position holding each maximum."""
    return _global_backward("max", ctx_or_args, dy, 2)


def global_max_pool1d(x, return_context=False):
    return _global_forward("max", x, 1, return_context)


def global_max_pool1d_backward(ctx_or_args, dy):
    return _global_backward("max", ctx_or_args, dy, 1)
