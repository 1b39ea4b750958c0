"""Bad input gets a clear ValueError/TypeError naming the problem, never a crash."""
import os

import numpy as np
import pytest

import nncore as nn
from nncore import layers


@pytest.fixture
def model():
    nn.utils.set_random_seed(0)
    m = nn.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
Y = np.arange(20) % 3


def test_fit_before_compile():
    m = nn.Sequential([layers.Dense(2, input_shape=(4,))])
    with pytest.raises(ValueError, match="compile"):
        m.fit(X, Y)
    with pytest.raises(ValueError, match="compile"):
        m.evaluate(X, Y)


@pytest.mark.parametrize("x,match", [
    (np.zeros((20, 5), np.float32), r"shape \(20, 5\).*expects \(batch, 4\)"),
    (np.zeros((0, 4), np.float32), "empty"),
    (np.zeros(4, np.float32), r"shape"),
])
def test_bad_x_shapes(model, x, match):
    with pytest.raises(ValueError, match=match):
        model.predict(x)


def test_nan_and_inf_inputs(model):
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, Y, verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(bad)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.predict(bad[3:4])


def test_labels_out_of_range(model):
    with pytest.raises(ValueError, match=r"label 3 out of range.*3 classes"):
        model.fit(X, np.full(20, 3), verbose=0)
    with pytest.raises(ValueError, match="out of range"):
        model.fit(X, -np.ones(20), verbose=0)
    with pytest.raises(ValueError, match="integer"):
        model.fit(X, np.full(20, 0.5), verbose=0)
    with pytest.raises(ValueError, match="one class label per sample"):
        model.fit(X, Y[:10], verbose=0)


def test_non_numeric_inputs(model):
    with pytest.raises(TypeError, match="real numbers"):
        model.predict(np.array([["a", "b", "c", "d"]]))
    with pytest.raises(TypeError, match="real numbers"):
        model.predict(np.zeros((2, 4), dtype=complex))
    with pytest.raises((TypeError, ValueError)):
        model.predict([[1, 2], [3]])


def test_target_shape_mismatch():
    m = nn.Sequential([layers.Dense(2, input_shape=(4,))])
    m.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="model's output is"):
        m.fit(X, np.zeros((20, 3)), verbose=0)
    with pytest.raises(ValueError, match="samples but x has"):
        m.fit(X, np.zeros((19, 2)), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        m.fit(X, np.full((20, 2), np.nan), verbose=0)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"loss": "nope"}, ValueError, "unknown loss 'nope'"),
    ({"loss": "mse", "optimizer": "nope"}, ValueError, "unknown optimizer 'nope'"),
    ({"loss": "mse", "metrics": ["nope"]}, ValueError, "unknown metric 'nope'"),
    ({"loss": "mse", "bogus": 1}, TypeError, "bogus"),
])
def test_bad_compile_arguments(kwargs, exc, match):
    m = nn.Sequential([layers.Dense(2, input_shape=(4,))])
    with pytest.raises(exc, match=match):
        m.compile(**kwargs)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        layers.Dense(3, activation="nope")
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        layers.Dense(3, bogus=True)
    with pytest.raises(ValueError, match="positive"):
        layers.Dense(3, input_shape=(0,))
    with pytest.raises(ValueError, match="unknown initializer"):
        nn.Sequential([layers.Dense(3, kernel_initializer="nope", input_shape=(2,))]).build()


def test_bad_fit_arguments(model):
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X, Y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="epochs"):
        model.fit(X, Y, epochs=-1, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, Y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(X, Y, validation_data=(X,), verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X, Y, sample_weight=np.ones(3), verbose=0)
    with pytest.raises(ValueError, match="class_weight has class 7"):
        model.fit(X, Y, class_weight={7: 1.0}, verbose=0)


def test_bad_weights(model):
    w = model.get_weights()
    with pytest.raises(ValueError, match="expected shape"):
        model.set_weights([np.zeros((5, 8))] + w[1:])
    with pytest.raises(ValueError, match="weight arrays"):
        model.set_weights(w[:2])
    with pytest.raises(ValueError, match="NaN"):
        model.set_weights([np.full_like(w[0], np.nan)] + w[1:])
    # nothing was lost by the failed calls
    for a, b in zip(w, model.get_weights()):
        assert np.array_equal(a, b)


def test_dense_on_rank3_applies_to_last_axis():
    """Keras's Dense on (batch, steps, features): one kernel over the last axis."""
    m = nn.Sequential([layers.Dense(3, input_shape=(4, 5))])
    x = np.random.default_rng(0).standard_normal((2, 4, 5)).astype(np.float32)
    k, b = m.get_weights()
    np.testing.assert_allclose(m.predict(x), x.astype(np.float64) @ k + b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="feature axis"):
        layers.Dense(3).build(())


def test_threads_api_validation():
    with pytest.raises(ValueError):
        nn.set_num_threads(0)
    with pytest.raises(TypeError):
        nn.set_num_threads(1.5)
    before = nn.get_num_threads()
    with nn.threads(1):
        assert nn.get_num_threads() == 1
    assert nn.get_num_threads() == before


def test_bad_optimizer_hyperparameters():
    with pytest.raises(ValueError, match="learning_rate"):
        nn.optimizers.Adam(learning_rate=-1)
    with pytest.raises(ValueError, match="beta_1"):
        nn.optimizers.Adam(beta_1=1.5)
    with pytest.raises(ValueError, match="momentum"):
        nn.optimizers.SGD(momentum=2)
    with pytest.raises(TypeError, match="unexpected"):
        nn.optimizers.SGD(bogus=1)


def test_ops_reject_non_integer_geometry():
    x = np.zeros((1, 4, 4, 2), np.float32)
    for bad in (np.array([np.inf, 2.0]), (1.5, 2), (True, 2), "2"):
        with pytest.raises(ValueError, match="pool_size"):
            nn.ops.max_pool2d(x, bad)


@pytest.mark.parametrize("offsets,sizes", [([0], [10 ** 6]), ([-1], [4]), ([0, 2], [4, 4]),
                                           ([8, 0], [4, 4])])
def test_param_ranges_are_checked(model, offsets, sizes):
    """The optimizer writes through the trainable ranges: outside the arena, overlapping or out
    of order is refused, and the model still trains with its own ranges."""
    from nncore import _kernels as K
    with pytest.raises(ValueError):
        model._engine.set_param_ranges(offsets, sizes, [0.0] * len(offsets), [0.0] * len(offsets))
    model._set_param_ranges()
    before = model.get_weights()[0].copy()
    model.fit(X, Y, epochs=1, batch_size=10, verbose=0)
    assert not np.array_equal(before, model.get_weights()[0])


def test_import_from_a_source_tree_without_the_compiled_core_says_so(tmp_path):
    """`import nncore` from a checkout that was installed with `pip install .` (so the folder has
    no compiled core) explains what to do instead of a "circular import" error."""
    import shutil
    import subprocess
    import sys
    src = os.path.dirname(nn.__file__)
    shutil.copytree(src, tmp_path / "nncore", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    r = subprocess.run([sys.executable, "-S", "-c", "import nncore"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "source folder" in r.stderr and "pip install -e ." in r.stderr
    assert "circular import" not in r.stderr


@pytest.mark.parametrize("bad", [np.ones((2, 5, 5, 3), np.complex64), np.full((2, 5, 5, 3), "a"),
                                 np.ones((2, 5, 5, 3), bool)], ids=["complex", "str", "bool"])
def test_ops_refuse_non_real_arrays_like_matmul(bad):
    """conv, pooling and recurrent ops take real numbers only, as nn.ops.matmul does: complex is
    refused (never cast with a warning), strings and bool too."""
    w = np.ones((3, 3, 3, 4), np.float32)
    with pytest.raises(TypeError, match="real numbers"):
        nn.ops.conv2d(bad, w)
    with pytest.raises(TypeError, match="real numbers"):
        nn.ops.conv2d(np.ones((2, 5, 5, 3), np.float32), bad[:1, :3, :3, :].reshape(3, 3, 1, 3).repeat(1, 2))
    with pytest.raises(TypeError, match="real numbers"):
        nn.ops.max_pool2d(bad, 2)
    seq = bad.reshape(2, 25, 3)
    with pytest.raises(TypeError, match="real numbers"):
        nn.ops.lstm(seq, np.ones((3, 16), np.float32), np.ones((4, 16), np.float32))


def test_rnn_dropout_masks_must_be_finite():
    x = np.ones((2, 4, 3), np.float32)
    m = np.ones((2, 3), np.float32)
    m[1, 2] = np.nan
    with pytest.raises(ValueError, match="dropout_mask contains NaN"):
        nn.ops.lstm(x, np.ones((3, 8), np.float32), np.ones((2, 8), np.float32), dropout_mask=m)


def test_conv_context_owns_what_its_backward_needs():
    """A conv context used from another thread while its creating thread runs more forwards of
    the same geometry (other kernels) gives the gradients it gave alone."""
    import threading
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 9, 9, 8)).astype(np.float32)
    w = rng.normal(size=(3, 3, 8, 16)).astype(np.float32)
    dy = rng.normal(size=(4, 9, 9, 16)).astype(np.float32)
    y, ctx = nn.ops.conv2d(x, w, padding="same", activation="relu", return_context=True)
    expect = nn.ops.conv2d_backward(ctx, dy)
    y2, ctx2 = nn.ops.conv2d(x, w, padding="same", activation="relu", return_context=True)
    assert np.array_equal(y, y2)
    stop, errors, got = threading.Event(), [], []

    def other_forwards():
        r = np.random.default_rng(5)
        while not stop.is_set():
            nn.ops.conv2d(x, r.normal(size=w.shape).astype(np.float32), padding="same", activation="relu")

    t = threading.Thread(target=other_forwards)
    t.start()
    try:
        def backwards():
            try:
                for _ in range(20):
                    got.append(nn.ops.conv2d_backward(ctx2, dy))
            except Exception as e:  # pragma: no cover
                errors.append(e)
        b = threading.Thread(target=backwards)
        b.start()
        b.join(60)
        for _ in range(20):  # and forwards of the creating thread, interleaved
            nn.ops.conv2d(x, w * 2, padding="same")
    finally:
        stop.set()
        t.join(60)
    assert not errors and len(got) == 20
    for g in got:
        for a, e in zip(g, expect):
            assert np.array_equal(a, e)
