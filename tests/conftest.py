"""Shared fixtures: run kernels under every ISA the CPU has, and force thread splits on small
sizes so that 1-vs-2-thread bitwise tests really exercise the parallel paths."""
import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K

ISAS = [i for i in ("generic", "avx2", "avx512") if K.isa_supported(i)]


@pytest.fixture(params=ISAS)
def isa(request):
    """Parametrises a test over the available ISAs (generic always included)."""
    before = K.isa_name()
    got = K.set_isa(request.param)
    assert got == request.param
    yield got
    K.set_isa(before)


@pytest.fixture
def force_threads():
    """Make every region eligible for threads regardless of size (restored afterwards)."""
    old = K.set_parallel_threshold(0.0)
    yield
    K.set_parallel_threshold(old)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def run_threads(fn, n):
    """fn() under n threads."""
    with nn.threads(n):
        return fn()


def run_in_fork_child(fn, timeout=60):
    """fn() in a forked child; returns what it returned (small and picklable). Fails the test if
    the child hangs or dies."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=lambda: q.put(fn()))
    p.start()
    p.join(timeout)
    alive = p.is_alive()
    if alive:
        p.kill()
    assert not alive, "forked child hung"
    assert p.exitcode == 0, f"forked child exited with {p.exitcode}"
    return q.get(timeout=5)
