"""Recurrent ops on batch-major NumPy arrays with Keras-layout weights.

    y = nn.ops.lstm(x, kernel, recurrent_kernel, bias)                 # [B, H]
    y, h, c = nn.ops.lstm(x, W, U, b, return_sequences=True, return_state=True)
    (y, ctx) = nn.ops.lstm(x, W, U, b, return_context=True)
    dx, dW, dU, db, (dh0, dc0) = nn.ops.lstm_backward(ctx, dy)          # or ctx.backward(dy)
    y = nn.ops.gru(x, W, U, b, mask=lengths_mask)                       # Keras masking, [B, T]

Layouts (Keras): kernel [I, G*H], recurrent_kernel [H, G*H]; LSTM gates i, f, c, o (G = 4),
bias [4H]; GRU gates z, r, h (G = 3), bias [2, 3H] (input bias, recurrent bias) when
reset_after=True (the default) else [3H]; SimpleRNN h_t = act(x_t W + h_{t-1} U + b) (G = 1).
"""
import numpy as np

from .. import _kernels as K
from .matmul import _as_f32

__all__ = ["lstm", "gru", "simple_rnn", "lstm_backward", "gru_backward", "simple_rnn_backward",
           "RNNContext", "RNN_ACTIVATIONS"]

# Activations the fused gate kernels implement (derivatives are taken from the outputs).
RNN_ACTIVATIONS = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "hard_sigmoid": 12}
_CELL = {"simple_rnn": 0, "lstm": 1, "gru": 2}
_GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
_NAMES = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def activation_id(act, what="activation"):
    """Keras activation name (or None for linear) -> kernel id; ValueError if unsupported."""
    if act is None:
        return 0
    name = getattr(act, "__name__", act)
    if isinstance(name, str):
        key = name.lower()
        if key in RNN_ACTIVATIONS:
            return RNN_ACTIVATIONS[key]
    raise ValueError(f"unsupported {what} {act!r} for a recurrent layer; "
                     f"supported: {sorted(RNN_ACTIVATIONS)}")


def _check_finite(a, name):
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinity")


def _validate(kind, x, kernel, recurrent_kernel, bias, reset_after):
    G = _GATES[kind]
    lname = _NAMES[kind]
    x = _as_f32(x, "x")
    if x.ndim != 3:
        raise ValueError(f"{lname} expects a 3-D input [batch, timesteps, features], "
                         f"got shape {x.shape}")
    B, T, I = x.shape
    if T == 0:
        raise ValueError(f"{lname} input has zero timesteps (shape {x.shape})")
    if B == 0:
        raise ValueError(f"{lname} input has a batch of zero (shape {x.shape})")
    if I == 0:
        raise ValueError(f"{lname} input has zero features (shape {x.shape})")
    W = _as_f32(kernel, "kernel")
    U = _as_f32(recurrent_kernel, "recurrent_kernel")
    if W.ndim != 2 or W.shape[1] % G or W.shape[1] == 0:
        raise ValueError(f"{lname} kernel must have shape [features, {G}*units], got {W.shape}")
    H = W.shape[1] // G
    if W.shape[0] != I:
        raise ValueError(f"{lname} input has {I} features but the kernel expects {W.shape[0]} "
                         f"(kernel shape {W.shape})")
    if U.shape != (H, G * H):
        raise ValueError(f"{lname} recurrent_kernel must have shape {(H, G * H)} for {H} units, "
                         f"got {U.shape}")
    b = None
    if bias is not None:
        b = _as_f32(bias, "bias")
        want = (2, G * H) if (kind == "gru" and reset_after) else (G * H,)
        if b.shape != want:
            raise ValueError(f"{lname} bias must have shape {want}, got {b.shape}"
                             + (" (reset_after=True uses input and recurrent biases)"
                                if kind == "gru" and reset_after else ""))
    for a, n in ((x, "x"), (W, "kernel"), (U, "recurrent_kernel"), (b, "bias")):
        if a is not None:
            _check_finite(a, n)
    return x, W, U, b, B, T, I, H


def _state(s, B, H, name):
    a = _as_f32(s, name)
    if a.shape != (B, H):
        raise ValueError(f"{name} must have shape {(B, H)}, got {a.shape}")
    _check_finite(a, name)
    return a


def _initial_states(kind, initial_state, B, H):
    n = 2 if kind == "lstm" else 1
    if initial_state is None:
        return [None] * n
    if isinstance(initial_state, np.ndarray) and initial_state.ndim == 2:
        initial_state = [initial_state]
    states = list(initial_state)
    if len(states) != n:
        raise ValueError(f"{_NAMES[kind]} expects {n} initial state array(s) "
                         f"({'[h, c]' if n == 2 else '[h]'}), got {len(states)}")
    names = ["initial h", "initial c"]
    return [None if s is None else _state(s, B, H, names[i]) for i, s in enumerate(states)]


def _mask(m, shape, name):
    if m is None:
        return None
    a = _as_f32(m, name)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    _check_finite(a, name)
    return a


def _step_mask(m, B, T):
    """Keras step mask [B, T] (bool or numbers, nonzero = a real step) -> uint8, or None."""
    if m is None:
        return None
    try:
        a = np.asarray(m)
    except (TypeError, ValueError) as e:
        raise TypeError(f"mask must be a boolean array of shape {(B, T)}") from e
    if a.dtype != bool and not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"mask must be a boolean array of shape {(B, T)}, got dtype {a.dtype}")
    if a.shape != (B, T):
        raise ValueError(f"mask must have shape [batch, timesteps] = {(B, T)}, got {a.shape}")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise ValueError("mask contains NaN or infinity")
    return np.ascontiguousarray(a != 0, dtype=np.uint8)


class RNNContext:
    """What a forward keeps for its backward (the C workspace, weights and shapes)."""

    def __init__(self, kind, core, shapes, bias_shape, use_bias, return_sequences):
        self.kind = kind
        self._core = core
        self.B, self.T, self.I, self.H = shapes
        self.bias_shape = bias_shape
        self.use_bias = use_bias
        self.return_sequences = return_sequences

    def backward(self, dy=None, dstates=None):
        """Gradients for an upstream gradient dy (w.r.t. the output) and optional dstates
        (w.r.t. the returned final states, [dh] or [dh, dc]).

        Returns (dx, dkernel, drecurrent_kernel, dbias or None, [dh0] or [dh0, dc0])."""
        B, T, I, H = self.B, self.T, self.I, self.H
        G = _GATES[self.kind]
        yshape = (B, T, H) if self.return_sequences else (B, H)
        dyv = None
        if dy is not None:
            dyv = _as_f32(dy, "dy")
            if dyv.shape != yshape:
                raise ValueError(f"dy must have the output's shape {yshape}, got {dyv.shape}")
        n = 2 if self.kind == "lstm" else 1
        ds = [None] * n
        if dstates is not None:
            if isinstance(dstates, np.ndarray) and dstates.ndim == 2:
                dstates = [dstates]
            dstates = list(dstates)
            if len(dstates) > n:
                raise ValueError(f"dstates takes at most {n} array(s), got {len(dstates)}")
            for i, s in enumerate(dstates):
                ds[i] = None if s is None else _state(s, B, H, ["dh", "dc"][i])
        dx = np.empty((B, T, I), np.float32)
        dW = np.empty((I, G * H), np.float32)
        dU = np.empty((H, G * H), np.float32)
        db = np.empty(self.bias_shape, np.float32) if self.use_bias else None
        dh0 = np.empty((B, H), np.float32)
        dc0 = np.empty((B, H), np.float32) if n == 2 else None
        self._core.backward(dyv, ds[0], ds[1] if n == 2 else None, dx, dW, dU, db, dh0, dc0)
        return dx, dW, dU, db, ([dh0, dc0] if n == 2 else [dh0])


def _run(kind, x, kernel, recurrent_kernel, bias, initial_state, return_sequences, return_state,
         go_backwards, activation, recurrent_activation, reset_after, return_context,
         dropout_mask=None, recurrent_dropout_mask=None, mask=None, zero_output_for_mask=False):
    x, W, U, b, B, T, I, H = _validate(kind, x, kernel, recurrent_kernel, bias, reset_after)
    act = activation_id(activation, "activation")
    ract = activation_id(recurrent_activation, "recurrent_activation") if kind != "simple_rnn" else 0
    states = _initial_states(kind, initial_state, B, H)
    imask = _mask(dropout_mask, (B, I), "dropout_mask")
    rmask = _mask(recurrent_dropout_mask, (B, H), "recurrent_dropout_mask")
    smask = _step_mask(mask, B, T)
    core = K.RNNCore(_CELL[kind], I, H, act, ract, b is not None, bool(reset_after),
                     bool(go_backwards), bool(return_sequences))
    core.set_weights(W, U, b)
    y = np.empty((B, T, H) if return_sequences else (B, H), np.float32)
    hT = np.empty((B, H), np.float32) if return_state else None
    cT = np.empty((B, H), np.float32) if (return_state and kind == "lstm") else None
    core.forward(x, states[0], states[1] if kind == "lstm" else None, imask, rmask, y, hT, cT,
                 smask, bool(zero_output_for_mask))
    if return_state:
        out = [y, hT, cT] if kind == "lstm" else [y, hT]
    else:
        out = y
    if not return_context:
        return out
    bias_shape = None if b is None else b.shape
    ctx = RNNContext(kind, core, (B, T, I, H), bias_shape, b is not None, bool(return_sequences))
    return out, ctx


def lstm(x, kernel, recurrent_kernel, bias=None, initial_state=None, *, return_sequences=False,
         return_state=False, go_backwards=False, activation="tanh",
         recurrent_activation="sigmoid", return_context=False, dropout_mask=None,
         recurrent_dropout_mask=None, mask=None, zero_output_for_mask=False):
    """LSTM over x [B, T, I] (Keras layouts, gates i, f, c, o).

    initial_state: [h0, c0] ([B, H] each, None = zeros). Returns the output ([B, T, H] with
    return_sequences, else [B, H]); with return_state, [output, h, c]; with return_context,
    (that, ctx) where ctx.backward(dy, dstates) gives the gradients. dropout_mask [B, I] and
    recurrent_dropout_mask [B, H] (already scaled) are applied as Keras 3 applies them.

    mask [B, T] (Keras masking, True = a real step): a masked step keeps the states as they
    were and gets no gradient; its output is the previous output (0 before the first real
    step), or 0 with zero_output_for_mask (what Keras's Bidirectional uses for sequences)."""
    return _run("lstm", x, kernel, recurrent_kernel, bias, initial_state, return_sequences,
                return_state, go_backwards, activation, recurrent_activation, False,
                return_context, dropout_mask, recurrent_dropout_mask, mask, zero_output_for_mask)


def gru(x, kernel, recurrent_kernel, bias=None, initial_state=None, *, return_sequences=False,
        return_state=False, go_backwards=False, activation="tanh", recurrent_activation="sigmoid",
        reset_after=True, return_context=False, dropout_mask=None, recurrent_dropout_mask=None,
        mask=None, zero_output_for_mask=False):
    """GRU over x [B, T, I] (Keras layouts, gates z, r, h; h = z*h_prev + (1-z)*h~).

    bias is [2, 3H] (input, recurrent) with reset_after=True, else [3H]. initial_state: [h0].
    Returns like lstm, with [output, h] for return_state; mask as for lstm."""
    return _run("gru", x, kernel, recurrent_kernel, bias, initial_state, return_sequences,
                return_state, go_backwards, activation, recurrent_activation, reset_after,
                return_context, dropout_mask, recurrent_dropout_mask, mask, zero_output_for_mask)


def simple_rnn(x, kernel, recurrent_kernel, bias=None, initial_state=None, *,
               return_sequences=False, return_state=False, go_backwards=False, activation="tanh",
               return_context=False, dropout_mask=None, recurrent_dropout_mask=None, mask=None,
               zero_output_for_mask=False):
    """SimpleRNN over x [B, T, I]: h_t = act(x_t W + h_{t-1} U + b). Returns like gru."""
    return _run("simple_rnn", x, kernel, recurrent_kernel, bias, initial_state, return_sequences,
                return_state, go_backwards, activation, None, False, return_context,
                dropout_mask, recurrent_dropout_mask, mask, zero_output_for_mask)


def _backward(kind, ctx, dy, dstates):
    if not isinstance(ctx, RNNContext):
        raise TypeError(f"expected the context returned by {kind}(..., return_context=True), "
                        f"got {type(ctx).__name__}")
    if ctx.kind != kind:
        raise ValueError(f"this context comes from {ctx.kind}, not {kind}")
    return ctx.backward(dy, dstates)


def lstm_backward(ctx, dy=None, dstates=None):
    """(dx, dkernel, drecurrent_kernel, dbias, [dh0, dc0]) for upstream dy (and dstates)."""
    return _backward("lstm", ctx, dy, dstates)


def gru_backward(ctx, dy=None, dstates=None):
    """(dx, dkernel, drecurrent_kernel, dbias, [dh0]) for upstream dy (and dstates)."""
    return _backward("gru", ctx, dy, dstates)


def simple_rnn_backward(ctx, dy=None, dstates=None):
    """(dx, dkernel, drecurrent_kernel, dbias, [dh0]) for upstream dy (and dstates)."""
    return _backward("simple_rnn", ctx, dy, dstates)
