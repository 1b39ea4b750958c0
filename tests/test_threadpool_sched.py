"""nncore's thread pool: tasks are claimed by the threads that run, so a worker that the kernel
runs late (a test hook makes every worker sleep before each claim) must change only who computes
a task, never the result, and must not make a region wait for it."""
import os
import time

import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K
from conftest import run_in_fork_child, run_threads


def _matmul_case(rng):
    a = rng.normal(size=(301, 157)).astype(np.float32)
    b = rng.normal(size=(157, 203)).astype(np.float32)
    return lambda: nn.ops.matmul(a, b), a.astype(np.float64) @ b.astype(np.float64)


def _conv_case(rng):
    x = rng.normal(size=(9, 13, 11, 5)).astype(np.float32)
    w = rng.normal(size=(3, 3, 5, 19)).astype(np.float32)

    def f():
        y, ctx = nn.ops.conv2d(x, w, padding="same", activation="relu", return_context=True)
        dx, dw, _ = nn.ops.conv2d_backward(ctx, np.cos(y))
        return y, dx, dw
    return f


def _lstm_case(rng):
    x = rng.normal(size=(37, 9, 6)).astype(np.float32)
    kernel = (0.3 * rng.normal(size=(6, 4 * 16))).astype(np.float32)
    rec = (0.3 * rng.normal(size=(16, 4 * 16))).astype(np.float32)
    bias = (0.1 * rng.normal(size=(4 * 16,))).astype(np.float32)

    def f():
        y, ctx = nn.ops.lstm(x, kernel, rec, bias, return_sequences=True, return_context=True)
        grads = ctx.backward(np.sin(y))
        return (y,) + tuple(g for g in grads if isinstance(g, np.ndarray))
    return f


def _same(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and u.shape == v.shape
        assert np.array_equal(u, v), "result changed with a delayed worker"


@pytest.mark.parametrize("delay_us", [50, 3000])
def test_delayed_worker_gives_the_same_bits(rng, force_threads, delay_us):
    mm, ref = _matmul_case(rng)
    conv = _conv_case(rng)
    lstm = _lstm_case(rng)
    expect = [run_threads(f, 1) for f in (mm, conv, lstm)]
    np.testing.assert_allclose(expect[0], ref, rtol=1e-4, atol=1e-3)
    K._pool_set_test_delay(delay_us)
    try:
        got = [run_threads(f, 2) for f in (mm, conv, lstm)]
    finally:
        K._pool_set_test_delay(0)
    for e, g in zip(expect, got):
        _same(e, g)
    # and the undelayed pool agrees too
    for e, f in zip(expect, (mm, conv, lstm)):
        _same(e, run_threads(f, 2))


def test_training_with_a_delayed_worker_matches_one_thread(force_threads):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(256, 12)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)

    def train():
        nn.utils.set_random_seed(5)
        m = nn.Sequential([nn.layers.Dense(24, activation="relu", input_shape=(12,)),
                           nn.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy")
        m.fit(x, y, epochs=2, batch_size=64, verbose=0, shuffle=False)
        return m.get_weights()

    w1 = run_threads(train, 1)
    K._pool_set_test_delay(500)
    try:
        w2 = run_threads(train, 2)
    finally:
        K._pool_set_test_delay(0)
    for a, b in zip(w1, w2):
        assert np.array_equal(a, b)


def test_region_does_not_wait_for_a_worker_that_is_not_running(rng, force_threads):
    """A worker that sleeps 200 ms before every claim: the caller runs the tasks itself, so a
    region costs about its one-thread time, not the worker's sleep."""
    a = rng.normal(size=(128, 128)).astype(np.float32)
    run_threads(lambda: nn.ops.matmul(a, a), 2)  # starts the pool
    K._pool_set_test_delay(200_000)
    try:
        with nn.threads(2):
            t0 = time.perf_counter()
            for _ in range(20):
                nn.ops.matmul(a, a)
            elapsed = time.perf_counter() - t0
    finally:
        K._pool_set_test_delay(0)
    # twenty regions; a join that waited for the sleeping worker would take >= 20 * 0.2 s
    assert elapsed < 2.0, f"regions waited for a descheduled worker ({elapsed:.2f} s)"


def test_concurrent_callers_share_the_pool_safely(rng, force_threads):
    """Two Python threads in nncore at once: one gets the pool, the other runs on its own
    thread; both get the one-thread answer."""
    import threading
    mm, _ = _matmul_case(rng)
    expect = run_threads(mm, 1)
    out, errors = [], []

    def work():
        try:
            for _ in range(30):
                out.append(mm())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    with nn.threads(2):
        ts = [threading.Thread(target=work) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    assert not errors
    assert len(out) == 60
    for o in out:
        assert np.array_equal(o, expect)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_child_uses_threads_again(rng):
    """The pool is rebuilt in a fork child (no libgomp team is ever started), so the child
    computes with threads and gets the parent's bits."""
    import hashlib
    mm, _ = _matmul_case(rng)
    with nn.threads(2):
        expect = mm()

    def child():
        with nn.threads(2):
            return hashlib.sha256(mm().tobytes()).hexdigest()

    assert run_in_fork_child(child) == hashlib.sha256(expect.tobytes()).hexdigest()
