"""GEMM (csrc/gemm + kernels) against a float64 NumPy reference: edge sizes, NN/NT/TN with
padded leading dimensions, alpha/beta, every epilogue, the packed path (repacking, ISA switch),
every ISA, 1 vs 2 threads bitwise, and nn.ops.matmul's validation and conversions."""
import itertools

import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K
from conftest import ISAS, run_threads

EPS = np.finfo(np.float32).eps
MS = [1, 2, 3, 4, 5, 6, 7, 12, 13, 64, 145]
NS = [1, 8, 15, 16, 17, 33, 257]
KS = [1, 3, 255, 256, 257, 513]
FORMS = [(False, False), (False, True), (True, False)]  # NN, NT, TN
ACTS = ["linear", "relu", "leaky_relu", "relu6"]


def act_ref(x, act):
    if act == "relu":
        return np.maximum(x, 0)
    if act == "leaky_relu":
        return np.where(x > 0, x, 0.2 * x)
    if act == "relu6":
        return np.clip(x, 0, 6)
    return x


def padded(rng, rows, cols, pad):
    """rows x cols float32 view with leading dimension cols + pad (lda > K)."""
    big = rng.standard_normal((rows, cols + pad)).astype(np.float32)
    return big[:, :cols]


def operands(rng, M, N, K, ta, tb, pad=3):
    a = padded(rng, K, M, pad) if ta else padded(rng, M, K, pad)
    b = padded(rng, N, K, pad) if tb else padded(rng, K, N, pad)
    return a, b


def reference(a, b, ta, tb, alpha=1.0, beta=0.0, c0=None, bias=None, act="linear"):
    """float64 result and an error bound: gamma_K-style (K + 4) * eps * (|alpha||A||B| + ...)."""
    A = a.astype(np.float64).T if ta else a.astype(np.float64)
    B = b.astype(np.float64).T if tb else b.astype(np.float64)
    r = alpha * (A @ B)
    mag = abs(alpha) * (np.abs(A) @ np.abs(B))
    if beta != 0.0:
        r = r + beta * c0.astype(np.float64)
        mag = mag + abs(beta) * np.abs(c0.astype(np.float64))
    if bias is not None:
        r = r + bias.astype(np.float64)
        mag = mag + np.abs(bias.astype(np.float64))
    K_ = A.shape[1]
    tol = (K_ + 4) * EPS * mag + 1e-30
    return act_ref(r, act), tol


def check(c, ref, tol, what):
    assert c.dtype == np.float32
    assert np.all(np.isfinite(c)), f"{what}: non-finite output (C read while beta == 0?)"
    err = np.abs(c.astype(np.float64) - ref)
    bad = err > tol
    assert not bad.any(), f"{what}: max error {err.max():.3g} at {np.argwhere(bad)[0]}"


def out_nan(rng, M, N, pad=2):
    """C view with ldc > N, pre-filled with NaN (beta == 0 must never read it)."""
    return np.full((M, N + pad), np.nan, np.float32)[:, :N]


def test_blocking_reported(isa):
    mr, nr, kc = K.gemm_blocking()
    assert mr >= 1 and nr >= 1 and kc >= 1
    assert nn.config()["gemm_nr"] == nr


@pytest.mark.parametrize("form", FORMS, ids=["NN", "NT", "TN"])
def test_sgemm_edge_sizes(isa, form, rng):
    """Every (M, N) of the edge sets with a K rotating over the K set (a second one for the
    cheap small tiles), so each K meets every tile shape class."""
    ta, tb = form
    for idx, (M, N) in enumerate(itertools.product(MS, NS)):
        ks = [KS[idx % len(KS)]] + ([KS[(idx * 5 + 3) % len(KS)]] if M * N <= 1000 else [])
        for K_ in ks:
            a, b = operands(rng, M, N, K_, ta, tb, pad=idx % 4 + 1)
            c = out_nan(rng, M, N)
            K.sgemm(a, b, c, ta, tb)
            ref, tol = reference(a, b, ta, tb)
            check(c, ref, tol, f"{isa} {form} M={M} N={N} K={K_}")
            assert np.isnan(c.base[:, N:]).all(), "wrote past N into the row padding"


@pytest.mark.parametrize("form", FORMS, ids=["NN", "NT", "TN"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (-0.5, 0.3), (2.0, 0.0), (0.0, 0.5)])
def test_alpha_beta(isa, form, alpha, beta, rng):
    ta, tb = form
    for M, N, K_ in [(13, 33, 513), (5, 17, 257), (64, 257, 255), (1, 1, 1), (145, 16, 600)]:
        a, b = operands(rng, M, N, K_, ta, tb)
        c0 = rng.standard_normal((M, N)).astype(np.float32)
        c = c0.copy()
        K.sgemm(a, b, c, ta, tb, alpha, beta)
        ref, tol = reference(a, b, ta, tb, alpha, beta, c0)
        check(c, ref, tol, f"alpha={alpha} beta={beta} {M}x{N}x{K_}")


@pytest.mark.parametrize("act", ACTS)
def test_epilogue(isa, act, rng):
    """bias + activation only after the last K block (K > KC catches an early application)."""
    for (M, N, K_), form in zip([(13, 33, 513), (7, 15, 3), (64, 64, 300), (6, 257, 1), (145, 17, 257)],
                                itertools.cycle(FORMS)):
        ta, tb = form
        a, b = operands(rng, M, N, K_, ta, tb)
        bias = (rng.standard_normal(N) * 3).astype(np.float32)
        for use_bias, beta in [(True, 0.0), (False, 0.0), (True, 1.0)]:
            c0 = (rng.standard_normal((M, N)) * 4).astype(np.float32)
            c = c0.copy() if beta else out_nan(rng, M, N)
            K.sgemm(a, b, c, ta, tb, 1.5, beta, bias if use_bias else None, K.GEMM_ACTIVATIONS[act], 0.2)
            ref, tol = reference(a, b, ta, tb, 1.5, beta, c0, bias if use_bias else None)
            ref = act_ref(ref, act)
            check(c, ref, tol, f"{act} bias={use_bias} beta={beta} {M}x{N}x{K_}")
            if act in ("relu", "relu6"):
                assert c.min() >= 0
            if act == "relu6":
                assert c.max() <= 6


def test_k_zero(isa, rng):
    """K == 0: C = act(beta * C + bias), A and B not read."""
    a = np.empty((4, 0), np.float32)
    b = np.empty((0, 5), np.float32)
    c0 = rng.standard_normal((4, 5)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    c = c0.copy()
    K.sgemm(a, b, c, False, False, 1.0, 2.0, bias, K.GEMM_ACTIVATIONS["relu"])
    np.testing.assert_allclose(c, np.maximum(2 * c0 + bias, 0), rtol=1e-6)
    c = out_nan(rng, 4, 5)
    K.sgemm(a, b, c)
    assert (c == 0).all()


@pytest.mark.parametrize("trans_pack", [False, True])
def test_packed(isa, trans_pack, rng):
    """Packed B equals the unpacked call bitwise (same kernel and order) and the reference;
    repacking after the weights change refills the same buffer."""
    for M, N, K_ in [(1, 1, 1), (7, 17, 3), (32, 64, 30), (145, 33, 513), (13, 257, 256), (6, 16, 257)]:
        for ta in (False, True):
            w = padded(rng, N, K_, 2) if trans_pack else padded(rng, K_, N, 2)
            p = K.PackedB(K_, N).pack(w, trans=trans_pack)
            a = padded(rng, K_, M, 1) if ta else padded(rng, M, K_, 1)
            bias = rng.standard_normal(N).astype(np.float32)
            c = out_nan(rng, M, N)
            p.matmul(a, c, ta, 1.0, 0.0, bias, K.GEMM_ACTIVATIONS["relu"])
            ref, tol = reference(a, w, ta, trans_pack, bias=bias)
            check(c, np.maximum(ref, 0), tol, f"packed {M}x{N}x{K_} ta={ta}")
            c2 = np.empty((M, N), np.float32)
            K.sgemm(a, w, c2, ta, trans_pack, 1.0, 0.0, bias, K.GEMM_ACTIVATIONS["relu"])
            np.testing.assert_array_equal(c, c2)
            # weights change (an optimizer step): repack in place, result follows
            w[...] = rng.standard_normal(w.shape).astype(np.float32)
            p.pack(w, trans=trans_pack)
            c0 = rng.standard_normal((M, N)).astype(np.float32)
            c = c0.copy()
            p.matmul(a, c, ta, -1.0, 1.0)
            ref, tol = reference(a, w, ta, trans_pack, -1.0, 1.0, c0)
            check(c, ref, tol, f"repacked {M}x{N}x{K_}")


def test_packed_survives_isa_switch(rng):
    """Packed under one ISA, used after switching: it keeps using the kernel it was packed for."""
    before = K.isa_name()
    try:
        for first, second in itertools.permutations(ISAS, 2):
            K.set_isa(first)
            M, N, K_ = 37, 45, 300
            w = rng.standard_normal((K_, N)).astype(np.float32)
            a = rng.standard_normal((M, K_)).astype(np.float32)
            p = K.PackedB(K_, N).pack(w)
            c1 = p.matmul(a, np.empty((M, N), np.float32))
            K.set_isa(second)
            c2 = p.matmul(a, np.empty((M, N), np.float32))
            np.testing.assert_array_equal(c1, c2)
            ref, tol = reference(a, w, False, False)
            check(c2, ref, tol, f"packed {first} used under {second}")
            p.pack(w)  # repacked under the new ISA
            check(p.matmul(a, np.empty((M, N), np.float32)), ref, tol, f"repacked under {second}")
    finally:
        K.set_isa(before)


@pytest.mark.parametrize("form", FORMS, ids=["NN", "NT", "TN"])
def test_threads_bitwise(isa, form, force_threads, rng):
    """1 and 2 threads give bitwise equal results (M split, N split, packed path)."""
    ta, tb = form
    shapes = [(145, 257, 513), (3, 257, 300), (64, 33, 257), (13, 17, 5), (200, 40, 70), (9, 600, 20)]
    for M, N, K_ in shapes:
        a, b = operands(rng, M, N, K_, ta, tb)
        bias = rng.standard_normal(N).astype(np.float32)

        def go():
            c = np.empty((M, N), np.float32)
            return K.sgemm(a, b, c, ta, tb, 1.0, 0.0, bias, K.GEMM_ACTIVATIONS["leaky_relu"], 0.2)

        c1, c2 = run_threads(go, 1), run_threads(go, 2)
        np.testing.assert_array_equal(c1, c2)
        ref, tol = reference(a, b, ta, tb, bias=bias)
        check(c2, act_ref(ref, "leaky_relu"), tol, f"2 threads {M}x{N}x{K_}")
        p = K.PackedB(K_, N).pack(b, trans=tb)

        def gp():
            return p.matmul(a, np.empty((M, N), np.float32), ta, 1.0, 0.0, bias)

        np.testing.assert_array_equal(run_threads(gp, 1), run_threads(gp, 2))


def test_dgemm(rng):
    for (M, N, K_), (ta, tb) in zip([(7, 17, 33), (1, 1, 1), (13, 8, 257)], FORMS):
        a, b = operands(rng, M, N, K_, ta, tb)
        a, b = a.astype(np.float64), b.astype(np.float64)
        c0 = rng.standard_normal((M, N))
        c = c0.copy()
        K.dgemm(a, b, c, ta, tb, 0.5, 2.0)
        ref = 0.5 * ((a.T if ta else a) @ (b.T if tb else b)) + 2.0 * c0
        np.testing.assert_allclose(c, ref, rtol=1e-12, atol=1e-12)
        c = np.full((M, N), np.nan)
        K.dgemm(a, b, c, ta, tb)
        np.testing.assert_allclose(c, (a.T if ta else a) @ (b.T if tb else b), rtol=1e-12, atol=1e-12)


def test_kernel_wrapper_checks():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="inner dimensions"):
        K.sgemm(a, np.ones((3, 5), np.float32), np.empty((3, 5), np.float32))
    with pytest.raises(ValueError, match="c has shape"):
        K.sgemm(a, b, np.empty((3, 4), np.float32))
    with pytest.raises(TypeError, match="float32"):
        K.sgemm(a.astype(np.float64), b, np.empty((3, 5), np.float32))
    with pytest.raises(ValueError, match="unit column stride"):
        K.sgemm(np.ones((3, 8), np.float32)[:, ::2], b, np.empty((3, 5), np.float32))
    with pytest.raises(ValueError, match="activation"):
        K.sgemm(a, b, np.empty((3, 5), np.float32), act=2)  # sigmoid is not an epilogue
    p = K.PackedB(4, 5)
    with pytest.raises(ValueError, match="before pack"):
        p.matmul(a, np.empty((3, 5), np.float32))
    with pytest.raises(ValueError, match="expected"):
        p.pack(np.ones((5, 4), np.float32))


# ---- nn.ops.matmul --------------------------------------------------------------------------

def test_matmul_results(isa, rng):
    a = rng.standard_normal((9, 20)).astype(np.float32)
    b = rng.standard_normal((20, 33)).astype(np.float32)
    bias = rng.standard_normal(33).astype(np.float32)
    ref, tol = reference(a, b, False, False, bias=bias)
    for act in [None] + ACTS:
        y = nn.ops.matmul(a, b, bias=bias, activation=act)
        check(y, act_ref(ref, act or "linear"), tol, f"matmul {act}")
    check(nn.ops.matmul(a.T.copy(), b, transpose_a=True), *reference(a, b, False, False), "ta")
    check(nn.ops.matmul(a, b.T.copy(), transpose_b=True), *reference(a, b, False, False), "tb")
    check(nn.ops.matmul(a, b.T.copy(), transpose_b=np.True_), *reference(a, b, False, False), "np.bool_")
    out = np.full((9, 33), np.nan, np.float32)
    assert nn.ops.matmul(a, b, out=out) is out
    check(out, *reference(a, b, False, False), "out")


def test_matmul_conversions(rng):
    a64 = rng.standard_normal((6, 10))
    b64 = rng.standard_normal((10, 7))
    ref, tol = reference(a64.astype(np.float32), b64.astype(np.float32), False, False)
    y = nn.ops.matmul(a64, b64)
    assert y.dtype == np.float32
    check(y, ref, tol, "float64 input")
    ai = rng.integers(-3, 4, (6, 10))
    bi = rng.integers(-3, 4, (10, 7)).astype(np.int8)
    np.testing.assert_array_equal(nn.ops.matmul(ai, bi), (ai @ bi.astype(np.int64)).astype(np.float32))
    # non-contiguous and read-only
    big = rng.standard_normal((12, 20)).astype(np.float32)
    a_nc = big[::2, ::2]
    b_ro = rng.standard_normal((10, 7)).astype(np.float32)
    b_ro.flags.writeable = False
    check(nn.ops.matmul(a_nc, b_ro), *reference(np.ascontiguousarray(a_nc), b_ro, False, False), "non-contig")
    # transposed views with transpose flags, lists
    check(nn.ops.matmul(big[:, :10].T, b64.astype(np.float32), transpose_a=True),
          *reference(big[:, :10], b64.astype(np.float32), False, False), "view")
    np.testing.assert_allclose(nn.ops.matmul([[1, 2]], [[3], [4]]), [[11.0]])
    # out aliasing an input
    sq = rng.standard_normal((8, 8)).astype(np.float32)
    ref, tol = reference(sq, sq, False, False)
    check(nn.ops.matmul(sq, sq, out=sq), ref, tol, "aliased out")


def test_matmul_validation():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="2-D.*a"):
        nn.ops.matmul(np.ones(4, np.float32), b)
    with pytest.raises(ValueError, match="2-D.*b"):
        nn.ops.matmul(a, np.ones((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 5\)"):
        nn.ops.matmul(a, np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match="empty"):
        nn.ops.matmul(np.ones((0, 4), np.float32), b)
    for bad in (np.ones((3, 4), bool), np.ones((3, 4), object), np.ones((3, 4), complex)):
        with pytest.raises(TypeError):
            nn.ops.matmul(bad, b)
    with pytest.raises(TypeError):
        nn.ops.matmul(a, b.astype(complex))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        nn.ops.matmul(a, b, bias=np.ones(4))
    with pytest.raises(ValueError, match="relu6"):
        nn.ops.matmul(a, b, activation="sigmoidz")
    with pytest.raises(ValueError, match="out has shape"):
        nn.ops.matmul(a, b, out=np.empty((3, 4), np.float32))
    with pytest.raises(TypeError, match="float32"):
        nn.ops.matmul(a, b, out=np.empty((3, 5)))
    with pytest.raises(ValueError, match="contiguous"):
        nn.ops.matmul(a, b, out=np.empty((5, 3), np.float32).T)
    with pytest.raises(TypeError, match="transpose_a"):
        nn.ops.matmul(a, b, transpose_a="yes")
    ro = np.empty((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        nn.ops.matmul(a, b, out=ro)


def test_concurrent_python_threads(rng):
    """Python threads calling nncore at once (GIL released): the shared packing scratch is
    guarded, so every result matches its serial value."""
    import threading
    cases = []
    for i in range(6):
        M, N, K_ = 40 + 7 * i, 100 + 13 * i, 300
        a = rng.standard_normal((M, K_)).astype(np.float32)
        b = rng.standard_normal((N, K_)).astype(np.float32)  # NT: B is packed into scratch
        cases.append((a, b, K.sgemm(a, b, np.empty((M, N), np.float32), False, True)))
    errors = []

    def worker(idx):
        a, b, want = cases[idx % len(cases)]
        for _ in range(20):
            got = K.sgemm(a, b, np.empty_like(want), False, True)
            if not np.array_equal(got, want):
                errors.append(idx)
                return

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
