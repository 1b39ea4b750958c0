"""Model files: one file of our own, never pickle.

Layout: 8-byte magic b"NNCORE\\x00\\x01", a little-endian uint64 header length, a UTF-8 JSON header
(model config, compile config, optimizer state and a manifest of every array with its dtype,
shape, offset, size and SHA-256), zero padding to 64 bytes, then the raw little-endian arrays.
Loading checks the magic and version, parses the JSON with limits, checks every array's bounds,
size and checksum, rebuilds the model only from nncore's own layer classes, and validates shapes;
a truncated, tampered or wrong-version file raises ValueError naming what is wrong.
"""
import hashlib
import json
import os
import struct

import numpy as np

MAGIC = b"NNCORE\x00\x01"
FORMAT_VERSION = 1
_MAX_HEADER = 64 << 20
_ALIGN = 64


def _write(path, header, arrays):
    """header: dict (JSON-able); arrays: list of (name, ndarray)."""
    manifest, blobs, off = [], [], 0
    for name, a in arrays:
        a = np.ascontiguousarray(a).reshape(np.shape(a))  # keep 0-d weights 0-d (Normalization count)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        raw = a.tobytes()
        manifest.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "offset": off,
                         "nbytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})
        blobs.append(raw)
        off += len(raw)
        pad = -off % _ALIGN
        blobs.append(b"\0" * pad)
        off += pad
    header = dict(header, arrays=manifest, data_bytes=off)
    body = json.dumps(header, separators=(",", ":"))
    header["header_sha256"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pre = MAGIC + struct.pack("<Q", len(hdr)) + hdr
    pre += b"\0" * (-len(pre) % _ALIGN)
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(pre)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)  # never leave a half-written file under the real name


def _read(path, expect_format):
    with open(path, "rb") as f:
        data = f.read()
    where = f"{os.fspath(path)!r}"
    if len(data) < 16 or data[:6] != MAGIC[:6]:
        raise ValueError(f"{where} is not an nncore model file (bad magic)")
    if data[:8] != MAGIC:
        raise ValueError(f"{where} has an unsupported nncore file version {data[6:8].hex()} "
                         f"(this nncore reads version {FORMAT_VERSION})")
    (hlen,) = struct.unpack("<Q", data[8:16])
    if hlen > _MAX_HEADER or 16 + hlen > len(data):
        raise ValueError(f"{where} is truncated or corrupt (header length {hlen})")
    try:
        header = json.loads(data[16:16 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where} has a corrupt header: {e}") from None
    if not isinstance(header, dict) or header.get("format") != expect_format:
        raise ValueError(f"{where} is not an nncore {expect_format.split('-')[1]} file "
                         f"(format {header.get('format') if isinstance(header, dict) else None!r})")
    digest = header.pop("header_sha256", None)
    if digest is not None:  # files from nncore 0.1.0 before this check have none
        body = json.dumps(header, separators=(",", ":")).encode("utf-8")
        if hashlib.sha256(body).hexdigest() != digest:
            raise ValueError(f"{where}: the header fails its checksum (file corrupt or tampered)")
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(f"{where} was written by format version {header.get('version')!r}; "
                         f"this nncore reads version {FORMAT_VERSION}")
    start = 16 + hlen
    start += -start % _ALIGN
    if start + int(header.get("data_bytes", -1)) != len(data):
        raise ValueError(f"{where} is truncated or has trailing data "
                         f"(expected {start + int(header.get('data_bytes', 0))} bytes, found {len(data)})")
    arrays = {}
    manifest = header.get("arrays", [])
    if not isinstance(manifest, list) or not all(isinstance(m, dict) for m in manifest):
        raise ValueError(f"{where}: the header's array list is malformed")
    for m in manifest:
        try:
            dt = np.dtype(m["dtype"])
            shape = tuple(int(s) for s in m["shape"])
            off, nb = int(m["offset"]), int(m["nbytes"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: bad array entry {m!r}: {e}") from None
        if not isinstance(m.get("name"), str) or not (dt == np.float32 and dt.byteorder in "<=|") \
                or any(s < 0 for s in shape):
            # every array nncore writes is little-endian float32 (weights, optimizer slots)
            raise ValueError(f"{where}: array {m.get('name')!r} has an unsupported dtype or shape")
        if off < 0 or nb != int(np.prod(shape)) * dt.itemsize or start + off + nb > len(data):
            raise ValueError(f"{where}: array {m.get('name')!r} is out of bounds or has the wrong size")
        raw = data[start + off:start + off + nb]
        if hashlib.sha256(raw).hexdigest() != m.get("sha256"):
            raise ValueError(f"{where}: array {m.get('name')!r} fails its checksum (file corrupt or tampered)")
        a = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{where}: array {m['name']!r} holds NaN or infinity")
        arrays[m["name"]] = a
    return header, arrays


def save_model(model, path, include_optimizer=True):
    from . import __version__
    from . import metrics as metrics_mod
    model._require_built()
    header = {"format": "nncore-model", "version": FORMAT_VERSION, "nncore_version": __version__,
              "model_config": {"class_name": type(model).__name__, "config": model.get_config()},
              "compile_config": None}
    arrays = [(f"w{i}", w) for i, w in enumerate(model.get_weights())]
    _check_finite_weights(model, arrays)
    if model._compiled:
        opt = model.optimizer
        ser = lambda m: m if isinstance(m, str) else metrics_mod.serialize(metrics_mod.get(m))  # noqa: E731
        header["compile_config"] = {
            "loss": [None if l is None else {"class_name": type(l).__name__, "config": l.get_config()}
                     for l in model._losses],
            "loss_weights": list(model._loss_weights),
            "metrics": [[ser(m) for m in ms] for ms in model._metric_lists],
            "optimizer": {"class_name": type(opt).__name__, "config": _optimizer_config(opt)},
        }
        if include_optimizer:
            header["optimizer_state"] = {"iterations": int(opt.iterations), "n_slots": len(opt.slots)}
            arrays += [(f"slot{i}", s) for i, s in enumerate(opt.slots)]
    _write(path, header, arrays)


def _check_finite_weights(model, arrays):
    """One rule for save and load: a model with NaN/inf weights (a diverged fit) is refused."""
    for name, a in arrays:
        if not np.all(np.isfinite(a)):
            raise ValueError(f"cannot save {model.name!r}: weight array {name} holds NaN or infinity "
                             f"(training diverged); nncore refuses such files when loading too")


def _optimizer_config(opt):
    from . import schedules
    cfg = opt.get_config()
    lr = opt._learning_rate
    if callable(lr):
        if type(lr) not in schedules._CLASSES.values():
            raise ValueError("cannot save an optimizer whose learning rate is a Python function or "
                             "a schedule of your own; use a schedule from nn.optimizers.schedules")
        cfg["learning_rate"] = schedules.serialize(lr)
    return cfg


def _optimizer_from_config(d):
    from . import optimizers, schedules
    classes = {c.__name__: c for c in (optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.RMSprop)}
    cls = classes.get(d.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown optimizer {d.get('class_name')!r} in model file")
    cfg = dict(d.get("config", {}))
    cfg.pop("name", None)
    lr = cfg.get("learning_rate")
    try:
        if isinstance(lr, dict):
            cfg["learning_rate"] = schedules.deserialize(lr)
        return cls(**cfg)
    except TypeError as e:
        raise ValueError(f"bad optimizer config in model file: {e}") from None


def load_model(path, compile=True):
    """nncore's own files, Keras 3 `.keras` archives and legacy Keras `.h5` files, told apart by
    their first bytes (not their suffix)."""
    from . import keras_format
    kind = keras_format.sniff(path)
    if kind == "keras":
        return keras_format.load_keras(path, compile=compile)
    if kind == "h5":
        return keras_format.load_h5(path, compile=compile)
    if kind is None:
        raise ValueError(f"{os.fspath(path)!r} is not an nncore model file, a Keras .keras archive or a "
                         f"Keras .h5 file (its first bytes are none of theirs)")
    header, arrays = _read(path, "nncore-model")
    try:
        return _model_from_file(header, arrays, compile)
    except ValueError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, OverflowError, RecursionError,
            MemoryError) as e:  # a config of the wrong JSON types
        raise ValueError(f"{os.fspath(path)!r}: the model file's config is malformed "
                         f"({type(e).__name__}: {e})") from None


def _model_from_file(header, arrays, compile):
    from . import losses
    from .graph import model_from_config
    from .layers import base
    mc = header.get("model_config") or {}
    budget = sum(a.size for k, a in arrays.items() if k.startswith("w"))
    base._loading.budget = [budget]
    try:
        model = model_from_config(mc)
        model._require_built()
    finally:
        base._loading.budget = None
    n = len(model.get_weights())
    try:
        model.set_weights([arrays[f"w{i}"] for i in range(n)])
    except KeyError as e:
        raise ValueError(f"model file lacks weight array {e}") from None
    cc = header.get("compile_config")
    if compile and cc:
        opt = _optimizer_from_config(cc.get("optimizer", {}))
        metrics = cc.get("metrics") or None
        if isinstance(metrics, list) and metrics and all(isinstance(m, list) for m in metrics) and len(metrics) == 1:
            metrics = metrics[0]  # one output
        model.compile(optimizer=opt, loss=_losses_from_config(cc.get("loss")), metrics=metrics,
                      loss_weights=cc.get("loss_weights"))
        st = header.get("optimizer_state")
        if st:
            opt.build(model._params.size)
            n_slots = st.get("n_slots", 0)
            if isinstance(n_slots, bool) or not isinstance(n_slots, int) or n_slots != len(opt.slots):
                raise ValueError(f"model file has {n_slots!r} optimizer slots; {type(opt).__name__} keeps {len(opt.slots)}")
            slots = [arrays.get(f"slot{i}") for i in range(n_slots)]
            iterations = st.get("iterations", 0)
            if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
                raise ValueError(f"model file has a bad optimizer step count {iterations!r}")
            if len(slots) != len(opt.slots) or any(s is None or s.shape != o.shape for s, o in zip(slots, opt.slots)):
                raise ValueError("model file has optimizer state that does not match the model")
            for s, o in zip(slots, opt.slots):
                o[...] = s
            opt.iterations = iterations
            model._compile_program()
    return model


def _losses_from_config(cfg):
    """Per-output losses as saved (a list), or one loss (files written before multi-output)."""
    from . import losses
    if isinstance(cfg, list):
        return [None if c is None else losses.get(c) for c in cfg]
    return losses.get(cfg)


def save_weights(model, path):
    model._require_built()
    arrays = [(f"w{i}", w) for i, w in enumerate(model.get_weights())]
    _check_finite_weights(model, arrays)
    _write(path, {"format": "nncore-weights", "version": FORMAT_VERSION}, arrays)


def load_weights(model, path):
    header, arrays = _read(path, "nncore-weights")
    model._require_built()
    n = len(model.get_weights())
    if len(arrays) != n:
        raise ValueError(f"weights file has {len(arrays)} arrays, the model has {n}")
    model.set_weights([arrays[f"w{i}"] for i in range(n)])
