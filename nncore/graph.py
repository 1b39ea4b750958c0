"""The symbolic graph of Keras's functional API: tensors, the calls that made them, ordering,
validation and the config format. No training here (models.py) and no file format (saving.py).

`nn.Input(shape=...)` returns a KerasTensor; calling a layer on KerasTensors records a Node
(one call of that layer) and returns new KerasTensors. `graph_of(inputs, outputs)` orders the
nodes that lead from the inputs to the outputs and checks the graph; models.py turns that order
into one C graph (nncore/_engine.pxi, csrc/engine/graph.c).
"""
import collections

_MODEL_CLASSES = {}  # "Sequential", "Functional": registered by models.py


class KerasTensor:
    """A symbolic tensor: per-sample shape (no batch axis) and the call that made it."""

    __slots__ = ("_shape", "_node", "_index", "name", "__weakref__")

    def __init__(self, shape, node=None, index=0, name=None):
        self._shape = tuple(int(s) for s in shape)
        self._node = node
        self._index = index
        self.name = name

    @property
    def shape(self):
        return (None,) + self._shape

    @property
    def dtype(self):
        return "float32"

    @property
    def ndim(self):
        return len(self._shape) + 1

    @property
    def _keras_history(self):
        n = self._node
        return n.layer, n.layer._nodes.index(n), self._index

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, name={self.name}>"

    def __array__(self, *a, **k):
        raise TypeError("a symbolic tensor (nn.Input or a layer called on one) has no values: "
                        "build a model with nn.Model(inputs, outputs) and call predict")


class Node:
    """One call of a layer: the tensors it read (as a list, and whether it was given a list)
    and the tensors it made."""

    __slots__ = ("layer", "inputs", "as_list", "outputs", "input_shapes", "__weakref__")

    def __init__(self, layer, inputs, as_list):
        self.layer = layer
        self.inputs = list(inputs)
        self.as_list = as_list
        self.outputs = []
        self.input_shapes = [t._shape for t in self.inputs]


def flatten_structure(obj, what):
    """(list of KerasTensors, names or None, kind) of a tensor, list/tuple or dict."""
    if isinstance(obj, KerasTensor):
        return [obj], None, "single"
    if isinstance(obj, dict):
        if not obj:
            raise ValueError(f"Model: {what} is an empty dict")
        keys = list(obj)
        vals = [obj[k] for k in keys]
        kind = "dict"
    elif isinstance(obj, (list, tuple)):
        if not obj:
            raise ValueError(f"Model: {what} is an empty list")
        keys, vals, kind = None, list(obj), "list"
    else:
        raise TypeError(f"Model: {what} must be symbolic tensors (from nn.Input or a layer called on "
                        f"one), as a tensor, a list or a dict; got {type(obj).__name__}")
    for v in vals:
        if not isinstance(v, KerasTensor):
            raise TypeError(f"Model: every entry of {what} must be a symbolic tensor (from nn.Input "
                            f"or a layer called on one); got {type(v).__name__}")
    return vals, keys, kind


class Graph:
    """The nodes from `inputs` to `outputs` in topological order, checked.

    nodes: Node list (an input's node first); layers: distinct layers in Keras's order (inputs
    first, then by depth from the inputs, ties in the order they were reached)."""

    def __init__(self, inputs, outputs):
        self.inputs, self.input_keys, self.input_kind = flatten_structure(inputs, "inputs")
        self.outputs, self.output_keys, self.output_kind = flatten_structure(outputs, "outputs")
        for t in self.inputs:
            if t._node is None or not getattr(t._node.layer, "_is_input_layer", False):
                raise ValueError(f"Model: inputs must be tensors made by nn.Input; {t!r} was made by "
                                 f"layer {t._node.layer.name!r}" if t._node else
                                 f"Model: inputs must be tensors made by nn.Input, got {t!r}")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("Model: the same Input appears twice in inputs")
        if len({id(t) for t in self.outputs}) != len(self.outputs):
            raise ValueError("Model: the same tensor appears twice in outputs")
        input_ids = {id(t) for t in self.inputs}
        # depth-first from the outputs: every node an output depends on, in dependency order
        order, state = [], {}
        for out in self.outputs:
            stack = [(out._node, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    if state.get(id(node)) != 2:
                        state[id(node)] = 2
                        order.append(node)
                    continue
                if state.get(id(node)) == 2:
                    continue
                if state.get(id(node)) == 1:
                    raise ValueError(f"Model: the graph has a cycle through layer {node.layer.name!r}")
                state[id(node)] = 1
                stack.append((node, True))
                if getattr(node.layer, "_is_input_layer", False):
                    t = node.outputs[0]
                    if id(t) not in input_ids:
                        raise ValueError(
                            f"Model: the outputs depend on input {node.layer.name!r} "
                            f"(shape {t.shape}), which is not in the model's inputs")
                    continue
                for t in reversed(node.inputs):
                    if state.get(id(t._node)) != 2:
                        stack.append((t._node, False))
        reached = {id(n) for n in order}
        for t in self.inputs:
            if id(t._node) not in reached:
                raise ValueError(f"Model: input {t._node.layer.name!r} (shape {t.shape}) reaches no "
                                 f"output; remove it or connect it")
        # inputs first, in the given order; the rest keep their dependency order
        self.nodes = [t._node for t in self.inputs] + [n for n in order
                                                       if not getattr(n.layer, "_is_input_layer", False)]
        # Keras orders layers by depth (distance to the outputs), deepest first, ties in the
        # depth-first post-order from the outputs
        depth = {}
        for node in reversed(order):
            d = depth.setdefault(id(node), 0)
            for t in node.inputs:
                depth[id(t._node)] = max(depth.get(id(t._node), 0), d + 1)
        layer_depth, first = {}, {}
        for i, node in enumerate(order):
            lid = id(node.layer)
            layer_depth[lid] = max(layer_depth.get(lid, 0), depth[id(node)])
            first.setdefault(lid, (i, node.layer))
        ranked = sorted(first.values(), key=lambda p: (-layer_depth[id(p[1])], p[0]))
        self.layers = [layer for _, layer in ranked]
        names = collections.Counter(l.name for l in self.layers)
        dup = [n for n, c in names.items() if c > 1]
        if dup:
            raise ValueError(f"Model: layer names must be unique, {dup[0]!r} is used by {names[dup[0]]} layers")

    @property
    def input_names(self):
        return list(self.input_keys) if self.input_keys else [t._node.layer.name for t in self.inputs]

    @property
    def output_names(self):
        if self.output_keys:
            return list(self.output_keys)
        names = []
        for t in self.outputs:
            layer = t._node.layer
            nm = layer.name if len(t._node.outputs) == 1 else f"{layer.name}_{t._index}"
            names.append(nm)
        return names

    def node_index(self, node):
        """Index of `node` among the calls of its layer inside this graph."""
        own = [n for n in self.nodes if n.layer is node.layer]
        return own.index(node)

    # ---- config ---------------------------------------------------------------------------
    def get_config(self, name):
        """Keras-style functional config: each layer with the calls it makes in this graph as
        [[producer name, call index, tensor index], ...]."""
        where = {}
        for node in self.nodes:
            for i, t in enumerate(node.outputs):
                where[id(t)] = [node.layer.name, self.node_index(node), i]
        layers = []
        for layer in self.layers:
            calls = [n for n in self.nodes if n.layer is layer]
            entry = {"class_name": _class_name(layer), "name": layer.name, "config": layer.get_config(),
                     "inbound_nodes": [] if getattr(layer, "_is_input_layer", False) else
                     [{"args": [where[id(t)] for t in n.inputs], "as_list": n.as_list} for n in calls]}
            layers.append(entry)
        return {"name": name, "layers": layers,
                "input_layers": [where[id(t)] for t in self.inputs],
                "output_layers": [where[id(t)] for t in self.outputs],
                "input_keys": self.input_keys, "output_keys": self.output_keys,
                "input_kind": self.input_kind, "output_kind": self.output_kind}


def _class_name(layer):
    cls = type(layer).__name__
    return "Functional" if cls == "Model" else cls


def layer_classes():
    """nncore's layer classes by name (only these can come out of a config or a file)."""
    from .layers.base import Layer
    out, todo = {}, [Layer]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("nncore."):
                out[sub.__name__] = sub
    out.update(_MODEL_CLASSES)
    return out


def layer_from_config(entry):
    if not isinstance(entry, dict):
        raise ValueError(f"layer entry must be a dict, got {entry!r}")
    classes = layer_classes()
    cls = classes.get(entry.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown layer class {entry.get('class_name')!r}")
    cfg = entry.get("config")
    if not isinstance(cfg, dict):
        raise ValueError(f"bad config for layer {entry.get('class_name')}: {cfg!r}")
    try:
        return cls.from_config(dict(cfg))
    except TypeError as e:
        raise ValueError(f"bad config for layer {entry.get('class_name')}: {e}") from None


def functional_from_config(config, make_layer=None):
    """(inputs, outputs, name) rebuilt from Graph.get_config output: each layer is made from its
    config (by `make_layer(entry)`, default layer_from_config) and called on the tensors its calls
    name, in an order where every call's inputs exist (a call that can never run -- a cycle or a
    missing layer -- is a ValueError)."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("functional config must be a dict with a 'layers' list")
    layers, pending, made = {}, [], {}
    for entry in config["layers"]:
        layer = (make_layer or layer_from_config)(entry)
        name = entry.get("name", layer.name)
        if name in layers:
            raise ValueError(f"functional config: layer name {name!r} appears twice")
        layers[name] = layer
        if getattr(layer, "_is_input_layer", False):
            made[name] = [[layer._output]]
            continue
        made[name] = []
        calls = entry.get("inbound_nodes") or []
        if not isinstance(calls, list):
            raise ValueError(f"functional config: inbound_nodes of {name!r} must be a list")
        pending.append([name, list(calls)])

    def lookup(ref):
        if not (isinstance(ref, (list, tuple)) and len(ref) == 3 and isinstance(ref[0], str)
                and all(isinstance(i, int) and not isinstance(i, bool) for i in ref[1:])):
            raise ValueError(f"functional config: bad tensor reference {ref!r}")
        name, ni, ti = ref
        if name not in made:
            raise ValueError(f"functional config: reference to unknown layer {name!r}")
        calls = made[name]
        if ni >= len(calls):
            return None
        if not 0 <= ti < len(calls[ni]):
            raise ValueError(f"functional config: layer {name!r} has no output {ti}")
        return calls[ni][ti]

    progress = True
    while progress and any(p[1] for p in pending):
        progress = False
        for item in pending:
            name, calls = item
            if not calls:
                continue
            call = calls[0]
            if not isinstance(call, dict) or not isinstance(call.get("args"), list) or not call["args"]:
                raise ValueError(f"functional config: bad call of layer {name!r}: {call!r}")
            args = [lookup(r) for r in call["args"]]
            if any(a is None for a in args):
                continue
            out = layers[name](args if call.get("as_list") else args[0])
            made[name].append(list(out) if isinstance(out, (list, tuple)) else [out])
            calls.pop(0)
            progress = True
    stuck = [p[0] for p in pending if p[1]]
    if stuck:
        raise ValueError(f"functional config: the calls of layer(s) {stuck} can never run "
                         f"(a cycle or a reference to a call that does not exist)")
    ins = [lookup(r) for r in config.get("input_layers") or []]
    outs = [lookup(r) for r in config.get("output_layers") or []]
    if not ins or not outs or any(t is None for t in ins + outs):
        raise ValueError("functional config: input_layers/output_layers are missing or wrong")
    ik, ok = config.get("input_keys"), config.get("output_keys")
    if ik is not None:
        if not isinstance(ik, list) or len(ik) != len(ins):
            raise ValueError("functional config: input_keys do not match input_layers")
        ins = dict(zip(ik, ins))
    if ok is not None:
        if not isinstance(ok, list) or len(ok) != len(outs):
            raise ValueError("functional config: output_keys do not match output_layers")
        outs = dict(zip(ok, outs))
    if config.get("input_kind") == "single" and len(ins) == 1:
        ins = ins[0]
    if config.get("output_kind") == "single" and len(outs) == 1:
        outs = outs[0]
    return ins, outs, config.get("name")


def model_from_config(mc):
    """Any model from {"class_name": ..., "config": ...} (what model files hold)."""
    if not isinstance(mc, dict) or mc.get("class_name") not in _MODEL_CLASSES:
        raise ValueError(f"unknown model class {mc.get('class_name') if isinstance(mc, dict) else mc!r}")
    return _MODEL_CLASSES[mc["class_name"]].from_config(mc.get("config") or {})
