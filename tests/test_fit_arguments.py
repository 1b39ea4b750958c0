"""Every fit argument is checked before anything runs: a bad one raises a ValueError/TypeError
naming it, and the weights and optimizer state are as they were (issue: nothing silently wrong)."""
import numpy as np
import pytest

import nncore as nn
from nncore import layers


def _model(loss="binary_crossentropy", out=1, act="sigmoid"):
    nn.utils.set_random_seed(0)
    m = nn.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)),
                       layers.Dense(out, activation=act)])
    m.compile(optimizer="adam", loss=loss)
    return m


def _data(n=40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, :1] > 0).astype(np.float32)


def _unchanged(m, before):
    for a, b in zip(before, m.get_weights()):
        assert np.array_equal(a, b), "weights changed by a call that raised"
    assert m.optimizer.iterations == 0


BAD_FIT = [
    ({"validation_freq": 0}, "validation_freq"),
    ({"validation_freq": -2}, "validation_freq"),
    ({"validation_freq": [0, 2]}, "validation_freq"),
    ({"validation_freq": "1"}, "validation_freq"),
    ({"validation_batch_size": 0}, "validation_batch_size"),
    ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ({"steps_per_epoch": -1}, "steps_per_epoch"),
    ({"validation_steps": 0}, "validation_steps"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"epochs": -1}, "epochs"),
    ({"initial_epoch": -1}, "initial_epoch"),
    ({"verbose": 5}, "verbose"),
    ({"validation_split": 1.0}, "validation_split"),
    ({"validation_split": float("nan")}, "validation_split"),
    ({"shuffle": "yes"}, "shuffle"),
    ({"class_weight": {0: float("nan"), 1: 1.0}}, "class_weight"),
    ({"class_weight": {0: -1.0, 1: 1.0}}, "class_weight"),
    ({"class_weight": {0: float("inf")}}, "class_weight"),
    ({"class_weight": {0.5: 1.0}}, "class_weight"),
    ({"class_weight": {0: "heavy"}}, "class_weight"),
]


@pytest.mark.parametrize("kwargs,name", BAD_FIT, ids=[f"{k}" for k, _ in BAD_FIT])
def test_bad_fit_argument_raises_before_training(kwargs, name):
    m = _model()
    x, y = _data()
    before = m.get_weights()
    with pytest.raises((ValueError, TypeError), match=name):
        m.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), **kwargs)
    _unchanged(m, before)


@pytest.mark.parametrize("loss", ["binary_crossentropy", "binary_focal_crossentropy"])
@pytest.mark.parametrize("bad", [5.0, -1.0, 1.5])
def test_binary_targets_out_of_range_raise(loss, bad):
    m = _model(loss)
    x, y = _data()
    y[3] = bad
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.evaluate(x, y, verbose=0)
    _unchanged(m, before)


def test_categorical_targets_out_of_range_raise():
    m = _model("categorical_crossentropy", out=3, act="softmax")
    x, _ = _data()
    y = np.eye(3, dtype=np.float32)[np.arange(40) % 3]
    y[0, 0] = -0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.fit(x, y, epochs=1, verbose=0)


def test_predict_and_evaluate_batch_size_checked():
    m = _model()
    x, y = _data()
    for bs in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            m.predict(x, batch_size=bs)
        with pytest.raises(ValueError, match="batch_size"):
            m.evaluate(x, y, batch_size=bs, verbose=0)


def test_validation_freq_collection_runs_on_those_epochs():
    m = _model()
    x, y = _data()
    seen = []
    cb = nn.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append("val_loss" in logs))
    m.fit(x, y, epochs=4, verbose=0, validation_data=(x, y), validation_freq=[2, 4], callbacks=[cb])
    assert seen == [False, True, False, True]
    seen.clear()
    m.fit(x, y, epochs=4, verbose=0, validation_data=(x, y), validation_freq=3, callbacks=[cb])
    assert seen == [False, False, True, False]


@pytest.mark.parametrize("kw", [{"dropout": 0.3}, {"recurrent_dropout": 0.3}])
def test_recurrent_dropout_follows_set_random_seed(kw):
    """Two runs seeded alike train to the same weights (one thread and two)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 3)).astype(np.float32)
    y = x[:, -1, :1].copy()

    def run():
        nn.utils.set_random_seed(7)
        m = nn.Sequential([layers.LSTM(5, input_shape=(6, 3), **kw), layers.Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return m.get_weights()
    for nt in (1, 2):
        with nn.threads(nt):
            a, b = run(), run()
        for u, v in zip(a, b):
            assert np.array_equal(u, v)


def test_nan_learning_rate_is_refused_before_any_step():
    m = _model()
    x, y = _data()
    with pytest.raises(ValueError, match="learning_rate"):
        m.optimizer.learning_rate = float("nan")
    m.optimizer._learning_rate = float("nan")  # bypassing the setter is still caught at fit
    before = m.get_weights()
    with pytest.raises(ValueError, match="learning rate"):
        m.fit(x, y, epochs=1, verbose=0)
    _unchanged(m, before)


def test_schedule_returning_nan_is_refused():
    m = _model()
    x, y = _data()
    m.compile(optimizer=nn.optimizers.Adam(learning_rate=lambda step: float("nan") if step >= 1 else 1e-3),
              loss="binary_crossentropy")
    with pytest.raises(ValueError, match="learning rate for step 1"):
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for w in m.get_weights():
        assert np.all(np.isfinite(w))
