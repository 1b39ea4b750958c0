"""Callbacks' behaviour in real fits: early stopping stops and restores the best weights,
checkpoints write the best epochs, LR reduction and scheduling apply, NaN terminates without
forcing one-batch chunks, CSV logs; and the fit-level bad-input errors."""
import csv
import math

import numpy as np
import pytest

import nncore as nn
from nncore import callbacks as C


def _linear_problem(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32) + 0.1)[:, None]
    return x, y


def _model(lr=0.01, opt="sgd", seed=0):
    nn.utils.set_random_seed(seed)
    m = nn.Sequential([nn.layers.Dense(1, input_shape=(4,))])
    m.compile(nn.optimizers.SGD(lr) if opt == "sgd" else opt, "mse")
    return m


class Scripted(C.Callback):
    """Overwrites val_loss with a scripted sequence (runs before the callbacks under test)."""

    def __init__(self, values, key="val_loss"):
        super().__init__()
        self.values, self.key = values, key

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Snap(C.Callback):
    """Weights at the end of each epoch (runs after the callbacks under test)."""

    def on_train_begin(self, logs=None):
        self.w = []

    def on_epoch_end(self, epoch, logs=None):
        self.w.append(self.model.get_weights())


def test_early_stopping_stops_and_restores():
    x, y = _linear_problem()
    m = _model()
    vals = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.05, 1.0]
    es = C.EarlyStopping(patience=2, restore_best_weights=True)
    snap = Snap()
    h = m.fit(x, y, epochs=8, batch_size=64, verbose=0, callbacks=[Scripted(vals), es, snap])
    assert len(h.history["loss"]) == 5  # best at epoch 2; epochs 3 and 4 do not improve
    assert es.stopped_epoch == 4 and es.best_epoch == 2 and es.best == 3.0
    for a, b in zip(m.get_weights(), snap.w[2]):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(snap.w[4], snap.w[2]))
    # the restored weights are what predict uses (the engine saw params_changed)
    np.testing.assert_allclose(m.predict(x[:5]), x[:5] @ snap.w[2][0] + snap.w[2][1], rtol=1e-5, atol=1e-6)


def test_early_stopping_min_delta_baseline_mode_start():
    x, y = _linear_problem(128)
    # min_delta: improvements smaller than 0.5 do not count
    es = C.EarlyStopping(patience=1, min_delta=0.5)
    h = _model().fit(x, y, epochs=6, verbose=0, callbacks=[Scripted([5, 4.8, 4.6, 4.4, 4, 3]), es])
    assert len(h.history["loss"]) == 2
    # mode max on a metric; start_from_epoch ignores the first epochs
    es = C.EarlyStopping(monitor="val_auc", patience=1, start_from_epoch=2)
    h = _model().fit(x, y, epochs=6, verbose=0,
                     callbacks=[Scripted([0.1, 0.0, 0.5, 0.6, 0.55, 0.9], "val_auc"), es])
    assert len(h.history["loss"]) == 5 and es.best == 0.6
    # baseline never beaten: stops after patience epochs
    es = C.EarlyStopping(patience=2, baseline=1.0)
    h = _model().fit(x, y, epochs=6, verbose=0, callbacks=[Scripted([5, 4, 4, 4, 4, 4]), es])
    assert len(h.history["loss"]) == 3
    with pytest.raises(ValueError, match="mode"):
        C.EarlyStopping(monitor="val_thing")
    with pytest.warns(RuntimeWarning, match="not in the logs"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[C.EarlyStopping(monitor="val_loss")])


def test_model_checkpoint_writes_best(tmp_path):
    x, y = _linear_problem(128)
    m = _model()
    saved = []
    m.save = lambda path: saved.append(("model", path, m.get_weights()))
    m.save_weights = lambda path: saved.append(("weights", path, m.get_weights()))
    vals = [3.0, 2.0, 2.5, 1.0, 1.5]
    snap = Snap()
    ck = C.ModelCheckpoint(str(tmp_path / "best-{epoch:02d}-{val_loss:.1f}.nnc"), save_best_only=True)
    m.fit(x, y, epochs=5, verbose=0, callbacks=[Scripted(vals), ck, snap])
    assert [p.split("/")[-1] for _, p, _ in saved] == ["best-01-3.0.nnc", "best-02-2.0.nnc", "best-04-1.0.nnc"]
    assert all(kind == "model" for kind, _, _ in saved)
    for a, b in zip(saved[-1][2], snap.w[3]):
        np.testing.assert_array_equal(a, b)
    saved.clear()
    ck = C.ModelCheckpoint(str(tmp_path / "w.weights"), save_weights_only=True)
    m.fit(x, y, epochs=3, verbose=0, callbacks=[ck])
    assert [k for k, _, _ in saved] == ["weights"] * 3
    with pytest.raises(KeyError, match="val_auc"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[C.ModelCheckpoint(str(tmp_path / "{val_auc}.nnc"))])


def test_reduce_lr_on_plateau_applies():
    x, y = _linear_problem(128)
    m = _model(lr=0.01)
    vals = [3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    rl = C.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.002)
    h = m.fit(x, y, epochs=8, verbose=0, callbacks=[Scripted(vals), rl])
    # lr logged at each epoch end before the reduction of that epoch
    np.testing.assert_allclose(h.history["learning_rate"], [0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025],
                               rtol=1e-6)
    assert m.optimizer.learning_rate == pytest.approx(0.002)  # floored at min_lr


def test_reduced_lr_reaches_the_engine():
    """After ReduceLROnPlateau the C loop really steps with the new rate: same weights as two
    epochs at 0.1 then one at 0.05 set by hand (full batches, no shuffling: deterministic)."""
    x, y = _linear_problem(64)
    a, b = _model(lr=0.1), _model(lr=0.1)
    b.set_weights(a.get_weights())
    rl = C.ReduceLROnPlateau(factor=0.5, patience=1)
    a.fit(x, y, epochs=3, batch_size=64, shuffle=False, verbose=0, callbacks=[Scripted([1, 1, 1]), rl])
    assert a.optimizer.learning_rate == pytest.approx(0.025)  # reduced after epochs 1 and 2
    b.fit(x, y, epochs=2, batch_size=64, shuffle=False, verbose=0)
    b.optimizer.learning_rate = 0.05
    b.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_learning_rate_scheduler():
    x, y = _linear_problem(64)
    m = _model(lr=0.1)
    seen = []
    sched = C.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    h = m.fit(x, y, epochs=4, verbose=0, callbacks=[sched, C.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(m.optimizer.learning_rates(0, 1)[0]))])
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.05, 0.025, 0.0125], rtol=1e-6)
    np.testing.assert_allclose(seen, [0.1, 0.05, 0.025, 0.0125], rtol=1e-6)
    m2 = _model(lr=0.1)
    h = m2.fit(x, y, epochs=2, verbose=0, callbacks=[C.LearningRateScheduler(lambda e: 0.01 * (e + 1))])
    np.testing.assert_allclose(h.history["learning_rate"], [0.01, 0.02], rtol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[C.LearningRateScheduler(lambda e, lr: -1.0)])


def test_learning_rate_scheduler_matches_engine_step():
    """The scheduled rate is the one the engine uses: one SGD epoch of one batch, by hand."""
    x, y = _linear_problem(32)
    m = _model(lr=1.0)
    w0 = m.get_weights()
    m.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0,
          callbacks=[C.LearningRateScheduler(lambda e, lr: 0.03)])
    W, b = w0[0].astype(np.float64), w0[1].astype(np.float64)
    err = x @ W + b - y
    gW = 2 * x.T @ err / 32
    np.testing.assert_allclose(m.get_weights()[0], W - 0.03 * gW, rtol=1e-4, atol=1e-6)


class ChunkCounter(C.Callback):
    def on_train_begin(self, logs=None):
        self.n = 0

    def on_train_chunk_end(self, step, logs=None):
        self.n += 1


def test_terminate_on_nan_without_per_batch_chunks(capsys):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(640, 4)) * 1e3).astype(np.float32)
    y = (rng.normal(size=(640, 1)) * 1e6).astype(np.float32)
    m = _model(lr=10.0)
    cnt = ChunkCounter()
    h = m.fit(x, y, epochs=50, batch_size=32, verbose=0, callbacks=[C.TerminateOnNaN(), cnt])
    assert len(h.history["loss"]) == 1 and not math.isfinite(h.history["loss"][0])
    assert cnt.n == 1  # verbose=0: the whole epoch is one chunk; the check did not split it
    assert "Invalid loss" in capsys.readouterr().out
    assert not C.TerminateOnNaN()._wants_batches()


def test_csv_logger(tmp_path):
    x, y = _linear_problem(64)
    path = tmp_path / "log.csv"
    m = _model()
    m.compile(nn.optimizers.SGD(0.01), "mse", metrics=["mae"])
    m.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[C.CSVLogger(str(path))])
    m.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[C.CSVLogger(str(path), append=True)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "0", "1"]
    assert all(float(v) >= 0 for r in rows[1:] for v in r[1:])


def test_hooks_order_and_history():
    x, y = _linear_problem(96)
    events = []

    class Rec(C.Callback):
        def on_train_begin(self, logs=None): events.append("train_begin")
        def on_epoch_begin(self, epoch, logs=None): events.append(f"epoch_begin{epoch}")
        def on_train_batch_end(self, batch, logs=None): events.append(f"batch{batch}")
        def on_epoch_end(self, epoch, logs=None): events.append(f"epoch_end{epoch}")
        def on_train_end(self, logs=None): events.append("train_end")

    m = _model()
    h = m.fit(x, y, epochs=3, batch_size=48, verbose=0, initial_epoch=1, callbacks=[Rec()])
    assert events == ["train_begin", "epoch_begin1", "batch0", "batch1", "epoch_end1",
                      "epoch_begin2", "batch0", "batch1", "epoch_end2", "train_end"]
    assert h.epoch == [1, 2] and m.history is h


def test_fit_bad_input_errors():
    x, y = _linear_problem(64)
    m = nn.Sequential([nn.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    m.compile("adam", "binary_crossentropy")
    yb = (y > 0).astype(np.float32)
    with pytest.raises(ValueError, match="class_weight has class 2"):
        m.fit(x, yb, class_weight={0: 1.0, 2: 3.0}, verbose=0)
    with pytest.raises(ValueError, match="sample_weight has 10 values"):
        m.fit(x, yb, sample_weight=np.ones(10), verbose=0)
    ybad = yb.copy()
    ybad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(x, ybad, verbose=0)


def test_model_checkpoint_real_save_round_trip(tmp_path):
    if not hasattr(nn.models, "load_model"):
        pytest.skip("model saving is not in this build")
    x, y = _linear_problem(128)
    m = _model()
    path = tmp_path / "best.nnc"
    snap = Snap()
    m.fit(x, y, epochs=4, verbose=0, callbacks=[Scripted([3.0, 1.0, 2.0, 4.0]),
                                                C.ModelCheckpoint(str(path), save_best_only=True), snap])
    loaded = nn.models.load_model(str(path))
    for a, b in zip(loaded.get_weights(), snap.w[1]):
        np.testing.assert_array_equal(a, b)


def test_lambda_chunk_hook_and_user_schedule():
    """LambdaCallback's on_train_chunk_end runs, and a user LearningRateSchedule subclass gets a
    scalar step (Keras code with `if step < warmup` works)."""
    class Warmup(nn.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 1e-3 * (step + 1) / 10 if step < 10 else 1e-3

    calls = []
    nn.utils.set_random_seed(0)
    m = nn.Sequential([nn.layers.Dense(4, activation="relu", input_shape=(3,)), nn.layers.Dense(1)])
    m.compile(optimizer=nn.optimizers.Adam(Warmup()), loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    m.fit(x, x[:, :1], epochs=2, batch_size=16, verbose=0,
          callbacks=[nn.callbacks.LambdaCallback(on_train_chunk_end=lambda step, logs: calls.append(step))])
    assert calls and calls[-1] == 4  # batches of the epoch done when the chunk ended
    np.testing.assert_allclose(m.optimizer.learning_rates(0, 3), [1e-4, 2e-4, 3e-4], rtol=1e-6)
