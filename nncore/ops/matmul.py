"""nn.ops.matmul: the GEMM kernel on NumPy arrays, with a fused bias + activation epilogue.

Computation is always float32 (the engine's fast path): float64, integer, non-contiguous and
read-only inputs are converted with np.ascontiguousarray(x, dtype=np.float32) and the result is
float32. For a float64 product use NumPy or nncore._kernels.dgemm.
"""
import numpy as np

from .. import _kernels as K

__all__ = ["matmul"]

# leaky_relu uses Keras's default negative slope.
_LEAKY_SLOPE = 0.2
_ACTS = {None: 0, **K.GEMM_ACTIVATIONS}
_fast = K.matmul_fast


def _as_f32(x, name):
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as e:  # ragged lists and the like
            raise TypeError(f"{name} must be array-like of numbers: {e}") from None
    dt = x.dtype
    if dt.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {dt}")
    if dt != np.float32 or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.float32)
    return x


def _flag(x, name):
    if isinstance(x, (bool, np.bool_, int, np.integer)):
        return bool(x)
    raise TypeError(f"{name} must be a bool, got {type(x).__name__}")


def matmul(a, b, transpose_a=False, transpose_b=False, bias=None, activation=None, out=None):
    """act(op(a) @ op(b) + bias) in float32.

    a, b: 2-D arrays; op(x) is x.T when transpose_x. bias: 1-D of length N (op(b) columns).
    activation: None/'linear', 'relu', 'leaky_relu' (slope 0.2, Keras's default) or 'relu6',
    applied inside the GEMM epilogue. out: optional C-contiguous float32 array of shape (M, N)
    that receives the result (returned). NaN/inf in the inputs propagate as in NumPy.
    """
    if transpose_a.__class__ is bool and transpose_b.__class__ is bool:
        # Common case (float32 C-contiguous operands) checked and run in one Cython call.
        r = _fast(a, b, transpose_a, transpose_b, bias, activation, out, _LEAKY_SLOPE)
        if r is not None:
            return r
    a = _as_f32(a, "a")
    b = _as_f32(b, "b")
    if a.ndim != 2:
        raise ValueError(f"matmul expects a 2-D array for a, got {a.ndim}-D with shape {a.shape}")
    if b.ndim != 2:
        raise ValueError(f"matmul expects a 2-D array for b, got {b.ndim}-D with shape {b.shape}")
    ta = _flag(transpose_a, "transpose_a")
    tb = _flag(transpose_b, "transpose_b")
    M, Ka = (a.shape[1], a.shape[0]) if ta else a.shape
    Kb, N = (b.shape[1], b.shape[0]) if tb else b.shape
    if Ka != Kb:
        raise ValueError(
            f"matmul shapes do not match: op(a) has shape ({M}, {Ka}) and op(b) has shape ({Kb}, {N})"
            f" (a.shape={a.shape}, transpose_a={ta}, b.shape={b.shape}, transpose_b={tb})")
    if a.size == 0 or b.size == 0:
        raise ValueError(f"matmul got an empty array (a.shape={a.shape}, b.shape={b.shape})")
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"activation must be a string or None, got {type(activation).__name__}")
    act = _ACTS.get(activation)
    if act is None:
        raise ValueError(f"unknown activation {activation!r} for matmul; supported: "
                         f"{', '.join(repr(k) for k in _ACTS if k is not None)} or None")
    if bias is not None:
        bias = _as_f32(bias, "bias")
        if bias.ndim != 1 or bias.shape[0] != N:
            raise ValueError(f"bias must have shape ({N},) to match op(b)'s {N} columns, got {bias.shape}")
    if out is None:
        out = np.empty((M, N), dtype=np.float32)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
        if out.dtype != np.float32:
            raise TypeError(f"out must be float32, got {out.dtype}")
        if out.shape != (M, N):
            raise ValueError(f"out has shape {out.shape}, expected ({M}, {N})")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        if not out.flags.writeable:
            raise ValueError("out must be writeable")
        # The kernel writes C while it still reads A and B: never let them overlap.
        if np.may_share_memory(out, a):
            a = a.copy()
        if np.may_share_memory(out, b):
            b = b.copy()
    return K.sgemm(a, b, out, ta, tb, 1.0, 0.0, bias, act, _LEAKY_SLOPE)
