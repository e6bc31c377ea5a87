"""Rewrites of ONNX graphs before import: subgraphs that an exporter wrote
for one operation become that operation's node again.

torch has no LRN op: ``torch.onnx.export`` writes ``nn.LocalResponseNorm``
(F.local_response_norm) as the ops of its formula,

    s = x * x                          (Mul, or Pow with 2)
    r = s reshaped to (N, 1, C, ...)   (Reshape or Unsqueeze)
    p = Pad(r) on axis 2 by size // 2 before and (size - 1) // 2 after
    a = AveragePool(p), window size along axis 2, 1 elsewhere, stride 1
    d = a reshaped to x's shape        (Squeeze, Reshape, or an If choosing
                                        between Squeeze and Identity)
    y = x / (d * alpha + k) ** beta    (Mul, Add, Pow, Div)

which is ONNX's LRN(size, alpha, beta, bias=k) where size is odd (for an
even size torch's window sits one channel lower than LRN's, and the graph
is left as it is). ``rewrite`` finds these and replaces each by one LRN
node, so such a model (AlexNet exported by torch) imports with one kernel
per layer. The shapes that prove the reshapes regroup nothing but the
channel axis come from onnx's shape inference; where they are unknown the
subgraph is left alone.
"""

import numpy as np

# ops that only regroup the dimensions of their first input, keeping the
# order of its elements
_REGROUP = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"}
# small initializers kept for shape inference to propagate values through
_SMALL = 64


def rewrite(onnx, proto, batch=1):
    """The nodes of ``proto``'s graph to import, with torch's
    LocalResponseNorm subgraphs replaced by LRN nodes (``proto`` is left as
    it is); ``batch`` stands for a symbolic batch dimension of the inputs,
    as the importer fixes it."""
    graph = _Graph(onnx, proto)
    found = [match for match in map(graph.match_lrn, proto.graph.node) if match is not None]
    if not found:
        return list(proto.graph.node)
    shapes = graph.shapes(batch)
    replaced = {}
    for div, x, regrouped, scaled, attrs in found:
        if graph.lrn_shapes_fit(shapes, x, regrouped, scaled):
            replaced[id(div)] = onnx.helper.make_node("LRN", [x], [div.output[0]], name=div.name or div.output[0],
                                                      **attrs)
    if not replaced:
        return list(proto.graph.node)
    nodes = [replaced.get(id(node), node) for node in proto.graph.node]
    return graph.without_dead(nodes, [n for n in proto.graph.node if id(n) in replaced])


class _Graph:
    def __init__(self, onnx, proto):
        self.onnx, self.proto = onnx, proto
        self.opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
        self.initializers = {t.name: t for t in proto.graph.initializer}
        self.producer = {name: node for node in proto.graph.node for name in node.output if name}

    # values ------------------------------------------------------------------------
    def constant(self, name):
        """The numpy value of tensor ``name`` where it is computed from
        constants alone (initializers, Constant nodes and ops over them);
        else None."""
        if name in self.initializers:
            return self.onnx.numpy_helper.to_array(self.initializers[name])
        nodes = self._constant_ancestors(name)
        if nodes is None:
            return None
        helper = self.onnx.helper
        leaves = {i for node in nodes for i in node.input if i in self.initializers}
        graph = helper.make_graph(nodes, "constant", [], [helper.make_empty_tensor_value_info(name)],
                                  [self.initializers[i] for i in sorted(leaves)])
        from onnx.reference import ReferenceEvaluator
        try:
            return np.asarray(ReferenceEvaluator(helper.make_model(
                graph, opset_imports=[helper.make_opsetid("", self.opset)])).run(None, {})[0])
        except Exception:   # an op the evaluator cannot run: not a constant we can use
            return None

    def _constant_ancestors(self, name):
        """The nodes computing ``name`` in graph order, where every leaf is
        a constant; else None."""
        needed, todo = {}, [name]
        while todo:
            tensor = todo.pop()
            if not tensor or tensor in self.initializers:
                continue
            node = self.producer.get(tensor)
            if node is None or any(a.type in (a.GRAPH, a.GRAPHS) for a in node.attribute):
                return None
            if id(node) not in needed:
                needed[id(node)] = node
                todo.extend(node.input)
        return [node for node in self.proto.graph.node if id(node) in needed]

    def scalar(self, name):
        value = self.constant(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    # the match ----------------------------------------------------------------------
    def _made_by(self, tensor, *ops):
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type in ops else None

    def _operand_and_scalar(self, node):
        """(the tensor operand, the scalar constant) of a binary node with
        one constant scalar operand; else (None, None)."""
        for t, c in ((0, 1), (1, 0)):
            value = self.scalar(node.input[c])
            if value is not None and self.constant(node.input[t]) is None:
                return node.input[t], value
        return None, None

    def _regrouped_from(self, tensor):
        """The tensor that ``tensor`` regroups, through any chain of
        element-order-keeping ops (an If whose branches are such ops of one
        outer tensor counts, as torch writes a squeeze of a maybe-1 axis)."""
        while True:
            node = self.producer.get(tensor)
            if node is None:
                return tensor
            if node.op_type in _REGROUP:
                tensor = node.input[0]
            elif node.op_type == "If":
                sources = {_branch_source(a.g) for a in node.attribute if a.name in ("then_branch", "else_branch")}
                if len(sources) != 1 or None in sources:
                    return tensor
                tensor = sources.pop()
            else:
                return tensor

    def match_lrn(self, div):
        """(div, x, the pad's input, what alpha scales, LRN attributes)
        where ``div`` ends torch's LocalResponseNorm of x, as far as the ops
        and constants tell; else None. Walks up from the Div."""
        if div.op_type != "Div" or len(div.input) != 2:
            return None
        x = div.input[0]
        power = self._made_by(div.input[1], "Pow")
        beta = self.scalar(power.input[1]) if power else None
        add = self._made_by(power.input[0], "Add") if beta is not None else None
        base, bias = self._operand_and_scalar(add) if add else (None, None)
        mul = self._made_by(base, "Mul") if base else None
        scaled, alpha = self._operand_and_scalar(mul) if mul else (None, None)
        pool = self._made_by(self._regrouped_from(scaled), "AveragePool") if scaled else None
        pad = self._made_by(pool.input[0], "Pad") if pool else None
        window = self._pool_window(pool) if pad and alpha is not None else None
        if not window or window[0] % 2 == 0:
            return None
        size, regrouped = window[0], pad.input[0]
        square = self._made_by(self._regrouped_from(regrouped), "Mul", "Pow")
        if square is None or not self._pads_channels(pad, size, len(window) + 2):
            return None
        squared = (square.input[0] == square.input[1] == x if square.op_type == "Mul"
                   else square.input[0] == x and self.scalar(square.input[1]) == 2)
        if not squared:
            return None
        return div, x, regrouped, scaled, {"size": size, "alpha": alpha, "beta": beta, "bias": bias}

    def _pool_window(self, pool):
        """The window of an AveragePool that slides only along axis 2
        (stride 1, no padding, length 1 elsewhere); else None."""
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in pool.attribute}
        kernel = list(attrs.get("kernel_shape", []))
        ones = lambda key: all(v == 1 for v in attrs.get(key, []))   # noqa: E731
        plain = (not any(attrs.get("pads", [])) and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
                 and ones("strides") and ones("dilations"))
        if not plain or len(kernel) < 2 or any(k != 1 for k in kernel[1:]):
            return None
        return [int(k) for k in kernel]

    def _pads_channels(self, pad, size, rank):
        """Whether the Pad of a rank-``rank`` tensor adds size // 2 zeros
        before and (size - 1) // 2 after axis 2, and nothing elsewhere."""
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in pad.attribute}
        if attrs.get("mode", b"constant") != b"constant" or len(pad.input) < 2 or (len(pad.input) > 3 and
                                                                                   pad.input[3]):
            return False
        if len(pad.input) > 2 and pad.input[2] and self.scalar(pad.input[2]) != 0:
            return False
        pads = self.constant(pad.input[1])
        if pads is None or pads.shape != (2 * rank,):
            return False
        expected = np.zeros(2 * rank, np.int64)
        expected[2], expected[rank + 2] = size // 2, (size - 1) // 2
        return bool(np.array_equal(pads, expected))

    # shapes -------------------------------------------------------------------------
    def shapes(self, batch):
        """{tensor: dims} from onnx's shape inference (a dim is its value,
        its symbol, or None), with the inputs' symbolic batch dimensions
        set to ``batch`` (so that shapes computed from Shape ops are known);
        large weights are given as typed inputs, so their data is not
        copied."""
        helper, graph = self.onnx.helper, self.proto.graph
        inputs = []
        for info in graph.input:
            fixed = type(info)()
            fixed.CopyFrom(info)
            dims = fixed.type.tensor_type.shape.dim if fixed.type.tensor_type.HasField("shape") else []
            if dims and not dims[0].HasField("dim_value"):
                dims[0].dim_value = batch
            inputs.append(fixed)
        declared = {i.name for i in graph.input}
        small = [t for t in graph.initializer if int(np.prod(t.dims)) <= _SMALL]
        typed = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in graph.initializer
                 if int(np.prod(t.dims)) > _SMALL and t.name not in declared]
        stripped = helper.make_graph(graph.node, graph.name, inputs + typed, graph.output, small)
        model = helper.make_model(stripped, opset_imports=self.proto.opset_import, ir_version=self.proto.ir_version)
        try:
            inferred = self.onnx.shape_inference.infer_shapes(model, data_prop=True).graph
        except Exception:   # shape inference refuses some graphs: then nothing is known
            return {}
        found = {}
        for info in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
            tensor_type = info.type.tensor_type
            if tensor_type.HasField("shape"):
                found[info.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                         for d in tensor_type.shape.dim)
        return found

    @staticmethod
    def lrn_shapes_fit(shapes, x, regrouped, scaled):
        """Whether the pad's input is x regrouped to (N, 1, C, ...) and what
        alpha scales has x's shape again (the pad and the pool, as matched,
        keep the shape between): then the window slides over x's channels
        and nothing else."""
        dims, padded = shapes.get(x), shapes.get(regrouped)
        if not dims or not padded or None in dims or None in padded or len(dims) < 3 or len(padded) < 4:
            return False
        if not all(isinstance(d, int) for d in dims[1:] + padded[1:]):
            return False
        return (padded[0] == dims[0] and padded[1] == 1 and padded[2] == dims[1]
                and int(np.prod(padded[3:])) == int(np.prod(dims[2:])) and shapes.get(scaled) == dims)

    # after the rewrite --------------------------------------------------------------
    def without_dead(self, nodes, replaced):
        """``nodes`` less the nodes that only the replaced ones needed."""
        candidates = {}
        for node in replaced:
            todo = list(node.input[1:])
            while todo:
                producer = self.producer.get(todo.pop())
                if producer is not None and id(producer) not in candidates:
                    candidates[id(producer)] = producer
                    todo.extend(_reads(producer))
        outputs = {o.name for o in self.proto.graph.output}
        while True:
            used = {name for node in nodes for name in _reads(node)} | outputs
            dead = [n for n in nodes if id(n) in candidates and not any(o in used for o in n.output if o)]
            if not dead:
                return nodes
            dead_ids = {id(n) for n in dead}
            nodes = [n for n in nodes if id(n) not in dead_ids]


def _reads(node):
    """Every tensor a node reads: its inputs and the outer tensors its
    subgraphs (If, Loop, Scan branches) use."""
    found = [name for name in node.input if name]
    for attr in node.attribute:
        for graph in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            inner = {o for n in graph.node for o in n.output} | {i.name for i in graph.input} | \
                {t.name for t in graph.initializer}
            found += [name for n in graph.node for name in _reads(n) if name not in inner]
    return found


def _branch_source(graph):
    """The outer tensor that a subgraph's single output regroups, through
    element-order-keeping ops only; else None."""
    if len(graph.output) != 1:
        return None
    producer = {o: n for n in graph.node for o in n.output}
    tensor = graph.output[0].name
    while tensor in producer:
        node = producer[tensor]
        if node.op_type not in _REGROUP:
            return None
        tensor = node.input[0]
    return tensor
