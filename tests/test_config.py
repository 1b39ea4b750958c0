"""Threads, ISA and build configuration."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nncore as nn


def test_show_config_and_info(capsys):
    nn.show_config()
    out = capsys.readouterr().out
    assert "ISA in use" in out and "OpenMP" in out and "threads" in out and "GEMM blocking" in out
    c = nn.config()
    assert c["isa"] in ("generic", "avx2", "avx512")
    assert c["threads"] >= 1


def test_python_m_nncore_info():
    r = subprocess.run([sys.executable, "-m", "nncore", "info"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ISA in use" in r.stdout


def test_env_forces_generic_isa():
    code = "import nncore as nn; print(nn.config()['isa'])"
    env = dict(os.environ, NNCORE_ISA="generic")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.strip() == "generic", r.stderr


def test_omp_num_threads_is_honoured():
    code = "import nncore as nn; print(nn.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.strip() == "1", r.stderr


def test_threadpoolctl_limit_is_honoured_and_blas_untouched():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not nn.config()["openmp"]:
        pytest.skip("serial build")
    before = [(i["user_api"], i["num_threads"]) for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert nn.get_num_threads() == 1
    x = np.ones((64, 64), np.float32)
    nn.ops.matmul(x, x)
    after = [(i["user_api"], i["num_threads"]) for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert before == after
