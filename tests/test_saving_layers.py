"""Every layer family survives get_config/from_config and a save/load round trip bit for bit."""
import numpy as np
import pytest

import nncore as nn
from nncore import layers


def cnn():
    return nn.Sequential([
        layers.Conv2D(4, (3, 3), activation="relu", padding="same", input_shape=(9, 9, 2)),
        layers.MaxPooling2D((2, 2)), layers.Conv2D(3, 2, strides=2), layers.Flatten(),
        layers.Dense(2, activation="softmax")]), (9, 9, 2)


def conv1d():
    return nn.Sequential([
        layers.Conv1D(4, 3, activation="relu", input_shape=(12, 3)), layers.MaxPooling1D(2),
        layers.GlobalAveragePooling1D(), layers.Dense(1)]), (12, 3)


def rnn():
    return nn.Sequential([
        layers.LSTM(5, return_sequences=True, input_shape=(6, 3)), layers.GRU(4, return_sequences=True),
        layers.Bidirectional(layers.SimpleRNN(3)), layers.Dense(1, activation="sigmoid")]), (6, 3)


@pytest.mark.parametrize("make", [cnn, conv1d, rnn])
def test_round_trip(make, tmp_path):
    nn.utils.set_random_seed(0)
    model, shape = make()
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(5,) + shape).astype(np.float32)
    y = model.predict(x)
    model.fit(x, np.zeros_like(y), epochs=1, verbose=0)
    clone = nn.Sequential.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert np.array_equal(clone.predict(x), model.predict(x))
    model.save(tmp_path / "m.nncore")
    loaded = nn.models.load_model(tmp_path / "m.nncore")
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.count_params() == model.count_params()
