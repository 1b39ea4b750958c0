"""threadpoolctl interplay: nncore's OpenMP runtime is visible and bounded by threadpool_limits,
and nncore never touches NumPy's BLAS thread pool. Process-level facts run in a fresh
interpreter (other tests import torch, which brings its own OpenMP runtime)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import nncore as nn

threadpoolctl = pytest.importorskip("threadpoolctl")

needs_openmp = pytest.mark.skipif(not nn.config()["openmp"], reason="serial build (no OpenMP)")
# the directory that holds the nncore package being tested (source tree or site-packages)
NNCORE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(nn.__file__)))


def _fresh(code, tmp_path, **env):
    e = dict(os.environ, PYTHONPATH=NNCORE_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env=e)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@needs_openmp
def test_threadpool_info_lists_nncores_openmp_runtime(tmp_path):
    code = """
import json, threadpoolctl, numpy
before = [i["filepath"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]
import nncore
after = [(i["filepath"], i["prefix"], i["num_threads"]) for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]
print(json.dumps({"before": before, "after": after, "so": nncore._kernels.__file__,
                  "shown": nncore.config()["openmp_runtime"], "threads": nncore.get_num_threads()}))
"""
    r = _fresh(code, tmp_path)
    new = [a for a in r["after"] if a[0] not in r["before"]]
    assert len(new) == 1, r  # importing nncore loads exactly one OpenMP runtime
    path, prefix, n = new[0]
    assert prefix in ("libgomp", "libomp", "libiomp", "vcomp")
    assert n == r["threads"]
    assert r["shown"].startswith(path)  # nn.show_config names the same library
    ldd = shutil.which("ldd")
    if sys.platform.startswith("linux") and ldd:  # and it is the library the extension links
        out = subprocess.run([ldd, r["so"]], capture_output=True, text=True).stdout
        linked = [ln.split("=>")[1].split("(")[0].strip() for ln in out.splitlines() if "omp" in ln and "=>" in ln]
        assert any(os.path.realpath(p) == os.path.realpath(path) for p in linked), (out, path)


@needs_openmp
def test_threadpool_limits_bounds_nncore(rng):
    default = nn.get_num_threads()
    a = rng.normal(size=(300, 200)).astype(np.float32)
    b = rng.normal(size=(200, 150)).astype(np.float32)
    ref = nn.ops.matmul(a, b)
    for kw in ({"limits": 1, "user_api": "openmp"}, {"limits": 1}, {"limits": {"openmp": 1}}):
        with threadpoolctl.threadpool_limits(**kw):
            assert nn.get_num_threads() == 1
            np.testing.assert_array_equal(nn.ops.matmul(a, b), ref)  # thread count never changes results
        assert nn.get_num_threads() == default
    ctl = threadpoolctl.ThreadpoolController()
    with ctl.limit(limits=1, user_api="openmp"):
        assert nn.get_num_threads() == 1
    assert nn.get_num_threads() == default


@needs_openmp
def test_threadpool_limits_bound_training(tmp_path):
    # the limit holds during fit: record the thread count the engine sees from a callback
    code = """
import json, numpy as np, threadpoolctl, nncore as nn
class Probe(nn.callbacks.Callback):
    seen = []
    def on_epoch_end(self, epoch, logs=None):
        Probe.seen.append(nn.get_num_threads())
x = np.random.default_rng(0).normal(size=(256, 8)).astype(np.float32)
m = nn.Sequential([nn.layers.Dense(64, activation="relu", input_shape=(8,)), nn.layers.Dense(1)])
m.compile("adam", "mse")
with threadpoolctl.threadpool_limits(1, user_api="openmp"):
    m.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[Probe()])
m.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[Probe()])
print(json.dumps(Probe.seen))
"""
    seen = _fresh(code, tmp_path, OMP_NUM_THREADS="2")
    assert seen == [1, 1, 2]


def test_nncore_never_changes_blas_threads(tmp_path):
    code = """
import json, numpy as np, threadpoolctl
blas = lambda: [(i["filepath"], i["num_threads"]) for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
before = blas()
import nncore as nn
seen = [blas()]
nn.set_num_threads(1); seen.append(blas())
with nn.threads(2): seen.append(blas())
nn.set_num_threads(-1)
x = np.random.default_rng(0).normal(size=(128, 16)).astype(np.float32)
m = nn.Sequential([nn.layers.Dense(32, activation="relu", input_shape=(16,)), nn.layers.Dense(1)])
m.compile("adam", "mse"); m.fit(x, x[:, :1], epochs=1, verbose=0); m.predict(x); nn.ops.matmul(x, x.T)
seen.append(blas())
with threadpoolctl.threadpool_limits(1, user_api="openmp"):
    seen.append(blas())
print(json.dumps({"before": before, "seen": seen}))
"""
    r = _fresh(code, tmp_path)
    if not r["before"]:
        pytest.skip("NumPy has no BLAS that threadpoolctl can see")
    assert all(s == r["before"] for s in r["seen"]), r


def test_blas_limit_leaves_nncore_alone():
    info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if any(i.get("threading_layer") == "openmp" for i in info):
        pytest.skip("NumPy's BLAS uses OpenMP itself, so a BLAS limit is an OpenMP limit")
    default = nn.get_num_threads()
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert nn.get_num_threads() == default
