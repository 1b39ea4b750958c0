"""Keras's model files in and out: Keras 3 `.keras` archives and legacy Keras 2 / tf.keras `.h5`.

Reading runs no code from the file. The config is JSON, mapped onto nncore's own layer classes:
every Keras argument is taken by the nncore layer of the same name or refused by name (an
argument that only Keras has is accepted only at the value that changes nothing). A Lambda
layer, a custom object or anything from a module outside Keras is refused. Zip entries are read
by name only (never extracted) after their sizes are checked; every HDF5 dataset is checked
against the shape the config implies before it is read. Needs h5py (`pip install nncore[keras]`),
never TensorFlow or Keras.

Weights in a `.keras` archive live at Keras's object paths (`layers/<snake class name>[_k]/vars/<i>`,
`.../cell/vars` for recurrent layers, `.../forward_layer/cell/vars` for Bidirectional); in a legacy
`.h5` file at `model_weights/<layer name>/` in the order of its `weight_names` attribute.
"""
import datetime
import functools
import inspect
import io
import json
import os
import re
import zipfile

import numpy as np

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAX_JSON = 64 << 20           # config.json / metadata.json
_MAX_WEIGHTS = 16 << 30        # model.weights.h5, uncompressed
_KERAS_SCHEMA = "3.15.1"       # the Keras version whose file layout save_keras writes

_ANY = object()
# Arguments only Keras has, accepted at the value that changes nothing (_ANY: never changes the
# numbers nncore computes). Anything else nncore's layer does not take is refused by name.
_INERT = {
    "quantization_config": None, "lora_rank": None, "lora_alpha": None, "lora_enabled": False,
    "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
    "recurrent_constraint": None, "kernel_regularizer": None, "bias_regularizer": None,
    "recurrent_regularizer": None, "sparse": False, "ragged": False, "optional": False,
    "renorm": False, "renorm_clipping": None, "renorm_momentum": _ANY, "synchronized": False,
    "implementation": _ANY, "time_major": False, "use_cudnn": _ANY, "unroll": _ANY,
    "input_axes": None, "output_axes": None,  # initializers (Keras 3.13+)
}
_REFUSED_CLASSES = ("Lambda", "TFOpLambda", "SlicingOpLambda", "TFLambda")
_RNN = ("LSTM", "GRU", "SimpleRNN")
_MODELS = ("Sequential", "Functional", "Model")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading and writing Keras model files needs h5py: "
                          "pip install 'nncore[keras]'") from None
    return h5py


def sniff(path):
    """'nncore', 'keras' (zip archive), 'h5' or None, from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:6] == b"NNCORE":
        return "nncore"
    if head[:4] == ZIP_MAGIC:
        return "keras"
    if head == HDF5_MAGIC:
        return "h5"
    return None


def snake(name):
    """Keras's naming.to_snake_case (the object paths in a .keras weights file)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@functools.lru_cache(maxsize=None)
def _accepted(cls):
    """Keyword arguments cls's constructor takes (through **kwargs into its bases)."""
    names = set()
    for c in cls.__mro__:
        init = c.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names.update(p for p, v in params.items() if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY))
        if not any(v.kind == v.VAR_KEYWORD for v in params.values()):
            break
    names.discard("self")
    return names


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, where, keras_major):
        self.where = where
        self.keras2 = keras_major < 3

    def fail(self, msg):
        raise ValueError(f"{self.where}: {msg}")

    # ---- objects and values ----------------------------------------------------------------
    def check_object(self, obj, what):
        cn = obj.get("class_name")
        if not isinstance(cn, str):
            self.fail(f"{what} has no class_name: {str(obj)[:200]}")
        if cn in _REFUSED_CLASSES or cn.startswith("__lambda__"):
            name = (obj.get("config") or {}).get("name") if isinstance(obj.get("config"), dict) else None
            self.fail(f"{what} {name or ''!s} is a {cn} layer, which holds Python code; nncore never "
                      f"loads code from a file (rebuild that part with nncore layers)".replace("  ", " "))
        module = obj.get("module")
        if module is not None and not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            self.fail(f"{what} {cn!r} comes from module {module!r}; nncore loads only Keras's own objects "
                      f"(custom objects are refused)")
        reg = obj.get("registered_name")
        if reg is not None and reg != cn:
            self.fail(f"{what} {cn!r} is the custom object {reg!r}; nncore loads only Keras's own objects")
        if not isinstance(obj.get("config", {}), dict):
            self.fail(f"{what} {cn!r} has a malformed config")
        return cn

    def plain(self, v, what):
        """A config value without Keras's serialization wrappers (tuples, NumPy arrays)."""
        if isinstance(v, dict):
            cn = v.get("class_name")
            if cn == "__tuple__":
                return [self.plain(x, what) for x in (v.get("config") or {}).get("value", [])]
            if cn == "__numpy__":
                return np.asarray((v.get("config") or {}).get("value"), dtype=np.float64).tolist()
            if isinstance(cn, str) and cn.startswith("__"):
                self.fail(f"{what}: a serialized {cn} value is not something nncore loads")
            if cn is not None:
                self.check_object(v, what)
                return {"class_name": cn, "config": {k: self.plain(x, what) for k, x in (v.get("config") or {}).items()}}
            return {k: self.plain(x, what) for k, x in v.items()}
        if isinstance(v, list):
            return [self.plain(x, what) for x in v]
        return v

    def fit(self, cls, cfg, what):
        """cfg with every key cls takes; Keras-only keys dropped when inert, else refused."""
        ok, out = _accepted(cls), {}
        for k, v in cfg.items():
            if k in ok:
                out[k] = v
                continue
            inert = _INERT.get(k, KeyError)
            if inert is _ANY or (inert is not KeyError and v == inert):
                continue
            self.fail(f"{what}: Keras argument {k}={v!r} is not supported by nncore")
        return out

    def dtype(self, v, what, allow_int=False):
        name = v
        if isinstance(v, dict):
            name = (v.get("config") or {}).get("name")
        if name in (None, "float32") or allow_int and name in ("int32", "int64"):
            return name
        self.fail(f"{what}: dtype {name!r} is not supported (nncore computes in float32)")

    def initializer(self, v, what):
        from . import initializers
        if v is None or isinstance(v, str):
            return v
        if not isinstance(v, dict) or v.get("class_name") not in initializers._CLASS_NAMES:
            self.fail(f"{what}: initializer {v!r} is not one nncore has")
        cls = initializers._NAMES[initializers._CLASS_NAMES[v["class_name"]]]
        return {"class_name": v["class_name"], "config": self.fit(cls, v.get("config") or {}, f"{what} initializer")}

    def activation(self, v, what):
        if isinstance(v, dict):
            self.fail(f"{what}: activation {v.get('class_name')!r} is a custom object; nncore loads only "
                      f"Keras's built-in activations")
        if self.keras2 and v == "hard_sigmoid":
            # Keras 2's hard_sigmoid is clip(0.2x + 0.5); Keras 3's (and nncore's) is relu6(x + 3) / 6
            self.fail(f"{what}: Keras 2's hard_sigmoid (0.2x + 0.5) differs from Keras 3's and nncore's")
        return v

    # ---- layers and models -----------------------------------------------------------------
    def layer(self, entry):
        """An nncore layer (or model) from a Keras layer entry; the entry gets '_nncore' set."""
        from .graph import layer_classes
        if not isinstance(entry, dict):
            self.fail(f"layer entry must be an object, got {str(entry)[:100]}")
        cn = self.check_object(entry, "layer")
        raw = entry.get("config") or {}
        name = raw.get("name")
        what = f"layer {name!r} ({cn})"
        if cn in _MODELS:
            made = self.model(entry)
            entry["_nncore"] = made
            return made
        cfg = {k: self.plain(v, what) for k, v in raw.items()}
        self.dtype(cfg.pop("dtype", None), what, allow_int=cn == "InputLayer")
        cn, cfg = self.alias(cn, cfg, what)
        for k in list(cfg):
            if k.endswith("_initializer"):
                cfg[k] = self.initializer(cfg[k], what)
            elif k in ("activation", "recurrent_activation"):
                cfg[k] = self.activation(cfg[k], what)
        classes = layer_classes()
        cls = classes.get(cn) if not cn.startswith("_") and cn not in _MODELS else None
        if cls is None:
            self.fail(f"{what}: nncore has no {cn} layer (see the README's table of Keras layers)")
        inner = {}
        if cn in ("Bidirectional", "TimeDistributed"):
            for k in ("layer", "backward_layer"):
                if cfg.get(k) is not None:
                    inner[k] = self.layer(raw[k])
                    cfg.pop(k)
        cfg = self.fit(cls, cfg, what)
        try:
            if inner:
                made = cls(inner.pop("layer"), **inner, **cfg)
            else:
                made = cls.from_config(cfg)
        except (TypeError, ValueError) as e:
            self.fail(f"{what}: {e}")
        entry["_nncore"] = made
        return made

    def alias(self, cn, cfg, what):
        """Keras activation layers nncore expresses as Activation (only at values it computes)."""
        def need(**want):
            for k, v in want.items():
                if cfg.get(k, v) != v:
                    self.fail(f"{what}: {k}={cfg[k]!r} is not supported by nncore (only {v!r})")
            return {k: v for k, v in cfg.items() if k not in want}
        if cn == "ReLU":
            if cfg.get("max_value") == 6:
                return "Activation", dict(need(max_value=6, negative_slope=0.0, threshold=0.0), activation="relu6")
            return "Activation", dict(need(max_value=None, negative_slope=0.0, threshold=0.0), activation="relu")
        if cn == "LeakyReLU":  # nncore's leaky_relu has Keras 3's activation slope 0.2
            key = "alpha" if "alpha" in cfg else "negative_slope"
            return "Activation", dict(need(**{key: 0.2}), activation="leaky_relu")
        if cn == "ELU":
            return "Activation", dict(need(alpha=1.0), activation="elu")
        if cn == "Softmax":
            return "Activation", dict(need(axis=-1), activation="softmax")
        return cn, cfg

    def model(self, entry):
        from . import models
        cn = entry["class_name"]
        cfg = entry.get("config")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
            self.fail(f"model {cn!r} has no layer list")
        name = cfg.get("name")
        if cn == "Sequential":
            layers = [self.layer(e) for e in cfg["layers"]]
            shape = cfg.get("build_input_shape") or (entry.get("build_config") or {}).get("input_shape")
            if (layers and not getattr(layers[0], "_is_input_layer", False)
                    and layers[0]._input_shape_arg is None and isinstance(shape, list) and len(shape) > 1):
                from .layers.base import InputLayer
                layers.insert(0, InputLayer(batch_shape=shape))
            try:
                m = models.Sequential(layers, name=name)
            except (TypeError, ValueError) as e:
                self.fail(f"model {name!r}: {e}")
        else:
            m = self.functional(cfg)
        if cfg.get("trainable") is False:
            m.trainable = False
        return m

    def ref(self, r, what):
        if self.keras2 and isinstance(r, list) and len(r) == 4:
            if r[3] not in ({}, None):
                self.fail(f"{what}: call arguments {r[3]!r} are not supported")
            r = r[:3]
        if isinstance(r, dict) and r.get("class_name") == "__keras_tensor__":
            r = (r.get("config") or {}).get("keras_history")
        if not (isinstance(r, list) and len(r) == 3 and isinstance(r[0], str)
                and all(isinstance(i, int) and not isinstance(i, bool) for i in r[1:])):
            self.fail(f"{what}: bad tensor reference {str(r)[:200]}")
        return list(r)

    def call(self, node, what):
        """One inbound node -> nncore's {"args": [refs], "as_list": bool}."""
        if isinstance(node, dict):  # Keras 3
            args, kwargs = node.get("args"), node.get("kwargs") or {}
            extra = {k: v for k, v in kwargs.items() if v not in (None, False)}
            if extra:
                self.fail(f"{what}: call arguments {sorted(extra)} are not supported")
            if not isinstance(args, list) or len(args) != 1:
                self.fail(f"{what}: a call with {len(args) if isinstance(args, list) else 'no'} positional "
                          f"arguments is not supported")
            a = args[0]
            if isinstance(a, list):
                return {"args": [self.ref(t, what) for t in a], "as_list": True}
            return {"args": [self.ref(a, what)], "as_list": False}
        if isinstance(node, list) and node:  # Keras 2: [[name, node, tensor, kwargs], ...]
            refs = [self.ref(t, what) for t in node]
            return {"args": refs, "as_list": len(refs) > 1}
        self.fail(f"{what}: malformed inbound node {str(node)[:200]}")

    def structure(self, s, what):
        """input_layers/output_layers: one reference, a list of them, or a dict of them."""
        if isinstance(s, dict):
            keys = list(s)
            return [self.ref(s[k], what) for k in keys], keys, "dict"
        if isinstance(s, list) and len(s) == 3 and isinstance(s[0], str):
            return [self.ref(s, what)], None, "single"
        if isinstance(s, list) and s:
            return [self.ref(r, what) for r in s], None, "list"
        self.fail(f"{what} are missing or malformed")

    def functional(self, cfg):
        from . import models
        from .graph import functional_from_config
        entries = []
        for e in cfg["layers"]:
            if not isinstance(e, dict):
                self.fail("functional model: a layer entry is not an object")
            self.layer(e)
            name = e.get("name") or (e.get("config") or {}).get("name")
            calls = e.get("inbound_nodes") or []
            if not isinstance(calls, list):
                self.fail(f"layer {name!r}: inbound_nodes must be a list")
            entries.append({"name": name, "_layer": e["_nncore"],
                            "inbound_nodes": [self.call(c, f"layer {name!r}") for c in calls]})
        ins, ik, ikind = self.structure(cfg.get("input_layers"), "input_layers")
        outs, ok, okind = self.structure(cfg.get("output_layers"), "output_layers")
        ncfg = {"name": cfg.get("name"), "layers": entries, "input_layers": ins, "output_layers": outs,
                "input_keys": ik, "output_keys": ok, "input_kind": ikind, "output_kind": okind}
        try:
            inputs, outputs, name = functional_from_config(ncfg, make_layer=lambda e: e["_layer"])
            return models.Model(inputs, outputs, name=name)
        except (TypeError, ValueError) as e:
            self.fail(f"functional model {cfg.get('name')!r}: {e}")


# ---- where each layer's weights live -------------------------------------------------------------
def var_groups(keras_class, layer):
    """[(subpath, sublayer)] for one layer: where its weights sit under its .keras object path,
    in nncore's (= Keras's) weight order."""
    if keras_class in _RNN:
        return [("cell/vars", layer)]
    if keras_class == "Bidirectional":
        return [("forward_layer/cell/vars", layer.forward_layer), ("backward_layer/cell/vars", layer.backward_layer)]
    if keras_class == "TimeDistributed":
        return [("layer/vars", layer.layer)]
    return [("vars", layer)]


def keras_paths(entries, prefix="layers"):
    """[(path, keras class, nncore layer)] for every weighted layer under a container, with
    Keras's names: snake-cased class names, numbered _1, _2, ... in layer order."""
    used, out = {}, []
    for keras_class, layer, sub_entries in entries:
        base = snake("Functional" if keras_class == "Model" else keras_class)
        name = base if base not in used else f"{base}_{used[base] + 1}"
        used[base] = used.get(base, -1) + 1
        path = f"{prefix}/{name}"
        if sub_entries is not None:
            out += keras_paths(sub_entries, f"{path}/layers")
        else:
            out.append((path, keras_class, layer))
    return out


def _entries_from_config(cfg):
    """(keras class, nncore layer, sub-entries or None) per layer of a model config read."""
    out = []
    for e in cfg["layers"]:
        cn = e["class_name"]
        sub = _entries_from_config(e["config"]) if cn in _MODELS else None
        out.append((cn, e["_nncore"], sub))
    return out


def _read_array(ds, shape, where, out=None):
    """Dataset `ds`, checked to have `shape` and a numeric dtype before it is read, as float32:
    into `out` (a C-contiguous float32 view, e.g. of the weight arena) when given."""
    h5py = _h5py()
    if not isinstance(ds, h5py.Dataset):
        raise ValueError(f"{where} is not a dataset")
    if tuple(ds.shape) != tuple(shape):
        raise ValueError(f"{where} has shape {tuple(ds.shape)}, the model's config implies {tuple(shape)}")
    if ds.dtype.kind not in "fiu" or ds.dtype.itemsize not in (2, 4, 8):  # ints: Normalization's count
        raise ValueError(f"{where} has dtype {ds.dtype}; expected numeric weights")
    if out is None:
        out = np.empty(shape, np.float32)
    if out.size:
        ds.read_direct(out)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{where} holds NaN or infinity")
    return out


def _loaded(layer):
    """After weights were read straight into a layer's arena views: the checks set_weights makes
    on values, and the packed copies refreshed."""
    for (name, *_), w in zip(layer._specs, layer._weights):
        if name in layer._nonnegative_weights and (w < 0).any():
            raise ValueError(f"layer {layer.name!r} weight {name!r} must be >= 0 (a variance), got {w.min():g}")
    layer._params_changed()


def _place_keras3(model_entry, f, where):
    """Weights from a .keras archive's model.weights.h5 into the built model."""
    root = "layers"
    if "layers" not in f and "_layer_checkpoint_dependencies" in f:
        root = "_layer_checkpoint_dependencies"  # .keras files of tf.keras 2.13-2.15
    entries = _entries_from_config(model_entry["config"])
    seen = set()
    for path, cn, layer in keras_paths(entries, root):
        for sub, sublayer in var_groups(cn, layer):
            specs = sublayer._specs
            gpath = f"{path}/{sub}"
            g = f.get(gpath) if gpath in f else None
            keys = sorted(g.keys(), key=lambda k: int(k) if k.isdigit() else -1) if g is not None else []
            if keys != [str(i) for i in range(len(specs))]:
                raise ValueError(f"{where}: layer {layer.name!r} ({cn}) has {len(specs)} weights, the file holds "
                                 f"{len(keys)} at {gpath!r}")
            for i, (spec, view) in enumerate(zip(specs, sublayer._weights)):
                _read_array(g[str(i)], spec[1], f"{where}: {gpath}/{i} (layer {layer.name!r} {spec[0]})", view)
            seen.add(gpath)
        _loaded(layer)
    # nothing in the file may be left over: weights for a layer the config lacks mean a mismatch
    extra = []

    def visit(name):
        parent = name.rsplit("/", 1)[0]
        if parent.endswith("/vars") and f"{root}/{parent}" not in seen:
            extra.append(f"{root}/{name}")
    if root in f:
        f[root].visit(visit)
    if extra:
        raise ValueError(f"{where}: the weights file holds {extra[0]!r}, which no layer of the config has")


def _place_h5(model, entry, g, where):
    """Weights from a legacy .h5 file's model_weights group (by layer name, in weight_names order)."""
    for e in entry["config"]["layers"]:
        layer = e["_nncore"]
        n = len(layer.get_weights()) if e["class_name"] in _MODELS else len(layer._specs)
        lname = layer.name
        if n == 0:
            continue
        if lname not in g:
            raise ValueError(f"{where}: the file has no weights for layer {lname!r}")
        lg = g[lname]
        names = [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in lg.attrs.get("weight_names", [])]
        if len(names) != n:
            raise ValueError(f"{where}: layer {lname!r} has {n} weights, the file lists {len(names)}")
        shapes = [w.shape for w in layer.get_weights()]
        arrays = []
        for wn, shape in zip(names, shapes):
            if wn not in lg:
                raise ValueError(f"{where}: weight {wn!r} of layer {lname!r} is missing")
            arrays.append(_read_array(lg[wn], shape, f"{where}: weight {wn!r}"))
        layer.set_weights(arrays)


def _read_zip(path, where):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{where} is not a readable .keras archive: {e}") from None
    with zf:
        infos = {i.filename: i for i in zf.infolist()}
        for need in ("config.json", "model.weights.h5"):
            if need not in infos:
                raise ValueError(f"{where} is not a Keras 3 archive (no {need})")

        def read(name, limit):
            info = infos[name]
            if info.file_size > limit:
                raise ValueError(f"{where}: entry {name} declares {info.file_size} bytes, more than the "
                                 f"{limit} nncore reads")
            try:
                with zf.open(info) as fh:
                    data = fh.read(limit + 1)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
                raise ValueError(f"{where}: entry {name} is corrupt: {e}") from None
            if len(data) != info.file_size:
                raise ValueError(f"{where}: entry {name} is not the size its header declares")
            return data
        config = _json(read("config.json", _MAX_JSON), f"{where} config.json")
        meta = _json(read("metadata.json", _MAX_JSON), f"{where} metadata.json") if "metadata.json" in infos else {}
        weights = read("model.weights.h5", _MAX_WEIGHTS)
    return config, meta, weights


def _json(raw, where):
    try:
        v = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{where} is not valid JSON: {e}") from None
    if not isinstance(v, dict):
        raise ValueError(f"{where} must hold a JSON object")
    return v


def _major(version):
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 3


def load_keras(path, compile=True):
    """A model from a Keras 3 `.keras` archive (see the module docstring)."""
    h5py = _h5py()
    where = repr(os.fspath(path))
    config, meta, weights = _read_zip(path, where)
    reader = _Reader(where, _major(meta.get("keras_version", "3")))
    try:
        with h5py.File(io.BytesIO(weights), "r") as f:
            # weights take >= 2 bytes a number (float16 and up): the file's size bounds what
            # the config may allocate before anything is allocated
            model = _build(reader, config, len(weights) // 2)
            _place_keras3(config, f, where)
            if compile and config.get("compile_config"):
                _compile(reader, model, config["compile_config"])
                if "optimizer/vars" in f:
                    _load_optimizer_vars(model, _entries_from_config(config["config"]), f["optimizer/vars"], where)
    except OSError as e:
        raise ValueError(f"{where}: model.weights.h5 is not a readable HDF5 file: {e}") from None
    return model


def load_h5(path, compile=True):
    """A model from a legacy Keras 2 / tf.keras / Keras 3 `.h5` file."""
    h5py = _h5py()
    where = repr(os.fspath(path))
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{where} is not a readable HDF5 file: {e}") from None
    try:
        with f:
            mc = f.attrs.get("model_config")
            if mc is None or "model_weights" not in f:
                raise ValueError(f"{where} is an HDF5 file without a Keras model (no model_config or "
                                 f"model_weights; a weights-only file loads with model.load_weights)")
            version = f.attrs.get("keras_version", b"2")
            version = version.decode() if isinstance(version, bytes) else str(version)
            reader = _Reader(where, _major(version))
            config = _json(mc, f"{where} model_config")
            model = _build(reader, config, os.path.getsize(path) // 2)
            _place_h5(model, config, f["model_weights"], where)
            tc = f.attrs.get("training_config")
            tc = _json(tc, f"{where} training_config") if tc is not None else None
    except OSError as e:
        raise ValueError(f"{where} is truncated or corrupt: {e}") from None
    if compile and tc:
        _compile(reader, model, {"optimizer": tc.get("optimizer_config"), "loss": tc.get("loss"),
                                 "metrics": tc.get("metrics"), "loss_weights": tc.get("loss_weights")})
    return model


def _build(reader, config, budget):
    from .layers import base
    if config.get("class_name") not in _MODELS:
        reader.fail(f"holds a {config.get('class_name')!r}, not a Sequential or functional model")
    base._loading.budget = [budget]
    try:
        model = reader.layer(config)
        model._require_built()
    except (KeyError, IndexError, AttributeError, TypeError, RecursionError) as e:
        reader.fail(f"the model config is malformed ({type(e).__name__}: {e})")
    finally:
        base._loading.budget = None
    return model


# ---- compile configuration --------------------------------------------------------------------
def _compile(reader, model, cc):
    from . import losses, metrics, optimizers, schedules
    opt = cc.get("optimizer")
    if isinstance(opt, str):
        opt = {"class_name": opt, "config": {}}
    if not isinstance(opt, dict):
        reader.fail(f"compile config has no optimizer (load with compile=False)")
    cn = str(opt.get("class_name", "")).replace("Custom>", "")
    opt = dict(opt, class_name=cn)
    reader.check_object(opt, "optimizer")
    classes = {c.__name__: c for c in (optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.RMSprop)}
    if cn not in classes:
        reader.fail(f"optimizer {cn!r} is not one nncore has ({', '.join(classes)}); load with compile=False")
    ocfg = {k: reader.plain(v, "optimizer") for k, v in (opt.get("config") or {}).items()}
    ocfg.pop("name", None)
    for k, inert in (("use_ema", False), ("ema_momentum", _ANY), ("ema_overwrite_frequency", None),
                     ("loss_scale_factor", None), ("gradient_accumulation_steps", None),
                     ("global_clipnorm", None), ("jit_compile", _ANY), ("is_legacy_optimizer", _ANY),
                     ("decay", 0.0)):
        if k in ocfg and (inert is _ANY or ocfg[k] == inert):
            ocfg.pop(k)
    lr = ocfg.get("learning_rate")
    if isinstance(lr, dict):
        try:
            ocfg["learning_rate"] = schedules.deserialize(lr)
        except (TypeError, ValueError, KeyError) as e:
            reader.fail(f"optimizer learning rate schedule {lr.get('class_name')!r}: {e}")
    try:
        optimizer = classes[cn](**reader.fit(classes[cn], ocfg, f"optimizer {cn}"))
    except (TypeError, ValueError) as e:
        reader.fail(f"optimizer {cn}: {e}")

    def loss_of(v):
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, dict) and "class_name" in v:
            reader.check_object(v, "loss")
            cfg = dict(reader.plain(v, "loss")["config"])
            for k, inert in (("name", _ANY), ("dtype", None), ("axis", -1), ("ignore_class", None),
                             ("reduction", "sum_over_batch_size")):
                if k in cfg and (inert is _ANY or cfg[k] == inert or k == "reduction" and cfg[k] == "auto"):
                    cfg.pop(k)
            cls = losses._CLASSES.get(v["class_name"])
            if cls is None:
                reader.fail(f"loss {v['class_name']!r} is not one nncore has; load with compile=False")
            return cls(**reader.fit(cls, cfg, f"loss {v['class_name']}"))
        if isinstance(v, list):
            return [loss_of(x) for x in v]
        if isinstance(v, dict):
            return {k: loss_of(x) for k, x in v.items()}
        reader.fail(f"malformed loss {str(v)[:100]}")

    def metric_of(v):
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, list):
            return [metric_of(x) for x in v]
        if isinstance(v, dict) and "class_name" in v:
            reader.check_object(v, "metric")
            cfg = dict(reader.plain(v, "metric")["config"])
            if v["class_name"] == "MeanMetricWrapper":  # Keras 2: a metric function by name
                return cfg.get("fn") or cfg.get("name")
            cls = metrics._CLASSES.get(v["class_name"])
            if cls is None:
                reader.fail(f"metric {v['class_name']!r} is not one nncore has; load with compile=False")
            for k, inert in (("dtype", _ANY),):
                cfg.pop(k, None)
            try:
                return cls(**reader.fit(cls, cfg, f"metric {v['class_name']}"))
            except (TypeError, ValueError) as e:
                reader.fail(f"metric {v['class_name']}: {e}")
        if isinstance(v, dict):
            return {k: metric_of(x) for k, x in v.items()}
        reader.fail(f"malformed metric {str(v)[:100]}")

    loss = loss_of(cc.get("loss"))
    mets = metric_of(cc.get("metrics"))
    n_out = len(model._output_names_for_compile())
    if isinstance(mets, list) and len(mets) == 1 and isinstance(mets[0], list) and n_out == 1:
        mets = mets[0]  # Keras 2: one list per output
    if isinstance(loss, list) and len(loss) == 1 and n_out == 1:
        loss = loss[0]
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=mets, loss_weights=cc.get("loss_weights"))
    except (TypeError, ValueError) as e:
        reader.fail(f"the compile config does not apply ({e}); load with compile=False")


# ---- optimizer state ------------------------------------------------------------------------------
# Keras 3 keeps, after `iteration` and (for a constant rate) `learning_rate`, one slot variable per
# trainable weight and kind: Adam interleaves momentum and velocity per weight (then velocity_hat
# with amsgrad); SGD has momentums; RMSprop velocities, then momentums, then average_gradients.
# nncore keeps each kind as one flat array over the weight arena (slot index below).
def _slot_layout(opt):
    """[[slot index, ...] per group]: a group is repeated for each trainable weight in turn."""
    from . import optimizers
    if isinstance(opt, optimizers.Adam):
        return [[0, 1]] + ([[2]] if opt.amsgrad else [])
    if isinstance(opt, optimizers.SGD):
        return [[0]] if opt.momentum > 0 else []
    if isinstance(opt, optimizers.RMSprop):
        return [[0]] + ([[1]] if opt.momentum > 0 else []) + ([[2]] if opt.centered else [])
    return None


def _trainable_views(model, entries):
    """(offset, shape) in the weight arena of each trainable weight, in Keras's order."""
    base = model._params.ctypes.data
    out = []
    for _, _, layer in keras_paths(entries):
        for w in layer.trainable_weights:
            out.append(((w.ctypes.data - base) // 4, w.shape))
    return out


def _optimizer_vars(model, entries):
    """Keras's optimizer variables, in order, from nncore's optimizer state."""
    opt = model.optimizer
    layout = _slot_layout(opt)
    opt.build(model._params.size)
    out = [np.asarray(opt.iterations, dtype=np.int64)]
    if not callable(opt._learning_rate):
        out.append(np.asarray(opt._learning_rate, dtype=np.float32))
    views = _trainable_views(model, entries)
    for group in layout:
        for off, shape in views:
            n = int(np.prod(shape))
            out += [opt.slots[k][off:off + n].reshape(shape) for k in group]
    return out


def _load_optimizer_vars(model, entries, g, where):
    """nncore's optimizer state from a .keras file's optimizer/vars (a warning, not an error, when
    the layout differs: the model and its compile settings load all the same, as in Keras)."""
    import warnings
    opt = model.optimizer
    layout = _slot_layout(opt)
    views = _trainable_views(model, entries)
    head = 1 + (not callable(opt._learning_rate))
    n = head + sum(len(grp) for grp in layout) * len(views)
    keys = sorted(g.keys(), key=lambda k: int(k) if k.isdigit() else -1)
    if keys != [str(i) for i in range(n)]:
        warnings.warn(f"{where}: the optimizer state in the file ({len(keys)} variables) does not match "
                      f"{type(opt).__name__} on this model ({n}); the optimizer starts fresh", stacklevel=4)
        return
    it = g["0"]
    if it.shape != () or it.dtype.kind not in "iu" or int(it[()]) < 0:
        raise ValueError(f"{where}: optimizer/vars/0 is not an iteration count")
    # straight into the slots compile allocated (the engine holds these arrays); a bad variable
    # fails the whole load, so a half-filled optimizer is never returned
    opt.build(model._params.size)
    i = head
    for group in layout:
        for off, shape in views:
            for k in group:
                n = int(np.prod(shape))
                _read_array(g[str(i)], shape, f"{where}: optimizer/vars/{i}", opt.slots[k][off:off + n].reshape(shape))
                i += 1
    opt.iterations = int(it[()])
    model._engine.step = opt.iterations


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
_DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


def _kobj(module, class_name, config):
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _shape(s):
    return [None] + [int(d) for d in s]


class _Writer:
    def layer_config(self, layer):
        """Keras 3's config for one nncore layer."""
        from . import initializers, regularizers
        cfg = layer.get_config()
        cfg.pop("batch_input_shape", None)
        cfg["dtype"] = _DTYPE
        for k in list(cfg):
            v = cfg[k]
            if k.endswith("_initializer") and v is not None:
                # Embedding's "uniform" is Keras's RandomUniform(-0.05, 0.05)
                init = initializers.get(v) if v != "uniform" else initializers.RandomUniform(-0.05, 0.05)
                cfg[k] = _kobj("keras.initializers", type(init).__name__, init.get_config())
            elif k.endswith("_regularizer") and v is not None:
                r = regularizers.serialize(regularizers.get(v)) if not isinstance(v, dict) else v
                cfg[k] = _kobj("keras.regularizers", r["class_name"], r["config"])
        cn = type(layer).__name__
        if cn in ("SpatialDropout1D", "SpatialDropout2D"):
            cfg.pop("trainable", None)  # Keras's constructors of these take no `trainable`
        if cn == "Bidirectional":
            cfg["layer"] = self.entry(layer.forward_layer)
            cfg["backward_layer"] = self.entry(layer.backward_layer)
        elif cn == "TimeDistributed":
            cfg["layer"] = self.entry(layer.layer)
        return cfg

    def entry(self, layer):
        from . import models
        if isinstance(layer, models.Model):
            return self.model_entry(layer)
        e = _kobj("keras.layers", type(layer).__name__, self.layer_config(layer))
        if layer.input_shape is not None and not getattr(layer, "_is_input_layer", False):
            ins = layer.input_shape
            e["build_config"] = {"input_shape": [_shape(s) for s in ins] if layer._multi_input else _shape(ins)}
        return e

    def input_entry(self, shape, name):
        return _kobj("keras.layers", "InputLayer", {"batch_shape": _shape(shape), "dtype": "float32",
                                                     "sparse": False, "ragged": False, "name": name,
                                                     "optional": False})

    def model_entry(self, model):
        from . import models
        if isinstance(model, models.Sequential):
            layers = [self.input_entry(model._input_shape, f"{model.name}_input")]
            layers += [self.entry(l) for l in model.layers]
            cfg = {"name": model.name, "trainable": model.trainable, "dtype": _DTYPE, "layers": layers,
                   "build_input_shape": _shape(model._input_shape)}
            e = _kobj("keras", "Sequential", cfg)
            e["build_config"] = {"input_shape": _shape(model._input_shape)}
            return e
        g = model._graph
        where, layers = {}, []
        for node in g.nodes:
            for i, t in enumerate(node.outputs):
                where[id(t)] = (node.layer.name, g.node_index(node), i)

        def tensor(t):
            return {"class_name": "__keras_tensor__", "config": {"shape": list(t.shape), "dtype": "float32",
                                                                  "keras_history": list(where[id(t)])}}
        for layer in g.layers:
            if getattr(layer, "_is_input_layer", False):
                e = self.input_entry(layer.shape, layer.name)
                e["name"], e["inbound_nodes"] = layer.name, []
            else:
                e = self.entry(layer)
                e["name"] = layer.name
                e["inbound_nodes"] = [{"args": [[tensor(t) for t in n.inputs] if n.as_list else tensor(n.inputs[0])],
                                       "kwargs": {}} for n in g.nodes if n.layer is layer]
            layers.append(e)

        def struct(ts, keys, kind):
            refs = [list(where[id(t)]) for t in ts]
            if kind == "dict" or keys:
                return dict(zip(keys, refs))
            return refs[0] if kind == "single" else refs
        cfg = {"name": model.name, "trainable": model.trainable, "layers": layers,
               "input_layers": struct(g.inputs, g.input_keys, g.input_kind),
               "output_layers": struct(g.outputs, g.output_keys, g.output_kind)}
        return _kobj("keras.src.models.functional", "Functional", cfg) | {"registered_name": "Functional"}

    def model_entries(self, model):
        """(keras class, layer, sub-entries) per layer: the container walk that names weight paths."""
        from . import models
        out = []
        layers = model.layers if isinstance(model, models.Sequential) else model._graph.layers
        for l in layers:
            if isinstance(l, models.Model):
                out.append(("Sequential" if isinstance(l, models.Sequential) else "Functional", l,
                            self.model_entries(l)))
            else:
                out.append((type(l).__name__, l, None))
        return out


def _compile_config(model):
    from . import metrics as metrics_mod
    opt = model.optimizer
    from .saving import _optimizer_config
    ocfg = dict(_optimizer_config(opt), name=type(opt).__name__.lower())
    lr = ocfg.get("learning_rate")
    if isinstance(lr, dict):
        ocfg["learning_rate"] = _kobj("keras.optimizers.schedules", lr["class_name"], lr["config"])
    names = model._output_names_for_compile()
    losses = [None if l is None else _kobj("keras.losses", type(l).__name__,
                                          dict(l.get_config(), name=snake(type(l).__name__),
                                               reduction="sum_over_batch_size"))
              for l in model._losses]
    mets = [[_kobj("keras.metrics", type(m).__name__, dict(m.get_config(), name=m.name))
             if not isinstance(m, str) else m for m in map(metrics_mod.get, ms)] for ms in model._metric_lists]
    single = len(names) == 1
    return {"optimizer": _kobj("keras.optimizers", type(opt).__name__, ocfg),
            "loss": losses[0] if single else dict(zip(names, losses)),
            "loss_weights": None if all(w == 1.0 for w in model._loss_weights) else
            (model._loss_weights[0] if single else dict(zip(names, model._loss_weights))),
            "metrics": (mets[0] if single else dict(zip(names, mets))) if any(mets) else None,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def save_keras(model, path, include_optimizer=True):
    """Write `model` as a Keras 3 `.keras` archive that keras.saving.load_model opens."""
    from . import __version__
    h5py = _h5py()
    model._require_built()
    w = _Writer()
    entry = w.model_entry(model)
    if model._compiled:
        entry["compile_config"] = _compile_config(model)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for path_, cn, layer in keras_paths(w.model_entries(model)):
            for sub, sublayer in var_groups(cn, layer):
                g = f.create_group(f"{path_}/{sub}")
                for i, a in enumerate(sublayer._weights):
                    if not np.all(np.isfinite(a)):
                        raise ValueError(f"cannot save {model.name!r}: layer {layer.name!r} holds NaN or "
                                         f"infinity (training diverged)")
                    g.create_dataset(str(i), data=np.asarray(a, dtype=np.float32))
        f.create_group("vars")
        if model._compiled and include_optimizer:
            g = f.create_group("optimizer/vars")
            for i, a in enumerate(_optimizer_vars(model, w.model_entries(model))):
                g.create_dataset(str(i), data=a)
    meta = {"keras_version": _KERAS_SCHEMA, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "nncore_version": __version__}
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("config.json", json.dumps(entry))
        zf.writestr("model.weights.h5", buf.getvalue())
    os.replace(tmp, path)
