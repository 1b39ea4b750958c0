"""Model (Keras's functional API) and Sequential (its one-path case) over one C engine.

Building a model puts the weights of its layers in one parameter arena (all weights are views
into it; models that share layers share the arena), makes the C nodes, and hands them to one C
graph (csrc/engine/graph.c); fit then passes whole runs of batches to C (nnc_graph_train) and
Python only shuffles indices, evaluates metrics on each chunk's predictions (vectorised) and
reports progress. The symbolic graph (tensors, calls, order, config) lives in graph.py.
"""
import contextlib
import itertools
import math
import os
import threading
import warnings
import weakref

import numpy as np

from . import _kernels as K
from . import callbacks as callbacks_mod
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from . import utils
from . import graph as graph_mod
from .graph import KerasTensor
from .layers.base import InputLayer, Layer

_ALIGN = 16  # floats: each layer's block starts on a 64-byte boundary


def _aligned_empty(n):
    buf = np.zeros(n + _ALIGN, dtype=np.float32)
    off = (-buf.ctypes.data % 64) // 4
    return buf[off:off + n]


def _as_float32(x, what):
    """C-contiguous float32 copy/view of x with a clear error for non-numbers."""
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{what} could not be converted to an array: {e}") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
        raise TypeError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _check_positive_int(v, name, allow_none=False):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {v!r}")


def _check_fit_args(batch_size, epochs, verbose, validation_split, shuffle, initial_epoch,
                    steps_per_epoch, validation_steps, validation_batch_size, validation_freq):
    """Every fit argument that is not data, checked before anything runs. Returns the verbosity
    and a predicate telling after which epochs (1-based) validation runs."""
    _check_positive_int(batch_size, "batch_size", allow_none=True)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
        raise ValueError(f"initial_epoch must be a non-negative int, got {initial_epoch!r}")
    if verbose not in ("auto", 0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    _check_positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
    _check_positive_int(validation_steps, "validation_steps", allow_none=True)
    _check_positive_int(validation_batch_size, "validation_batch_size", allow_none=True)
    if isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool):
        if validation_freq < 1:
            raise ValueError(f"validation_freq must be a positive int or a collection of epochs, got {validation_freq!r}")
        freq = int(validation_freq)
        val_epochs = lambda e: e % freq == 0  # noqa: E731
    elif isinstance(validation_freq, (list, tuple, set, range)) and all(
            isinstance(e, (int, np.integer)) and not isinstance(e, bool) and e >= 1 for e in validation_freq):
        chosen = {int(e) for e in validation_freq}
        val_epochs = chosen.__contains__
    else:
        raise ValueError(f"validation_freq must be a positive int or a collection of epochs (>= 1), got {validation_freq!r}")
    return (1 if verbose == "auto" else int(verbose)), val_epochs


_keys = itertools.count(1)  # program value keys (negative: never an id())


def _take(a, sel, n):
    """Samples `sel` of a per-sample array (sparse labels of several steps come flat)."""
    if a is None:
        return None
    if a.shape[0] != n:
        return np.ascontiguousarray(a.reshape(n, -1)[sel].reshape(-1))
    return np.ascontiguousarray(a[sel])


def _size(shape):
    return int(np.prod(shape, dtype=np.int64))


class _Arena:
    """One parameter block and one gradient block for the weights of some layers (each layer's
    part starts on a 64-byte boundary). Every model whose layers all live here runs on it, so a
    sub-model or a nested model trains the very same weights."""

    def __init__(self, layers):
        offsets, total = [], 0
        for layer in layers:
            offsets.append(total)
            total += -(-sum(_size(s[1]) for s in layer._specs) // _ALIGN) * _ALIGN
        self.params, self.grads = _aligned_empty(total), _aligned_empty(total)
        self.layers = list(layers)
        self.offsets = {id(l): off for l, off in zip(layers, offsets)}
        self.lock = threading.Lock()
        self.models = weakref.WeakSet()
        # bumped by every training call: the other models on this arena refresh their packed
        # weight copies (nnc_graph_params_changed) before they next run
        self.version = 0
        for layer, off in zip(layers, offsets):
            pos, views = off, []
            for (name, shape, *_), w in zip(layer._specs, layer._weights):
                v = self.params[pos:pos + _size(shape)].reshape(shape)
                v[...] = w
                views.append(v)
                pos += _size(shape)
            if isinstance(getattr(type(layer), "_weights", None), property):
                layer._weights = views  # Bidirectional hands them to its two directions
            else:
                layer._weights[:] = views  # in place: wrappers (TimeDistributed) share the list
            old = layer._arena
            layer._arena = self
            inner = getattr(layer, "layer", None)
            if isinstance(inner, Layer):
                inner._arena = self
            if old is not None and old is not self:
                old.invalidate()

    def holds(self, layer):
        return id(layer) in self.offsets and any(l is layer for l in self.layers)

    def block(self, layer):
        """(params, grads) views of a layer's weights."""
        off = self.offsets[id(layer)]
        n = sum(_size(s[1]) for s in layer._specs)
        return self.params[off:off + n], self.grads[off:off + n]

    def invalidate(self):
        for m in list(self.models):
            m._invalidate()

    def params_changed(self):
        self.version += 1
        for m in list(self.models):
            m._params_changed()


class Model:
    """Keras's functional model: `nn.Model(inputs, outputs)` over tensors from nn.Input and
    layer calls (one or several inputs and outputs, as a tensor, a list or a dict)."""

    _is_input_layer = False
    _multi_input = True

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unexpected keyword argument(s) {sorted(kwargs)}")
        self._init_common(name or "functional", trainable)
        if type(self) is Model or inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model needs inputs and outputs: nn.Model(inputs=x_in, outputs=y)")
            self._graph = graph_mod.Graph(inputs, outputs)
            self._read_batch_size()

    def _init_common(self, name, trainable):
        self.name = name
        self.trainable = bool(trainable)
        self._graph = None
        self._engine = None
        self._arena = None
        self._compiled = False
        self._nodes = []
        self.history = None
        self.stop_training = False
        self._batch_size = None
        self._fast_in, self._fast_out = -1, 0
        self._seen = -1

    # ---- structure ----------------------------------------------------------------------
    @property
    def layers(self):
        return [l for l in self._graph.layers]

    @property
    def inputs(self):
        return list(self._graph.inputs)

    @property
    def outputs(self):
        return list(self._graph.outputs)

    @property
    def input(self):
        g = self._graph
        if g.input_kind == "dict":
            return dict(zip(g.input_keys, g.inputs))
        return g.inputs[0] if g.input_kind == "single" else list(g.inputs)

    @property
    def output(self):
        g = self._graph
        if g.output_kind == "dict":
            return dict(zip(g.output_keys, g.outputs))
        return g.outputs[0] if g.output_kind == "single" else list(g.outputs)

    @property
    def input_names(self):
        return self._graph.input_names

    @property
    def output_names(self):
        return self._graph.output_names

    @property
    def input_shape(self):
        s = [(None,) + t._shape for t in self._graph.inputs]
        return s[0] if len(s) == 1 else s

    @property
    def output_shape(self):
        s = [(None,) + t._shape for t in self._graph.outputs]
        return s[0] if len(s) == 1 else s

    @property
    def built(self):
        return self._engine is not None

    def _in_shapes(self):
        return [t._shape for t in self._graph.inputs]

    def _out_shapes(self):
        return [t._shape for t in self._graph.outputs]

    def _read_batch_size(self):
        """A fixed batch size given to an Input (stateful recurrent layers need one)."""
        for t in self._graph.inputs:
            b = t._node.layer.batch_size
            if b is not None:
                self._batch_size = b

    def _steps(self):
        """The program: (input keys, [(layer, [input keys], output key, input shape)], output
        keys), nested models expanded in place (their layers run as the parent's nodes)."""
        ins = [id(t) for t in self._graph.inputs]
        steps, keymap = [], {k: k for k in ins}
        self._expand(self._graph, keymap, steps)
        return ins, steps, [keymap[id(t)] for t in self._graph.outputs]

    @staticmethod
    def _expand(graph, keymap, steps):
        for node in graph.nodes:
            layer = node.layer
            if getattr(layer, "_is_input_layer", False):
                continue
            in_keys = [keymap[id(t)] for t in node.inputs]
            if isinstance(layer, Sequential):
                layer._require_built()
                k = in_keys[0]
                shape = node.input_shapes[0]
                for sub in layer.layers:
                    key = -next(_keys)
                    steps.append((sub, [k], key, shape, None))
                    k, shape = key, sub.compute_output_shape(shape)
                keymap[id(node.outputs[0])] = k
            elif isinstance(layer, Model):
                inner = dict(zip((id(t) for t in layer._graph.inputs), in_keys))
                Model._expand(layer._graph, inner, steps)
                for t_outer, t_inner in zip(node.outputs, layer._graph.outputs):
                    keymap[id(t_outer)] = inner[id(t_inner)]
            else:  # a fresh key per expansion: a nested model called twice runs twice
                key = keymap[id(node.outputs[0])] = -next(_keys)
                shape = node.input_shapes if layer._multi_input else node.input_shapes[0]
                steps.append((layer, in_keys, key, shape, None))

    def _leaf_layers(self):
        """Every layer that runs in this model, in Keras's weight order (nested models in place)."""
        out, seen = [], set()
        for layer in self.layers:
            subs = layer._leaf_layers() if isinstance(layer, Model) else [layer]
            for s in subs:
                if id(s) not in seen:
                    seen.add(id(s))
                    out.append(s)
        return out

    def _frozen(self):
        """ids of the layers a trainable=False model (this or a nested one) freezes."""
        out = set()
        for layer in self.layers:
            if isinstance(layer, Model):
                out |= {id(l) for l in layer._leaf_layers()} if not layer.trainable else layer._frozen()
        return out

    def _require_built(self):
        if self._engine is None:
            self.build()

    def build(self, input_shape=None):
        self._make_engine()

    def _invalidate(self):
        self._engine = None
        self._fast_in, self._fast_out = -1, 0

    # ---- the engine ---------------------------------------------------------------------
    def _ensure_arena(self):
        leaves = [l for l in self._leaf_layers() if l._specs]
        arenas = {id(l._arena): l._arena for l in leaves if l._arena is not None}
        if len(arenas) == 1 and all(l._arena is not None and l._arena.holds(l) for l in leaves):
            arena = next(iter(arenas.values()))
        else:
            arena = _Arena(leaves)
        self._arena = arena
        arena.models.add(self)
        return arena

    def _make_engine(self):
        from .layers.core import Masking  # noqa: F401  (mask wiring below)
        from . import activations
        ins, steps, outs = self._steps()
        in_shapes = self._in_shapes()
        arena = self._ensure_arena()
        g = K.Graph([_size(s) for s in in_shapes])
        # ops are collected first and handed to the graph at the end: the mask wiring needs
        # the nodes while Python still owns them; value ids follow the op order
        ops, folds = [], []
        value = {k: i for i, k in enumerate(ins)}
        shape_of = dict(zip(ins, in_shapes))
        consumers = {}
        for _, in_keys, _, _, _ in steps:
            for k in in_keys:
                consumers[k] = consumers.get(k, 0) + 1
        out_index = {k: i for i, k in enumerate(outs)}
        out_act = ["linear"] * len(outs)
        masks = {}
        called = set()
        self._extra_grads = []
        empty = np.zeros(0, np.float32)
        for layer, in_keys, out_key, in_shape, _ in steps:
            if layer._multi_input:
                kind, params = layer.graph_op(in_shape)
                if any(k in masks for k in in_keys):
                    maker = next(masks[k] for k in in_keys if k in masks)
                    warnings.warn(f"layer {layer.name!r} ({type(layer).__name__}) does not support masking: "
                                  f"the step mask made by {maker[1].name!r} stops there", UserWarning, stacklevel=3)
                ops.append(("merge", kind, [value[k] for k in in_keys], params))
                value[out_key] = len(ins) + len(ops) - 1
                shape_of[out_key] = tuple(layer.compute_output_shape(in_shape))
                continue
            if layer._specs:
                p, gr = arena.block(layer)
                if id(layer) in called:  # a shared layer's next call: own gradient block, folded in
                    extra = _aligned_empty(p.size)
                    folds.append((gr, extra))
                    self._extra_grads.append(extra)
                    gr = extra
            else:
                p, gr = empty, empty
            called.add(id(layer))
            split = (out_key in out_index and not consumers.get(out_key) and layer._splittable
                     and getattr(layer, "activation", None) in ("sigmoid", "softmax"))
            ns = layer.make_nodes(in_shape, p, gr, split_activation=True) if split else \
                layer.make_nodes(in_shape, p, gr)
            if split:
                out_act[out_index[out_key]] = layer.activation
            mask = self._wire_mask(layer, ns, masks.get(in_keys[0]))
            if getattr(layer, "stateful", False):
                if self._batch_size is None:
                    raise ValueError(
                        f"layer {layer.name!r} is stateful, which needs a fixed batch size: start "
                        f"the model with nn.Input(batch_shape=(batch, timesteps, features)) or "
                        f"give the first layer batch_input_shape=(batch, timesteps, features)")
                K.rnn_set_stateful(ns[0], self._batch_size)
                layer._state_ref = (self, len(ops))
            v = value[in_keys[0]]
            for nd in ns:
                ops.append(("node", nd, v))
                v = len(ins) + len(ops) - 1
            value[out_key] = v
            shape_of[out_key] = tuple(layer.compute_output_shape(in_shape))
            if mask is not None:
                masks[out_key] = mask
        for op in ops:
            if op[0] == "node":
                g.add_node(op[1], op[2])
            else:
                g.add_merge(op[1], op[2], op[3])
        for dst, src in folds:
            g.add_grad_fold(dst, src)
        for k in outs:
            if k in masks:
                raise ValueError(
                    f"the step mask made by {masks[k][1].name!r} reaches the model's output; a masked "
                    f"loss over timesteps is not supported: end with a recurrent layer that has "
                    f"return_sequences=False")
        vals = [value[k] for k in outs]
        if len(set(vals)) != len(vals):
            raise ValueError("two outputs of the model are the same tensor (a Flatten or Reshape of "
                             "another output has the same values); drop one of them")
        shapes = [shape_of[k] for k in outs]
        g.set_outputs(vals, [activations.get_id(a)[0] for a in out_act], [s[-1] for s in shapes])
        self._engine_out_shapes = shapes
        self._input_checks = [[l for l, in_keys, *_ in steps if k in in_keys and hasattr(l, "_check_input")]
                              for k in ins]
        self._engine = g
        self._seen = arena.version  # the new nodes packed the current weights
        # predict's fast path: one flat input without index checks, one flat output
        one = len(ins) == 1 and len(outs) == 1 and not self._input_checks[0] and len(shapes[0]) == 1
        self._fast_in = g.in_sizes[0] if one else -1
        self._has_stateful = bool(self._stateful())
        self._fast_out = g.out_sizes[0] if one else 0
        if self._compiled:
            self._compile_program()

    @staticmethod
    def _wire_mask(layer, nodes, mask):
        """Keras masking in the engine: Masking and Embedding(mask_zero=True) make a step mask;
        recurrent layers read it (their C node takes it from the maker's node on every forward)
        and pass it on when they return sequences; elementwise layers pass it on; any other
        layer drops it, with a warning, as in Keras. Returns the mask flowing after `layer`."""
        from .layers.core import Masking
        from .layers.recurrent import Bidirectional, _RNNBase
        if isinstance(layer, (_RNNBase, Bidirectional)):
            if mask is not None:
                K.rnn_set_mask_source(nodes[0], mask[0], bool(
                    layer.return_sequences if isinstance(layer, Bidirectional)
                    else layer.zero_output_for_mask))
            return mask if (mask is not None and layer.return_sequences) else None
        if isinstance(layer, Masking) or getattr(layer, "mask_zero", False):
            return (nodes[-1], layer)
        if mask is not None and not layer.supports_masking:
            warnings.warn(f"layer {layer.name!r} ({type(layer).__name__}) does not support "
                          f"masking: the step mask made by {mask[1].name!r} stops there",
                          UserWarning, stacklevel=4)
            return None
        return mask

    def _stateful(self):
        return [l for l in self._leaf_layers() if getattr(l, "stateful", False)]

    def reset_states(self):
        """Zero the kept states of every stateful recurrent layer (Keras)."""
        for layer in self._stateful():
            layer.reset_states()

    reset_state = reset_states

    def _batch_for(self, n, batch_size, what):
        """The batch size to run n samples with (ValueError before anything runs if a stateful
        layer cannot take them: Keras's rule, a fixed batch that divides the samples)."""
        if not self._stateful():
            return 32 if batch_size is None else batch_size
        B = self._batch_size
        if batch_size is not None and batch_size != B:
            raise ValueError(f"{what}: the model has stateful layers built for batches of {B}; "
                             f"got batch_size={batch_size}")
        if n % B:
            raise ValueError(f"{what}: the model has stateful layers built for batches of {B}, "
                             f"so the number of samples must be a multiple of {B}; got {n}")
        return B

    # ---- weights ------------------------------------------------------------------------
    @property
    def weights(self):
        return [w for l in self._leaf_layers() for w in l.weights]

    @property
    def trainable_weights(self):
        frozen = self._frozen() if self.trainable else {id(l) for l in self._leaf_layers()}
        return [w for l in self._leaf_layers() if id(l) not in frozen for w in l.trainable_weights]

    @property
    def non_trainable_weights(self):
        tw = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in tw]

    def count_params(self):
        self._require_built()
        return sum(l.count_params() for l in self._leaf_layers())

    def get_weights(self):
        self._require_built()
        return [w for l in self._leaf_layers() for w in l.get_weights()]

    def set_weights(self, weights):
        self._require_built()
        weights = list(weights)
        leaves = self._leaf_layers()
        expected = sum(len(l._weights) for l in leaves)
        if len(weights) != expected:
            raise ValueError(f"set_weights: the model has {expected} weight arrays, got {len(weights)}")
        pos = 0
        for layer in leaves:  # every layer checks its arrays before any is written
            n = len(layer._weights)
            layer.set_weights(weights[pos:pos + n])
            pos += n

    def _params_changed(self):
        if self._engine is not None:
            with self._lock:
                self._engine.params_changed()
                self._seen = self._arena.version

    @contextlib.contextmanager
    def _run(self, trains=False):
        """Holds the arena's lock around an engine call; first refreshes this model's packed
        weights if another model on the arena (a sub-model, a parent) trained them."""
        arena = self._arena
        with arena.lock:
            if self._seen != arena.version:
                self._engine.params_changed()
                self._seen = arena.version
            yield
            if trains:
                arena.version += 1
                self._seen = arena.version

    @property
    def _lock(self):
        return self._arena.lock if self._arena is not None else _NO_ARENA_LOCK

    @property
    def _params(self):
        self._require_built()
        return self._arena.params

    @property
    def _grads(self):
        self._require_built()
        return self._arena.grads

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for l in self.layers:
            if l.name == name:
                return l
        raise ValueError(f"no layer named {name!r}; the model has {[l.name for l in self.layers]}")

    # ---- compile ------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, jit_compile=None, **kwargs):
        if kwargs:
            raise TypeError(f"compile: unexpected keyword argument(s) {sorted(kwargs)}")
        names = self._output_names_for_compile()
        n_out = len(names)
        losses = self._per_output(loss, names, "loss", lambda v: v is None or isinstance(v, (str, dict, type)) or
                                  isinstance(v, losses_mod.Loss))
        losses = [None if l is None else losses_mod.get(l) for l in losses]
        if all(l is None for l in losses):
            losses_mod.get(None)  # the "a loss is required" error
        if loss_weights is None:
            lw = [1.0] * n_out
        else:
            lw = self._per_output(loss_weights, names, "loss_weights",
                                  lambda v: isinstance(v, (int, float, np.integer, np.floating)), fill=1.0,
                                  broadcast=False)
            for w in lw:
                if isinstance(w, bool) or not np.isfinite(float(w)) or float(w) < 0:
                    raise ValueError(f"loss_weights must be finite numbers >= 0, got {loss_weights!r}")
            lw = [float(w) for w in lw]
        if isinstance(metrics, dict):
            if n_out == 1 and not set(metrics) <= set(names):
                raise ValueError("metrics as a dict must be keyed by output names "
                                 f"({names}), got {sorted(metrics)}")
            specs = self._per_output(metrics, names, "metrics", lambda v: True, fill=None)
        elif isinstance(metrics, (list, tuple)) and n_out > 1 and metrics and \
                all(isinstance(m, (list, tuple)) or m is None for m in metrics):
            specs = self._per_output(list(metrics), names, "metrics", lambda v: True, fill=None, broadcast=False)
        else:
            specs = [metrics] * n_out
        specs = [list(s) if isinstance(s, (list, tuple)) else ([] if s is None else [s]) for s in specs]
        for s in specs:
            for m in s:
                metrics_mod.get(m)  # validate names now
        self.optimizer = optimizers_mod.get(optimizer)
        self._losses, self._loss_weights, self._metric_lists = losses, lw, specs
        self._compiled = True
        if self._engine is not None:
            self._compile_program()

    def _output_names_for_compile(self):
        return self.output_names

    @staticmethod
    def _per_output(value, names, what, ok, fill=None, broadcast=True):
        """value as one entry per output: a dict keyed by output names (missing -> fill), a
        list of len(names), or (broadcast) one value for all."""
        n = len(names)
        if isinstance(value, dict):
            bad = [k for k in value if k not in names]
            if bad:
                raise ValueError(f"compile: {what} has key(s) {bad} that name no output; the outputs are {names}")
            return [value.get(k, fill) for k in names]
        if isinstance(value, (list, tuple)) and (n > 1 or not broadcast or what == "loss"):
            if what == "metrics" and n == 1 and broadcast:
                return [value]
            if len(value) != n:
                raise ValueError(f"compile: {what} has {len(value)} entries but the model has {n} "
                                 f"output(s) {names}")
            return list(value)
        if not broadcast and n > 1:
            raise ValueError(f"compile: {what} must be a list or a dict for a model with {n} outputs")
        return [value] * n

    @property
    def loss(self):
        ls = getattr(self, "_losses", None)
        if ls is None:
            return None
        return ls[0] if len(ls) == 1 else ls

    @property
    def _metric_specs(self):
        return self._metric_lists[0] if len(self._metric_lists) == 1 else self._metric_lists

    def _compile_program(self):
        opt = self.optimizer
        arena = self._arena
        opt.build(arena.params.size)
        slots = list(opt.slots) + [None] * (3 - len(opt.slots))
        self._engine.compile(arena.params, arena.grads, opt.engine_config(),
                             [None if l is None else (l.kind, bool(l.from_logits), l.param, w)
                              for l, w in zip(self._losses, self._loss_weights)], *slots)
        self._engine.step = opt.iterations
        self._set_param_ranges()

    def _weight_table(self):
        """(layer, spec, offset in the arena) for every weight, in get_weights order."""
        for layer in self._leaf_layers():
            if not layer._specs:
                continue
            off = self._arena.offsets[id(layer)]
            for spec in layer._specs:
                yield layer, spec, off
                off += _size(spec[1])

    def _is_trainable(self, layer, frozen):
        return self.trainable and layer.trainable and id(layer) not in frozen

    def _set_param_ranges(self):
        """Tell the engine which weights the optimizer updates (trainable weights of trainable
        layers; call compile again after changing `layer.trainable`, as in Keras)."""
        frozen = self._frozen()
        rows = sorted((off, _size(spec[1]), spec[4].l1 if spec[4] else 0.0, spec[4].l2 if spec[4] else 0.0)
                      for layer, spec, off in self._weight_table() if self._is_trainable(layer, frozen) and spec[3])
        cols = list(zip(*rows)) if rows else [(), (), (), ()]
        self._engine.set_param_ranges(*cols)

    def _regularization_penalty(self):
        frozen = self._frozen()
        return sum(spec[4](w) for layer in self._leaf_layers() for spec, w in zip(layer._specs, layer._weights)
                   if spec[4] is not None and self._is_trainable(layer, frozen) and spec[3])

    def _new_metrics(self):
        out = []
        for specs in self._metric_lists:
            ms = []
            for spec in specs:
                m = metrics_mod.get(spec)
                if isinstance(spec, metrics_mod.Metric):
                    m.reset_state()
                ms.append(m)
            out.append(ms)
        return out

    def _require_compiled(self, what):
        if not self._compiled:
            raise ValueError(f"you must compile the model before calling {what}: "
                             "model.compile(optimizer='adam', loss='mse')")

    # ---- data validation ------------------------------------------------------------------
    def _split_structure(self, data, names, what, kind="input", allow_none=False):
        """data for several inputs/outputs as a list in model order: a dict keyed by name, a
        list/tuple, or (one input/output) the array itself."""
        n = len(names)
        if isinstance(data, dict):
            bad = [k for k in data if k not in names]
            if bad:
                raise ValueError(f"{what}: key(s) {bad} name no {kind} of the model; its {kind}s are {names}")
            missing = [k for k in names if k not in data]
            if missing and not allow_none:
                raise ValueError(f"{what}: no data for {kind}(s) {missing}")
            return [data.get(k) for k in names]
        if isinstance(data, (list, tuple)) and n > 1:
            if len(data) != n:
                raise ValueError(f"{what}: the model has {n} {kind}s {names}, got a list of {len(data)}")
            return list(data)
        if n > 1:
            raise ValueError(f"{what}: the model has {n} {kind}s {names}; pass a list or a dict keyed by name")
        if isinstance(data, (list, tuple)) and len(data) == 1 and (
                isinstance(data[0], np.ndarray) or hasattr(data[0], "to_numpy")):
            return [data[0]]
        return [data]

    def _prepare_one_x(self, x, shape, what, check_finite, checks):
        if x is None:
            raise ValueError(f"{what} is required")
        x = _as_float32(x, what)
        if x.ndim == 0:
            raise ValueError(f"{what} must have a batch dimension, got a scalar")
        if x.ndim == 1 and tuple(shape) == (1,):
            x = x.reshape(-1, 1)
        if tuple(x.shape[1:]) != tuple(shape):
            raise ValueError(f"{what} has shape {x.shape}, but the model expects (batch, "
                             f"{', '.join(map(str, shape))})")
        if x.shape[0] == 0:
            raise ValueError(f"{what} is empty (0 samples)")
        if check_finite and not np.all(np.isfinite(x)):
            raise ValueError(f"{what} contains NaN or infinity")
        for layer in checks:  # e.g. Embedding index range
            layer._check_input(x, what)
        return np.ascontiguousarray(x.reshape(x.shape[0], -1))

    def _prepare_xs(self, x, what="x", check_finite=False):
        """The inputs as C-contiguous float32 (n, size) arrays, validated against the model."""
        self._infer_input_shape(x)
        names = self._input_names_for_data()
        xs = self._split_structure(x, names, what)
        self._require_built()
        shapes = self._in_shapes()
        out = []
        for i, (xi, nm) in enumerate(zip(xs, names)):
            w = what if len(names) == 1 else f"{what}[{nm!r}]"
            out.append(self._prepare_one_x(xi, shapes[i], w, check_finite, self._input_checks[i]))
        n = out[0].shape[0]
        for a, nm in zip(out, names):
            if a.shape[0] != n:
                raise ValueError(f"{what}: the inputs have different numbers of samples "
                                 f"({dict(zip(names, (b.shape[0] for b in out)))})")
        return out

    def _infer_input_shape(self, x):
        pass

    def _input_names_for_data(self):
        return self.input_names

    def _prepare_x(self, x, what="x", check_finite=False):
        """One-input form of _prepare_xs (explanations, sklearn)."""
        xs = self._prepare_xs(x, what, check_finite)
        if len(xs) != 1:
            raise ValueError(f"this needs a model with one input; {self.name!r} has {len(xs)}")
        return xs[0]

    def _prepare_data(self, x, y, sample_weight=None, class_weight=None, what=""):
        """Validated (Xs, Ys, SWs) for training or evaluation (lists, model order)."""
        X = self._prepare_xs(x, what + "x", check_finite=True)
        n = X[0].shape[0]
        names = self.output_names
        if y is None:
            raise ValueError(f"{what}y is required for training and evaluation")
        ys = self._split_structure(y, names, what + "y", "output", allow_none=True)
        Y = []
        for k, (yk, nm) in enumerate(zip(ys, names)):
            w = what + ("y" if len(names) == 1 else f"y[{nm!r}]")
            if self._losses[k] is None:
                Y.append(None)
                continue
            if yk is None:
                raise ValueError(f"{w}: output {nm!r} has a loss but no targets")
            Y.append(self._prepare_y(yk, n, w, self._losses[k], self._engine_out_shapes[k]))
        if sample_weight is None:
            sws = [None] * len(names)
        elif isinstance(sample_weight, (dict, list, tuple)) and len(names) > 1:
            sws = self._split_structure(sample_weight, names, what + "sample_weight", "output", allow_none=True)
        else:
            sws = [sample_weight] * len(names)  # one array weighs every output (Keras)
        if class_weight is not None and len(names) > 1:
            raise ValueError("class_weight is only supported for models with one output; use sample_weight "
                             "per output")
        SW = [self._prepare_sw(sws[k], class_weight if k == 0 else None, Y[k], n, self._losses[k],
                               self._engine_out_shapes[k]) if Y[k] is not None else None
              for k in range(len(names))]
        return X, Y, SW

    def _prepare_y(self, y, n, what, loss, out_shape):
        steps = _size(out_shape[:-1]) if len(out_shape) > 1 else 1
        out = _size(out_shape)
        classes = out_shape[-1]
        if loss.sparse:
            a = np.asarray(y)
            if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise TypeError(f"{what} must hold integer class labels, got dtype {a.dtype}")
            if a.size != n * steps:
                raise ValueError(f"{what} must hold one class label per sample{' and step' if steps > 1 else ''}: "
                                 f"got shape {a.shape} for {n} samples "
                                 f"(sparse_categorical_crossentropy takes integer labels, not one-hot)")
            a = a.reshape(n * steps)
            if not np.issubdtype(a.dtype, np.integer):
                if not np.all(np.isfinite(a)):
                    raise ValueError(f"{what} contains NaN or infinity")
                if not np.all(np.mod(a, 1) == 0):
                    raise ValueError(f"{what} must hold integer class labels")
            if a.min() < 0 or a.max() >= classes:
                bad = a[(a < 0) | (a >= classes)][0]
                raise ValueError(f"{what} has label {bad} out of range: the model has {classes} classes "
                                 f"(labels must be in [0, {classes - 1}])")
            return np.ascontiguousarray(a, dtype=np.int32)
        a = _as_float32(y, what)
        if a.shape[0] != n if a.ndim else True:
            raise ValueError(f"{what} has {a.shape[0] if a.ndim else 0} samples but x has {n}")
        if a.size != n * out:
            raise ValueError(f"{what} has shape {a.shape}, but the model's output is (batch, "
                             f"{', '.join(map(str, out_shape))})"
                             + (" -- use sparse_categorical_crossentropy for integer labels"
                                if a.size == n and out > 1 else ""))
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} contains NaN or infinity")
        if loss.kind in (losses_mod.BINARY_CE, losses_mod.BINARY_FOCAL_CE,
                         losses_mod.CATEGORICAL_CE) and a.size and (a.min() < 0 or a.max() > 1):
            bad = a[(a < 0) | (a > 1)].flat[0]
            raise ValueError(f"{what} has target {bad:g}, but {loss.name} takes targets in [0, 1] "
                             f"(probabilities or 0/1 labels)")
        return np.ascontiguousarray(a.reshape(n, out))

    def _prepare_sw(self, sample_weight, class_weight, y, n, loss, out_shape):
        sw = None
        if sample_weight is not None:
            sw = _as_float32(sample_weight, "sample_weight").reshape(-1)
            if sw.size != n:
                raise ValueError(f"sample_weight has {sw.size} values but x has {n} samples")
            if not np.all(np.isfinite(sw)) or (sw < 0).any():
                raise ValueError("sample_weight must be finite and >= 0")
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError("class_weight must be a dict {class: weight}")
            labels = y.reshape(n, -1)
            binary = loss.kind in (losses_mod.BINARY_CE, losses_mod.BINARY_FOCAL_CE)
            lab = labels[:, 0].astype(np.int64) if labels.shape[1] == 1 and not binary \
                else (labels.argmax(axis=1) if labels.shape[1] > 1 else (labels[:, 0] > 0.5).astype(np.int64))
            n_classes = max(_size(out_shape), 2)
            table = np.ones(n_classes, dtype=np.float32)
            for k, v in class_weight.items():
                if isinstance(k, bool) or not isinstance(k, (int, np.integer, float, np.floating)) \
                        or float(k) != int(k):
                    raise ValueError(f"class_weight keys must be integer class labels, got {k!r}")
                k = int(k)
                if not 0 <= k < n_classes:
                    raise ValueError(f"class_weight has class {k}, but the model has classes 0..{n_classes - 1}")
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise TypeError(f"class_weight[{k}] must be a number, got {v!r}") from None
                if not np.isfinite(v) or v < 0:
                    raise ValueError(f"class_weight[{k}] must be finite and >= 0, got {v}")
                table[k] = v
            cw = table[lab]
            sw = cw if sw is None else sw * cw
        return None if sw is None else np.ascontiguousarray(sw, dtype=np.float32)

    # ---- logs -----------------------------------------------------------------------------
    def _log_names(self):
        """(per-output loss key or None, per-output metric prefix): Keras's History names."""
        names = self.output_names
        if len(names) == 1:
            return [None], [""]
        return [f"{nm}_loss" if l is not None else None for nm, l in zip(names, self._losses)], \
            [f"{nm}_" for nm in names]

    def _metric_logs(self, metrics, Y, preds, SW, logs, prefixes):
        for k, ms in enumerate(metrics):
            for m in ms:
                m.update_state(Y[k], preds[k], SW[k])
                logs[prefixes[k] + m.name] = m.result()

    # ---- training -----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        self._require_compiled("fit")
        asked_bs = batch_size
        verbose, val_epochs = _check_fit_args(
            batch_size=batch_size, epochs=epochs, verbose=verbose, validation_split=validation_split,
            shuffle=shuffle, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps, validation_batch_size=validation_batch_size,
            validation_freq=validation_freq)
        X, Y, SW = self._prepare_data(x, y, sample_weight)
        n = X[0].shape[0]
        val = None
        if validation_split and validation_data is None:
            n_val = int(n * validation_split)
            if n_val < 1 or n_val >= n:
                raise ValueError(f"validation_split={validation_split} leaves no training or validation samples")
            n_tr = n - n_val  # Keras takes the last samples, before shuffling
            tail, head = slice(n_tr, None), slice(None, n_tr)
            val = tuple([_take(a, tail, n) for a in arrs] for arrs in (X, Y, SW))
            X, Y, SW = ([_take(a, head, n) for a in arrs] for arrs in (X, Y, SW))
            n = n_tr
        if class_weight is not None:  # training samples only, as Keras
            if len(Y) > 1:
                raise ValueError("class_weight is only supported for models with one output; use sample_weight "
                                 "per output")
            SW = [self._prepare_sw(SW[0], class_weight, Y[0], n, self._losses[0], self._engine_out_shapes[0])]
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight)")
            val = self._prepare_data(validation_data[0], validation_data[1],
                                     validation_data[2] if len(validation_data) == 3 else None, what="validation ")
        batch_size = self._batch_for(n, asked_bs, "fit")
        if val is not None:
            self._batch_for(val[0][0].shape[0], validation_batch_size or asked_bs, "fit (validation data)")

        steps = math.ceil(n / batch_size)
        if steps_per_epoch is not None:
            steps = min(steps, int(steps_per_epoch))
        history = callbacks_mod.History()
        cbs = list(callbacks or [])
        progbar = callbacks_mod.ProgbarLogger(verbose)
        cb = callbacks_mod.CallbackList([progbar] + cbs + [history], self,
                                        {"epochs": epochs, "steps": steps, "verbose": verbose})
        per_batch = cb.wants_batches()
        chunk = 1 if per_batch else (max(1, steps // 20) if verbose == 1 else steps)
        self.history = history
        self.stop_training = False
        rng = utils.rng()
        n_out = len(Y)
        loss_keys, prefixes = self._log_names()
        batch_loss = np.empty((chunk, 1 + n_out), dtype=np.float64)
        out_sizes = self._engine.out_sizes
        cb.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            cb.on_epoch_begin(epoch)
            idx = rng.permutation(n) if shuffle else np.arange(n)
            idx = idx[:steps * batch_size] if steps_per_epoch is not None else idx
            metrics = self._new_metrics()
            want = [bool(ms) for ms in metrics]
            loss_total, out_totals, seen = 0.0, np.zeros(n_out), 0
            logs = {}
            for s0 in range(0, steps, chunk):
                nb = min(chunk, steps - s0)
                rows = np.ascontiguousarray(idx[s0 * batch_size:(s0 + nb) * batch_size], dtype=np.int64)
                if per_batch:
                    cb.on_train_batch_begin(s0)
                lrs = self.optimizer.learning_rates(self.optimizer.iterations, nb)
                preds = [np.empty((rows.size, out_sizes[k]), np.float32) if want[k] else None
                         for k in range(n_out)] if any(want) else None
                with self._run(trains=True):
                    self._engine.train(X, Y, SW, rows, batch_size, lrs, batch_loss, preds)
                self.optimizer.iterations += nb
                sizes = np.minimum(batch_size, rows.size - np.arange(nb) * batch_size)
                loss_total += float(np.dot(batch_loss[:nb, 0], sizes))
                out_totals += sizes @ batch_loss[:nb, 1:]
                seen += rows.size
                logs = {"loss": loss_total / seen}
                for k, key in enumerate(loss_keys):
                    if key is not None:
                        logs[key] = float(out_totals[k] / seen)
                if preds is not None:
                    self._metric_logs(metrics, [_take(a, rows, n) for a in Y], preds,
                                      [_take(s, rows, n) for s in SW], logs, prefixes)
                cb.on_train_chunk_end(s0 + nb, logs)  # nncore hook: cheap chunk-level look at the logs
                if per_batch:
                    cb.on_train_batch_end(s0, dict(logs))
                progbar.progress(s0 + nb, logs)
                if self.stop_training:
                    break
            if val is not None and val_epochs(epoch + 1):
                vlogs = self._evaluate_arrays(*val, validation_batch_size or batch_size)
                logs.update({"val_" + k: v for k, v in vlogs.items()})
            cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cb.on_train_end(logs if epochs > initial_epoch else {})
        return history

    def _evaluate_arrays(self, X, Y, SW, batch_size):
        metrics = self._new_metrics()
        n = X[0].shape[0]
        preds = [np.empty((n, s), np.float32) if ms else None for ms, s in zip(metrics, self._engine.out_sizes)]
        with self._run():
            sums = self._engine.evaluate(X, Y, SW, batch_size, preds if any(p is not None for p in preds) else None)
        per = [float(s) / (n * st) for s, st in zip(sums, self._engine.out_steps)]
        total = sum(w * p for w, p, l in zip(self._loss_weights, per, self._losses) if l is not None)
        logs = {"loss": total + self._regularization_penalty()}
        loss_keys, prefixes = self._log_names()
        for k, key in enumerate(loss_keys):
            if key is not None:
                logs[key] = per[k]
        self._metric_logs(metrics, Y, preds, SW, logs, prefixes)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        self._require_compiled("evaluate")
        X, Y, SW = self._prepare_data(x, y, sample_weight)
        _check_positive_int(batch_size, "batch_size", allow_none=True)
        logs = self._evaluate_arrays(X, Y, SW, self._batch_for(
            X[0].shape[0], None if batch_size is None else int(batch_size), "evaluate"))
        if return_dict:
            return logs
        vals = list(logs.values())
        return vals[0] if len(vals) == 1 else vals

    def _structure_outputs(self, outs):
        g = self._graph
        if g is not None and g.output_kind == "dict":
            return dict(zip(g.output_keys, outs))
        if g is not None and g.output_kind == "list":
            return outs
        return outs[0] if len(outs) == 1 else outs

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for x, in batches of batch_size (default 32); float32."""
        eng = self._engine
        if (eng is not None and type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2
                and self._fast_in == x.shape[1] and x.shape[0] > 0 and x.flags.c_contiguous
                and batch_size is None and self._fast_out):
            # fast path (one-sample latency): already what the kernels take, one input/output
            n = x.shape[0]
            out = np.empty((n, self._fast_out), dtype=np.float32)
            arena = self._arena
            with arena.lock:
                if self._seen != arena.version:
                    eng.params_changed()
                    self._seen = arena.version
                eng.predict([x], self._batch_for(n, None, "predict") if self._has_stateful else 32, [out])
            return out if self._graph is None or self._graph.output_kind == "single" else \
                self._structure_outputs([out])
        X = self._prepare_xs(x)
        eng = self._engine
        _check_positive_int(batch_size, "batch_size", allow_none=True)
        n = X[0].shape[0]
        batch_size = self._batch_for(n, None if batch_size is None else int(batch_size), "predict")
        outs = [np.empty((n, s), dtype=np.float32) for s in eng.out_sizes]
        with self._run():
            eng.predict(X, batch_size, outs)
        outs = [o if len(sh) == 1 else o.reshape((n,) + tuple(sh))
                for o, sh in zip(outs, self._engine_out_shapes)]
        return self._structure_outputs(outs)

    def __call__(self, x, training=False, **kwargs):
        flat = list(x.values()) if isinstance(x, dict) else (list(x) if isinstance(x, (list, tuple)) else [x])
        if any(isinstance(t, KerasTensor) for t in flat):
            return self._call_symbolic(x, flat)
        return self.predict(x)

    def _call_symbolic(self, inputs, flat):
        """A model called on tensors is one node of the outer graph; the outer model runs its
        layers (and so its weights) in place."""
        if not all(isinstance(t, KerasTensor) for t in flat):
            raise TypeError(f"model {self.name!r}: called on a mix of symbolic tensors and arrays")
        if isinstance(inputs, dict):
            flat = self._split_structure(inputs, self.input_names, f"model {self.name!r}")
        shapes = self._in_shapes_for_call(flat)
        if len(flat) != len(shapes):
            raise ValueError(f"model {self.name!r} takes {len(shapes)} input(s), got {len(flat)}")
        for t, s, nm in zip(flat, shapes, self._input_names_for_data()):
            if tuple(t._shape) != tuple(s):
                raise ValueError(f"model {self.name!r}: input {nm!r} expects shape (None, "
                                 f"{', '.join(map(str, s))}), got {t.shape} from layer {t._node.layer.name!r}")
        node = graph_mod.Node(self, flat, len(flat) > 1 or isinstance(inputs, (list, tuple)))
        for i, s in enumerate(self._out_shapes_for_call()):
            node.outputs.append(KerasTensor(s, node, i, name=self.name))
        self._nodes.append(node)
        outs = node.outputs
        return outs[0] if len(outs) == 1 else list(outs)

    def _in_shapes_for_call(self, flat):
        return self._in_shapes()

    def _out_shapes_for_call(self):
        return self._out_shapes()

    def predict_on_batch(self, x):
        X = self._prepare_xs(x)
        return self.predict(x, batch_size=X[0].shape[0])

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._require_compiled("train_on_batch")
        X, Y, SW = self._prepare_data(x, y, sample_weight, class_weight)
        n = X[0].shape[0]
        self._batch_for(n, n, "train_on_batch")  # one batch of n samples
        metrics = self._new_metrics()
        preds = [np.empty((n, s), np.float32) if ms else None for ms, s in zip(metrics, self._engine.out_sizes)]
        bl = np.empty((1, 1 + len(Y)), dtype=np.float64)
        lrs = self.optimizer.learning_rates(self.optimizer.iterations, 1)
        with self._run(trains=True):
            self._engine.train(X, Y, SW, np.arange(n, dtype=np.int64), n, lrs, bl,
                               preds if any(p is not None for p in preds) else None)
        self.optimizer.iterations += 1
        logs = {"loss": float(bl[0, 0])}
        loss_keys, prefixes = self._log_names()
        for k, key in enumerate(loss_keys):
            if key is not None:
                logs[key] = float(bl[0, 1 + k])
        self._metric_logs(metrics, Y, preds, SW, logs, prefixes)
        if return_dict:
            return logs
        vals = list(logs.values())
        return vals[0] if len(vals) == 1 else vals

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        X = self._prepare_xs(x)
        return self.evaluate(x, y, batch_size=X[0].shape[0], sample_weight=sample_weight,
                             return_dict=return_dict)

    def _gradients(self, x, y, sample_weight=None):
        """(loss, [gradient of each weight], d loss / d x) for one batch, without an update.
        The loss is the batch mean (Keras's reduction, loss weights applied); dx is one array
        for a one-input model, else a list."""
        self._require_compiled("gradients")
        X, Y, SW = self._prepare_data(x, y, sample_weight)
        n = X[0].shape[0]
        dx = [np.empty_like(a) for a in X]
        with self._run(trains=True):  # a training-mode forward (BatchNorm's moving statistics)
            sums = self._engine.gradients(X, Y, SW, dx)
        loss = sum(w * float(s) / (n * st) for w, s, st, l in
                   zip(self._loss_weights, sums, self._engine.out_steps, self._losses) if l is not None)
        grads = []
        for layer, spec, off in self._weight_table():
            grads.append(self._arena.grads[off:off + _size(spec[1])].reshape(spec[1]).copy())
        dx = [d.reshape((n,) + tuple(s)) for d, s in zip(dx, self._in_shapes())]
        return loss, grads, dx[0] if len(dx) == 1 else dx

    def _output_gradients(self, x, upstream=None):
        """(outputs, d sum(upstream * outputs) / d x) with inference behaviour for a model with
        one input and one output; upstream defaults to ones. One batched C call."""
        X = self._prepare_x(x, check_finite=True)
        if len(self._engine.out_sizes) != 1:
            raise ValueError(f"this needs a model with one output; {self.name!r} has {len(self._engine.out_sizes)}")
        n, size = X.shape[0], self._engine.out_sizes[0]
        if upstream is None:
            up = np.ones((n, size), np.float32)
        else:
            up = _as_float32(upstream, "upstream").reshape(n, -1)
            if up.shape[1] != size:
                raise ValueError(f"upstream has shape {up.shape}, expected ({n}, {size})")
        dx = np.empty_like(X)
        out = np.empty((n, size), np.float32)
        with self._run():
            self._engine.output_gradients([X], [np.ascontiguousarray(up)], [dx], [out])
        return (out.reshape((n,) + tuple(self._engine_out_shapes[0])),
                dx.reshape((n,) + tuple(self._in_shapes()[0])))

    def _output_gradients_list(self, xs, upstream):
        """(outputs, [d sum(upstream * output) / d input]) for a model with several inputs and
        one output, inference behaviour, one batched C call."""
        X = self._prepare_xs(xs, check_finite=True)
        if len(self._engine.out_sizes) != 1:
            raise ValueError(f"explanations need a model with one output; {self.name!r} has "
                             f"{len(self._engine.out_sizes)}")
        n, size = X[0].shape[0], self._engine.out_sizes[0]
        up = np.ascontiguousarray(_as_float32(upstream, "upstream").reshape(n, size))
        dx = [np.empty_like(a) for a in X]
        out = np.empty((n, size), np.float32)
        with self._run():
            self._engine.output_gradients(X, [up], dx, [out])
        return out, [d.reshape((n,) + tuple(s)) for d, s in zip(dx, self._in_shapes())]

    # ---- description --------------------------------------------------------------------
    def _summary_rows(self):
        g = self._graph
        rows = []
        for layer in g.layers:
            nodes = [nd for nd in g.nodes if nd.layer is layer]
            shapes = [(None,) + tuple(t._shape) for nd in nodes for t in nd.outputs[:1]]
            shape = str(shapes[0]) if len(set(shapes)) == 1 else " / ".join(map(str, shapes))
            conn = []
            for nd in nodes:
                for t in nd.inputs:
                    conn.append(f"{t._node.layer.name}[{g.node_index(t._node)}][{t._index}]")
            rows.append((f"{layer.name} ({type(layer).__name__})", shape,
                         f"{layer.count_params():,}", ", ".join(conn) if conn else "-"))
        return rows, ("Layer (type)", "Output Shape", "Param #", "Connected to")

    def summary(self, print_fn=None):
        self._require_built()
        print_fn = print_fn or print
        rows, heads = self._summary_rows()
        w = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(heads)]
        line = "─" * sum(w)
        total = self.count_params()
        trainable = sum(int(w.size) for w in self.trainable_weights)  # moving stats are not
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn("".join(h.ljust(wi) for h, wi in zip(heads, w)))
        print_fn("═" * sum(w))
        for r in rows:
            print_fn("".join(c.ljust(wi) for c, wi in zip(r, w)))
        print_fn(line)
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")

    def get_config(self):
        cfg = self._graph.get_config(self.name)
        cfg["trainable"] = self.trainable
        return cfg

    @classmethod
    def from_config(cls, config):
        """A new model (fresh weights) from get_config() output (only nncore's layer classes)."""
        inputs, outputs, name = graph_mod.functional_from_config(config)
        model = Model(inputs, outputs, name=name)
        if config.get("trainable") is False:
            model.trainable = False
        return model

    def save(self, filepath, overwrite=True, include_optimizer=True, format="nncore"):
        """Save architecture, weights, compile settings and optimizer state to one file.
        format="nncore" (default): nncore's own file; format="keras": a Keras 3 `.keras`
        archive that keras.saving.load_model opens (architecture, weights, compile config)."""
        if format not in ("nncore", "keras"):
            raise ValueError(f"save: format must be 'nncore' or 'keras', got {format!r}")
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath} exists and overwrite=False")
        if format == "keras":
            from . import keras_format
            keras_format.save_keras(self, filepath)
        else:
            saving.save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath} exists and overwrite=False")
        saving.save_weights(self, filepath)

    def load_weights(self, filepath):
        saving.load_weights(self, filepath)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


_NO_ARENA_LOCK = threading.Lock()


class Sequential(Model):
    """A linear stack of layers, as `keras.Sequential`: the one-path case of Model."""

    _multi_input = False

    def __init__(self, layers=None, name=None, trainable=True):
        self._init_common(name or "sequential", trainable)
        self._layers = []
        self._input_shape = None
        self._input_name = None
        for layer in layers or []:
            self.add(layer)
        if self._layers and self._input_shape is not None:
            self.build()  # as Keras: weights exist as soon as the input shape is known

    # ---- construction -------------------------------------------------------------------
    @property
    def layers(self):
        return list(self._layers)

    @layers.setter
    def layers(self, value):
        self._layers = list(value)
        self._invalidate()

    def add(self, layer):
        if isinstance(layer, KerasTensor) and getattr(layer._node.layer, "_is_input_layer", False):
            layer = layer._node.layer
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("Input must come first in a Sequential model")
            self._input_shape = layer.shape
            self._batch_size = layer.batch_size
            self._input_name = layer.name
            return
        if isinstance(layer, Sequential):
            for sub in layer.layers:
                self.add(sub)
            return
        if isinstance(layer, Model):
            raise TypeError("Sequential.add: a functional Model cannot be a step of a Sequential; "
                            "build the whole model with the functional API")
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if layer._multi_input:
            raise TypeError(f"Sequential.add: {type(layer).__name__} takes several inputs; use the "
                            f"functional API (nn.Model)")
        if any(layer is l for l in self._layers):
            raise ValueError(f"layer {layer.name!r} is already in this model")
        if not self._layers and self._input_shape is None and layer._input_shape_arg is not None:
            self._input_shape = layer._input_shape_arg
        if not self._layers and self._batch_size is None:
            self._batch_size = layer._batch_size_arg
        self._layers.append(layer)
        self._invalidate()

    def pop(self):
        if not self._layers:
            raise ValueError("pop on an empty model")
        layer = self._layers.pop()
        self._invalidate()
        return layer

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None,) + tuple(self._input_shape)

    @property
    def output_shape(self):
        self._require_built()
        return (None,) + tuple(self._engine_out_shapes[0])

    @property
    def inputs(self):
        raise AttributeError("a Sequential has no symbolic inputs; build it with nn.Input first or "
                             "use nn.Model")

    @property
    def input_names(self):
        return [self._input_name or "input_layer"]

    @property
    def output_names(self):
        return [self._layers[-1].name if self._layers else "output"]

    def _in_shapes(self):
        return [tuple(self._input_shape)]

    def _out_shapes(self):
        self._require_built()
        return [tuple(self._engine_out_shapes[0])]

    def _in_shapes_for_call(self, flat):
        if self._input_shape is None and len(flat) == 1:
            self._input_shape = tuple(flat[0]._shape)
        if self._input_shape is None:
            raise ValueError(f"model {self.name!r} has no input shape")
        return [tuple(self._input_shape)]

    def _out_shapes_for_call(self):
        self._require_built()
        return [tuple(self._engine_out_shapes[0])]

    def _leaf_layers(self):
        return list(self._layers)

    def _frozen(self):
        return set()

    def build(self, input_shape=None):
        """Build for samples of shape input_shape (Keras also accepts the batch dim first)."""
        if input_shape is not None:
            shape = tuple(input_shape)
            if len(shape) > 1 and shape[0] is None:
                shape = shape[1:]
            if self._input_shape is not None and tuple(shape) != tuple(self._input_shape):
                raise ValueError(f"model expects input shape {self.input_shape}, got (None, {', '.join(map(str, shape))})")
            self._input_shape = tuple(int(s) for s in shape)
        if self._input_shape is None:
            raise ValueError("the model has no input shape yet: pass input_shape= to the first layer, "
                             "start with nn.Input(shape=...), or call fit/predict/build first")
        if not self._layers:
            raise ValueError("the model has no layers")
        shape = self._input_shape
        for layer in self._layers:
            shape = layer._build_once(shape)
        self._make_engine()

    def _steps(self):
        steps, shape = [], tuple(self._input_shape)
        for i, layer in enumerate(self._layers):
            steps.append((layer, [i], i + 1, shape, None))
            shape = layer.output_shape
        return [0], steps, [len(self._layers)]

    def _infer_input_shape(self, x):
        if self._input_shape is None and x is not None:
            a = x[0] if isinstance(x, (list, tuple)) and len(x) == 1 else x
            a = np.asarray(a)
            self._input_shape = tuple(a.shape[1:]) if a.ndim > 1 else (1,)

    def _summary_rows(self):
        rows = [(f"{l.name} ({type(l).__name__})", str((None,) + tuple(l.output_shape)), f"{l.count_params():,}")
                for l in self._layers]
        return rows, ("Layer (type)", "Output Shape", "Param #")

    def get_config(self):
        return {"name": self.name,
                "input_shape": None if self._input_shape is None else list(self._input_shape),
                "batch_size": self._batch_size, "trainable": self.trainable,
                "layers": [{"class_name": graph_mod._class_name(l), "config": l.get_config()} for l in self._layers]}

    @classmethod
    def from_config(cls, config):
        """A new, unbuilt-weights model from get_config() output (only nncore's layer classes)."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("Sequential.from_config expects a dict with a 'layers' list")
        model = cls(name=config.get("name"))
        if config.get("input_shape") is not None:
            model._input_shape = tuple(int(s) for s in config["input_shape"])
        if config.get("batch_size") is not None:
            from .layers.base import _batch_size
            model._batch_size = _batch_size(config["batch_size"])
        for entry in config["layers"]:
            model.add(graph_mod.layer_from_config(entry))
        if config.get("trainable") is False:
            model.trainable = False
        return model


graph_mod._MODEL_CLASSES.update({"Sequential": Sequential, "Functional": Model, "Model": Model})

from . import saving  # noqa: E402  (saving needs only graph.py; models register above)


def load_model(filepath, compile=True):
    """Load a model saved with `model.save`, or a Keras `.keras`/`.h5` file (told apart by content;
    validated; never unpickles or runs anything from the file)."""
    return saving.load_model(filepath, compile=compile)
