"""Model files: round trips keep predictions bit for bit, training resumes with optimizer state,
and bad files (truncated, tampered, wrong version, crafted configs) give clear errors."""
import hashlib
import json
import struct

import numpy as np
import pytest

import nncore as nn
from nncore import layers
from nncore.saving import MAGIC


def make_model(seed=0):
    nn.utils.set_random_seed(seed)
    m = nn.Sequential([layers.Dense(16, activation="relu", input_shape=(6,),
                                    kernel_regularizer=nn.regularizers.l2(1e-3)),
                       layers.Dense(8, activation="gelu"), layers.Dense(3, activation="softmax")])
    m.compile(optimizer=nn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def data(n=256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, np.argmax(x[:, :3], axis=1)


def test_round_trip_predictions_bitwise(tmp_path):
    m = make_model()
    x, y = data()
    m.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "m.nncore"
    m.save(path)
    m2 = nn.models.load_model(path)
    assert np.array_equal(m.predict(x), m2.predict(x))
    assert [l.name for l in m2.layers] == [l.name for l in m.layers]
    assert m2.get_config() == m.get_config()
    assert m2.optimizer.iterations == m.optimizer.iterations
    assert m2.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)


def test_training_resumes_with_optimizer_state(tmp_path):
    x, y = data()
    a = make_model()
    a.fit(x, y, epochs=3, shuffle=False, verbose=0)
    b = make_model()
    b.fit(x, y, epochs=2, shuffle=False, verbose=0)
    b.save(tmp_path / "b.nncore")
    c = nn.models.load_model(tmp_path / "b.nncore")
    c.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for wa, wc in zip(a.get_weights(), c.get_weights()):
        assert np.array_equal(wa, wc)


def test_weights_only(tmp_path):
    m = make_model(1)
    m.save_weights(tmp_path / "w.nncore")
    m2 = make_model(2)
    m2.load_weights(tmp_path / "w.nncore")
    x, _ = data(10)
    assert np.array_equal(m.predict(x), m2.predict(x))
    with pytest.raises(ValueError, match="not an nncore model"):
        nn.models.load_model(tmp_path / "w.nncore")


def test_regularizer_is_in_the_loss():
    x, y = data()
    m = make_model()
    loss = m.evaluate(x, y, verbose=0)[0]
    plain = nn.Sequential.from_config(m.get_config())
    plain.layers[0].kernel_regularizer = None
    assert m._regularization_penalty() == pytest.approx(1e-3 * float(np.square(m.layers[0].kernel.astype(np.float64)).sum()))
    assert loss > m._regularization_penalty()


@pytest.fixture
def saved(tmp_path):
    m = make_model()
    p = tmp_path / "m.nncore"
    m.save(p)
    return p, p.read_bytes()


def test_truncated_file(saved, tmp_path):
    p, raw = saved
    for cut in (5, 20, len(raw) // 2, len(raw) - 1):
        bad = tmp_path / f"t{cut}.nncore"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="truncated|not an nncore|corrupt"):
            nn.models.load_model(bad)


def test_tampered_weights(saved, tmp_path):
    p, raw = saved
    b = bytearray(raw)
    b[-100] ^= 0x40
    bad = tmp_path / "x.nncore"
    bad.write_bytes(bytes(b))
    with pytest.raises(ValueError, match="checksum"):
        nn.models.load_model(bad)


def _rewrite_header(raw, fn, rehash=True):
    """The file with its header edited by fn; rehash: as a deliberate crafter would, with the
    header checksum recomputed (so the checks behind it are what is tested)."""
    (hlen,) = struct.unpack("<Q", raw[8:16])
    header = json.loads(raw[16:16 + hlen])
    header.pop("header_sha256")
    fn(header)
    if rehash:
        header["header_sha256"] = hashlib.sha256(json.dumps(header, separators=(",", ":")).encode()).hexdigest()
    else:
        header["header_sha256"] = "0" * 64
    start = 16 + hlen
    start += -start % 64
    data = raw[start:]
    hdr = json.dumps(header, separators=(",", ":")).encode()
    pre = MAGIC + struct.pack("<Q", len(hdr)) + hdr
    pre += b"\0" * (-len(pre) % 64)
    return pre + data


@pytest.mark.parametrize("edit,match", [
    (lambda h: h.update(version=99), "format version 99"),
    (lambda h: h["model_config"]["config"]["layers"][0].update(class_name="os.system"), "unknown layer class"),
    (lambda h: h["model_config"]["config"]["layers"][0]["config"].update(units=7), "expected shape|checksum|weight"),
    (lambda h: h["arrays"][0].update(offset=10 ** 9), "out of bounds"),
    (lambda h: h["arrays"][0].update(dtype="|O"), "unsupported dtype"),
    (lambda h: h["arrays"][0].update(dtype="<i4"), "unsupported dtype"),  # same size, other meaning
    (lambda h: h["model_config"]["config"]["layers"][0]["config"].update(units=5 * 10 ** 7),
     "more than the file's weight arrays hold"),
    (lambda h: h["model_config"]["config"].update(layers="x"), "malformed|bad config|expects a dict"),
    (lambda h: h["model_config"]["config"]["layers"][0].update(config=[1]), "malformed|bad config"),
    (lambda h: h.update(arrays={"a": 1}), "malformed"),
    (lambda h: h["model_config"]["config"]["layers"][0]["config"].update(bogus=1), "bad config"),
])
def test_crafted_headers(saved, tmp_path, edit, match):
    p, raw = saved
    bad = tmp_path / "c.nncore"
    bad.write_bytes(_rewrite_header(raw, edit))
    with pytest.raises(ValueError, match=match):
        nn.models.load_model(bad)


def test_header_edit_without_its_checksum_is_refused(saved, tmp_path):
    p, raw = saved
    bad = tmp_path / "h.nncore"
    bad.write_bytes(_rewrite_header(raw, lambda h: h["arrays"][0].update(dtype="<i4"), rehash=False))
    with pytest.raises(ValueError, match="header fails its checksum"):
        nn.models.load_model(bad)


def test_diverged_model_is_refused_at_save(tmp_path):
    m = nn.Sequential([nn.layers.Dense(2, input_shape=(3,))])
    m.build()
    m.layers[0]._weights[0][0, 0] = np.nan  # as a diverged fit leaves it
    with pytest.raises(ValueError, match="NaN or infinity"):
        m.save(tmp_path / "nan.nncore")
    assert not (tmp_path / "nan.nncore").exists()


def test_wrong_magic_and_version(saved, tmp_path):
    p, raw = saved
    bad = tmp_path / "v.nncore"
    bad.write_bytes(MAGIC[:6] + b"\x00\x09" + raw[8:])
    with pytest.raises(ValueError, match="unsupported nncore file version"):
        nn.models.load_model(bad)
    bad.write_bytes(b"XY\x03\x04" + raw[4:])
    with pytest.raises(ValueError, match="not an nncore model file, a Keras .keras archive or a Keras .h5"):
        nn.models.load_model(bad)
    bad.write_bytes(b"PK\x03\x04" + raw[4:])  # a zip's magic: read as a .keras archive, refused
    with pytest.raises(ValueError, match="not a readable .keras archive"):
        nn.models.load_model(bad)


def test_frozen_layer_is_not_updated():
    x, y = data()
    m = make_model()
    m.layers[0].trainable = False
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = m.layers[0].get_weights()
    m.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, m.layers[0].get_weights()):
        assert np.array_equal(a, b)
    assert not np.array_equal(m.layers[1].get_weights()[0], make_model().layers[1].get_weights()[0])


def test_output_gradients_match_finite_differences():
    m = make_model()
    x, _ = data(4)
    out, dx = m._output_gradients(x, upstream=np.tile([1.0, 0.0, 0.0], (4, 1)))
    eps = 1e-2
    for j in range(6):
        e = np.zeros_like(x)
        e[:, j] = eps
        fd = (m.predict(x + e)[:, 0] - m.predict(x - e)[:, 0]) / (2 * eps)
        np.testing.assert_allclose(dx[:, j], fd, rtol=2e-2, atol=2e-3)


def test_metric_objects_and_schedule_round_trip(tmp_path):
    """Metric objects keep their settings in the file (an AUC renamed 'auc_pr' used to make the
    file unloadable; a BinaryAccuracy threshold came back as 0.5), schedules go through the
    schedules whitelist."""
    m = nn.Sequential([nn.layers.Dense(4, activation="relu", input_shape=(3,)),
                       nn.layers.Dense(1, activation="sigmoid")])
    sched = nn.optimizers.schedules.ExponentialDecay(1e-2, 100, 0.9)
    m.compile(optimizer=nn.optimizers.Adam(sched), loss="binary_crossentropy",
              metrics=["accuracy", nn.metrics.AUC(curve="PR", name="auc_pr"),
                       nn.metrics.BinaryAccuracy(threshold=0.3), nn.metrics.Precision(thresholds=0.3),
                       nn.metrics.AUC(thresholds=[0.25, 0.5, 0.75], name="auc3")])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=64) > 0).astype(np.float32)
    m.fit(x, y, epochs=2, verbose=0)
    m.save(tmp_path / "m.nnc")
    m2 = nn.models.load_model(tmp_path / "m.nnc")
    assert m2.evaluate(x, y, verbose=0, return_dict=True) == m.evaluate(x, y, verbose=0, return_dict=True)
    specs = {type(s).__name__ + ":" + s.name: s.get_config() for s in m2._new_metrics()[0]}
    assert specs["AUC:auc_pr"]["curve"] == "PR"
    assert specs["BinaryAccuracy:binary_accuracy"]["threshold"] == 0.3
    assert specs["Precision:precision"]["thresholds"] == pytest.approx(0.3)
    assert specs["AUC:auc3"]["thresholds"] == [0.25, 0.5, 0.75]
    assert isinstance(m2.optimizer._learning_rate, nn.optimizers.schedules.ExponentialDecay)
    assert m2.optimizer._learning_rate.get_config() == sched.get_config()


def test_negative_variance_is_refused(tmp_path):
    m = nn.Sequential([nn.layers.BatchNormalization(input_shape=(3,))])
    m.build()
    w = m.get_weights()
    w[3][1] = -1.0  # moving_variance
    with pytest.raises(ValueError, match="moving_variance.*>= 0"):
        m.set_weights(w)
    m.save(tmp_path / "bn.nncore")
    raw = (tmp_path / "bn.nncore").read_bytes()
    (tmp_path / "bad.nncore").write_bytes(raw)
    # a file whose variance array was edited (and its checksums recomputed) is refused on load
    (hlen,) = struct.unpack("<Q", raw[8:16])
    header = json.loads(raw[16:16 + hlen])
    entry = header["arrays"][3]
    start = 16 + hlen
    start += -start % 64
    arr = np.frombuffer(raw[start + entry["offset"]:start + entry["offset"] + entry["nbytes"]], np.float32).copy()
    arr[0] = -2.0
    data = bytearray(raw)
    data[start + entry["offset"]:start + entry["offset"] + entry["nbytes"]] = arr.tobytes()
    entry["sha256"] = hashlib.sha256(arr.tobytes()).hexdigest()
    (tmp_path / "bad.nncore").write_bytes(_rewrite_header(bytes(data), lambda h: h.update(arrays=header["arrays"])))
    with pytest.raises(ValueError, match=">= 0"):
        nn.models.load_model(tmp_path / "bad.nncore")
