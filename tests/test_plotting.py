"""History.plot and the benchmark report charts (matplotlib optional)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nncore as nn
from nncore import plotting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _history():
    x = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    nn.utils.set_random_seed(0)
    m = nn.Sequential([nn.layers.Dense(8, activation="relu", input_shape=(5,)), nn.layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return m.fit(x, y, epochs=4, validation_split=0.25, verbose=0)


def test_history_plot_panels_and_curves():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    h = _history()
    fig = h.plot(title="run 1")
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["loss", "accuracy"]
    for a, key in zip(axes, ("loss", "accuracy")):
        lines = {ln.get_label(): ln for ln in a.get_lines()}
        assert set(lines) == {"training", "validation"}
        np.testing.assert_allclose(lines["training"].get_ydata(), h.history[key])
        np.testing.assert_allclose(lines["validation"].get_ydata(), h.history["val_" + key])
        np.testing.assert_array_equal(lines["training"].get_xdata(), [1, 2, 3, 4])
    fig2 = plotting.plot_history(h.history, metrics="accuracy", logy=True)
    assert len([a for a in fig2.axes if a.get_visible()]) == 1 and fig2.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="no metric"):
        h.plot(metrics=["auc"])
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_history({})
    import matplotlib.pyplot as plt
    plt.close("all")


def test_clear_error_without_matplotlib(monkeypatch):
    h = nn.callbacks.History()
    h.history = {"loss": [1.0, 0.5]}
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"needs matplotlib: pip install 'nncore\[plot\]'"):
        h.plot()


def test_bench_report_writes_charts(tmp_path):
    pytest.importorskip("matplotlib")
    report = os.path.join(ROOT, "bench", "report.py")
    if not os.path.exists(report):
        pytest.skip("bench/ is not shipped with this copy of the tests")
    res = tmp_path / "results"
    res.mkdir()
    rows = [{"case": "train epoch model A (20k, batch 32)", "threads": t, "nncore_s": 0.01 * t, "numpy_s": 0.03,
             "torch_s": 0.1, "vs_numpy": 3.0, "vs_torch": 10.0} for t in (1, 2)]
    rows += [{"case": "512x512x512", "threads": t, "nncore_s": 1e-3, "numpy_s": 1.2e-3, "torch_s": None,
              "gflops": 120.0 * t, "numpy_gflops": 100.0 * t, "vs_numpy": 1.2} for t in (1, 2)]
    (res / "mlp.json").write_text(json.dumps({"meta": {"bench": "mlp", "processor": "test cpu"}, "rows": rows[:2]}))
    (res / "gemm.json").write_text(json.dumps({"meta": {"bench": "gemm"}, "rows": rows[2:]}))
    (res / "broken.json").write_text("{not json")
    out = tmp_path / "charts"
    r = subprocess.run([sys.executable, report, "--results", str(res), "--out", str(out)],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, MPLBACKEND="Agg"))
    assert r.returncode == 0, r.stderr
    for name in ("epoch_time.png", "kernel_throughput.png", "speedup.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    assert "broken.json" in r.stderr  # unreadable files are reported, not fatal


def test_optional_modules_load_lazily(tmp_path):
    # `import nncore` never imports matplotlib, scikit-learn or onnx; nn.<module> loads on first use
    code = ("import sys, nncore as nn\n"
            "heavy = [m for m in ('matplotlib', 'sklearn', 'onnx') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert nn.plotting.plot_history\n"
            "try:\n    nn.no_such_thing\nexcept AttributeError as e:\n    print('ok', e)\n")
    parent = os.path.dirname(os.path.dirname(os.path.abspath(nn.__file__)))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=parent))
    assert r.returncode == 0, r.stderr
    assert "ok module 'nncore' has no attribute 'no_such_thing'" in r.stdout
