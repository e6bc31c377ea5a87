"""Folding of shape computations, on the ONNX model, before import.

Exporters wrap reshapes and resizes in small graphs that compute the target
shape from an input's shape (torch: Shape -> Gather -> Unsqueeze -> Concat ->
Reshape). Once the graph inputs' sizes are fixed, every node of such a graph
has known inputs and can be evaluated on the host. ``fold`` does that with
numpy and returns a new model in which each folded node's used outputs are
initializers and the nodes left with no use are gone; the rest of the graph
is untouched. The folded model holds for the input shapes given only.

A node is folded when each of its inputs is known: an initializer, a
Constant node or a folded result. Shape and Size need only a static shape of
their input (given, or from ONNX shape inference run with the inputs'
shapes fixed), and If only its condition (the taken branch is inlined). So
nothing that reads a computed tensor's values is ever folded. Before a node
is evaluated it is checked against its ONNX schema at the model's opset
(input and output counts, attributes and their types, element types), and
the op's form at that opset (an attribute or an input) is read from the
schema; any fault raises ModelError naming the node, its op and the fault.
"""

import math
from collections import Counter

import numpy as np

from .errors import ModelError

DEFAULT_DOMAINS = ("", "ai.onnx")
# the element types folded; others (strings, bfloat16, float8) leave the node as it is
FOLDABLE = tuple(np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                       np.uint32, np.uint64, np.float16, np.float32, np.float64))
MAX_ELEMENTS = 1 << 26          # the largest constant a fold may create
INFER_ELEMENTS = 1024           # larger constants reach shape inference as typed inputs, not values


def fold(proto, shapes=None, in_place=False):
    """A copy of ONNX ModelProto ``proto`` (or, ``in_place``, ``proto``
    itself) with its constant subgraphs folded, given the concrete shape of
    each graph input in ``shapes`` ({name: shape}; an input left out keeps
    the static shape it declares)."""
    import onnx
    return _Folder(onnx, proto, shapes or {}, in_place).run()


class _Folder:
    def __init__(self, onnx, proto, shapes, in_place=False):
        self.onnx = onnx
        if in_place:
            self.model = proto
        else:
            self.model = onnx.ModelProto()
            self.model.CopyFrom(proto)
        self.graph = self.model.graph
        versions = [o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS]
        self.opset = max(versions) if versions else None
        self.tensors = {t.name: t for t in self.graph.initializer}  # read into values when first needed
        self.values = {}
        self.shapes = {}
        initializers = set(self.tensors)
        self.input_shapes = {}
        for info in self.graph.input:
            if info.name in initializers:
                continue
            shape = shapes.get(info.name)
            if shape is None:
                shape = _static_shape(info)
            if shape is not None:
                self.input_shapes[info.name] = tuple(int(d) for d in shape)
        self.names = _defined_names(self.graph)

    def run(self):
        if self.opset is None:
            return self.model
        nodes = list(self.graph.node)
        changed = False
        while True:
            self._infer(nodes)
            nodes, folded = self._pass(nodes)
            changed |= bool(folded)
            # a fold can make more shapes static (a Reshape's target, say): infer again
            if not folded or not any(n.op_type in ("Shape", "Size") for n in nodes):
                break
        if changed:
            self._rebuild(nodes)
        return self.model

    # what is known ---------------------------------------------------------------------
    def known(self, name):
        return name in self.values or name in self.tensors

    def value(self, name):
        if name not in self.values:
            try:
                self.values[name] = self.onnx.numpy_helper.to_array(self.tensors[name])
            except Exception as exc:  # external data that cannot be found, corrupt or unknown types
                raise ModelError(f"initializer {name!r}: cannot read its value: {exc}") from exc
        return self.values[name]

    def shape(self, name):
        if name in self.values:
            return self.values[name].shape
        if name in self.tensors:
            return tuple(self.tensors[name].dims)
        return self.input_shapes.get(name, self.shapes.get(name))

    def _infer(self, nodes):
        """Static shapes of the tensors that ONNX shape inference finds, with
        the graph inputs' shapes fixed; what it cannot infer stays unknown."""
        onnx, helper = self.onnx, self.onnx.helper
        model = onnx.ModelProto()
        model.ir_version = self.model.ir_version
        model.opset_import.extend(self.model.opset_import)
        model.functions.extend(self.model.functions)
        graph = model.graph
        graph.node.extend(nodes)
        for info in self.graph.input:
            if info.name in self.input_shapes:
                elem = info.type.tensor_type.elem_type
                graph.input.append(helper.make_tensor_value_info(info.name, elem, self.input_shapes[info.name]))
            elif info.name not in self.tensors:
                graph.input.append(info)
        # small constants go in as values (shape inference propagates them), large ones as typed inputs
        for name in list(self.tensors) + [n for n in self.values if n not in self.tensors]:
            tensor = self.tensors.get(name)
            size = math.prod(self.shape(name))
            external = tensor is not None and tensor.data_location == onnx.TensorProto.EXTERNAL
            if size <= INFER_ELEMENTS and not external:
                graph.initializer.append(tensor if tensor is not None
                                         else onnx.numpy_helper.from_array(self.values[name], name))
            else:
                elem = tensor.data_type if tensor is not None else helper.np_dtype_to_tensor_dtype(
                    self.values[name].dtype)
                graph.input.append(helper.make_tensor_value_info(name, elem, self.shape(name)))
        for info in self.graph.output:
            out = graph.output.add()
            out.name = info.name
            out.type.CopyFrom(info.type)
            if out.type.HasField("tensor_type"):
                out.type.tensor_type.ClearField("shape")
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception:  # inference is a help here, never a requirement
            return
        for info in list(inferred.graph.value_info) + list(inferred.graph.output):
            shape = _static_shape(info)
            if shape is not None:
                self.shapes[info.name] = shape

    # folding ---------------------------------------------------------------------------
    def _pass(self, nodes):
        """The nodes left after folding all that can be, in order."""
        kept, folded = [], False
        todo = list(reversed(nodes))
        while todo:
            proto = todo.pop()
            result = self._fold(proto)
            if result is None:
                kept.append(proto)
                continue
            folded = True
            todo.extend(reversed(result))  # an If's taken branch, folded in turn
        return kept, folded

    def _fold(self, proto):
        """None (the node stays), or the nodes that replace it (none where
        its outputs became values)."""
        if proto.domain not in DEFAULT_DOMAINS or proto.op_type not in EVALUATORS:
            return None
        node = _Node(self, proto)
        if not node.ready():
            return None
        node.check_schema()
        with np.errstate(all="ignore"):
            try:
                result = EVALUATORS[proto.op_type](node)
            except ModelError:
                raise
            except (ValueError, IndexError, TypeError, OverflowError, ZeroDivisionError) as exc:
                node.fail(str(exc))
        if result is None:
            return None
        node.check_all_read()
        if proto.op_type == "If":
            return result
        result = [np.asarray(value) for value in result]
        if any(value.dtype not in FOLDABLE for value in result):
            return None
        self.values.update((name, value) for name, value in zip(proto.output, result) if name)
        return []

    def _rebuild(self, nodes):
        """The graph with ``nodes`` less those whose outputs nothing uses,
        the used values as initializers."""
        onnx, graph = self.onnx, self.graph
        outputs = [o.name for o in graph.output]
        live = set(outputs)
        kept = []
        for node in reversed(nodes):
            if any(name in live for name in node.output):
                kept.append(node)
                live.update(_reads(node))
        kept.reverse()
        produced = {name for node in kept for name in node.output}
        original = {t.name for t in graph.initializer}
        # a graph output that was folded is produced by a Constant node
        constants = [onnx.helper.make_node("Constant", [], [name], name=name,
                                           value=onnx.numpy_helper.from_array(self.values[name], name))
                     for name in dict.fromkeys(outputs)
                     if name in self.values and name not in produced and name not in original]
        produced.update(outputs)
        listed = {i.name for i in graph.input}
        added = [self.tensors[n] if n in self.tensors else onnx.numpy_helper.from_array(self.values[n], n)
                 for n in sorted(live - original - produced) if self.known(n)]
        value_info = [v for v in graph.value_info if v.name in produced]
        graph.ClearField("node")
        graph.node.extend(constants + kept)
        # the dead initializers go in place: the live ones (the weights) are not copied
        for index in reversed(range(len(graph.initializer))):
            if graph.initializer[index].name not in live and graph.initializer[index].name not in listed:
                del graph.initializer[index]
        graph.initializer.extend(added)
        graph.ClearField("value_info")
        graph.value_info.extend(value_info)

    def inline(self, node, branch):
        """The nodes of If ``node``'s taken ``branch`` as nodes of the outer
        graph, and an Identity per output from the branch's result."""
        if len(branch.input):
            node.fail(f"branch {branch.name!r} has inputs; If branches take none")
        if len(branch.output) != len(node.proto.output):
            node.fail(f"branch {branch.name!r} has {len(branch.output)} outputs for the node's "
                      f"{len(node.proto.output)}")
        if len(branch.sparse_initializer):
            return None
        # ONNX names are single assignments across subgraphs too, the other branch aside
        branches = [a.g for a in node.proto.attribute if a.name in ("then_branch", "else_branch")]
        outside = self.names - sum((_defined_names(b) for b in branches), Counter())
        inner = {t.name for t in branch.initializer} | {o for n in branch.node for o in n.output if o}
        clashes = sorted(n for n in inner if outside[n])
        if clashes:
            node.fail(f"branch {branch.name!r} defines {clashes[0]!r}, which is defined outside it too")
        for tensor in branch.initializer:
            self.tensors[tensor.name] = tensor
        helper = self.onnx.helper
        results = [helper.make_node("Identity", [source.name], [target], name=f"{node.name}_{target}")
                   for source, target in zip(branch.output, node.proto.output) if target]
        return list(branch.node) + results


def _static_shape(info):
    """The static shape that a ValueInfoProto declares, or None."""
    if info.type.WhichOneof("value") != "tensor_type" or not info.type.tensor_type.HasField("shape"):
        return None
    dims = info.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


def _subgraphs(node):
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _defined_names(graph):
    """How often each value name is defined in ``graph`` and its subgraphs."""
    names = Counter(i.name for i in graph.input)
    names.update(t.name for t in graph.initializer)
    for node in graph.node:
        names.update(o for o in node.output if o)
        for sub in _subgraphs(node):
            names += _defined_names(sub)
    return names


def _reads(node):
    """The names ``node`` reads, those its subgraphs read from outside included."""
    names = {i for i in node.input if i}
    for sub in _subgraphs(node):
        for inner in sub.node:
            names |= _reads(inner)
        names.update(o.name for o in sub.output)
    return names


class _Node:
    """A node being folded: its inputs' values and shapes, its attributes
    (marked as read, so that one the evaluator ignores is an error)."""

    def __init__(self, folder, proto):
        self.folder = folder
        self.proto = proto
        self.op = proto.op_type
        self.name = proto.name or (proto.output[0] if proto.output else "?")
        self.prefix = f"node {self.name!r} ({self.op})"
        self.attrs = {a.name: a for a in proto.attribute}
        self.unread = set(self.attrs)
        self.schema = None

    def fail(self, text):
        raise ModelError(f"{self.prefix}: {text}")

    def ready(self):
        """Whether every input the evaluation reads is known."""
        present = [n for n in self.proto.input if n]
        if self.op in ("Shape", "Size"):
            return all(self.folder.shape(n) is not None for n in present)
        if self.op == "If":
            present = present[:1]
        if self.op == "Constant" and not {"value", "value_float", "value_floats", "value_int",
                                          "value_ints"} & set(self.attrs):
            return False
        return all(self.folder.known(n) for n in present) and all(
            self.folder.value(n).dtype in FOLDABLE for n in present)

    def check_schema(self):
        """The node against its ONNX schema at the model's opset."""
        onnx, opset = self.folder.onnx, self.folder.opset
        try:
            schema = onnx.defs.get_schema(self.op, opset, "")
        except onnx.defs.SchemaError:
            self.fail(f"there is no {self.op} in opset {opset}")
        self.schema = schema
        inputs, outputs = list(self.proto.input), list(self.proto.output)
        while inputs and not inputs[-1]:
            inputs.pop()
        if not schema.min_input <= len(inputs) <= schema.max_input:
            self.fail(f"it has {len(inputs)} inputs; {self.op} takes {_count(schema.min_input, schema.max_input)}")
        if not schema.min_output <= len(outputs) <= schema.max_output:
            self.fail(f"it has {len(outputs)} outputs; {self.op} gives "
                      f"{_count(schema.min_output, schema.max_output)}")
        if not outputs[0]:
            self.fail("its first output has no name")
        formals = list(schema.inputs)
        types = {}
        for index, name in enumerate(inputs):
            formal = formals[min(index, len(formals) - 1)]
            if not name:
                if formal.option != onnx.defs.OpSchema.FormalParameterOption.Optional:
                    self.fail(f"input {index} ({formal.name}) is required")
                continue
            if self.op not in ("Shape", "Size"):    # they read no values
                self._check_type(index, formal, types)
        for attr in self.proto.attribute:
            spec = schema.attributes.get(attr.name)
            if spec is None:
                self.fail(f"{self.op} has no attribute {attr.name!r} in opset {opset}")
            if attr.type != spec.type:
                self.fail(f"attribute {attr.name!r} is {_attr_type(onnx, attr.type)}; "
                          f"it must be {_attr_type(onnx, spec.type)}")
        for name, spec in schema.attributes.items():
            if spec.required and name not in self.attrs:
                self.fail(f"attribute {name!r} is required")

    def _check_type(self, index, formal, types):
        onnx = self.folder.onnx
        dtype = self.folder.value(self.proto.input[index]).dtype
        elem = onnx.TensorProto.DataType.Name(onnx.helper.np_dtype_to_tensor_dtype(dtype)).lower()
        allowed = {formal.type_str}
        for constraint in self.schema.type_constraints:
            if constraint.type_param_str == formal.type_str:
                allowed = set(constraint.allowed_type_strs)
        if f"tensor({elem})" not in allowed:
            self.fail(f"input {index} ({self.proto.input[index]!r}) has type {elem}, which {self.op} does not take "
                      f"as {formal.name}")
        first = types.setdefault(formal.type_str, (index, elem))   # inputs of one type parameter
        if first[1] != elem:
            self.fail(f"inputs {first[0]} and {index} have types {first[1]} and {elem}; they must be the same")

    def check_all_read(self):
        if self.unread:
            self.fail(f"attribute {sorted(self.unread)[0]!r} is not supported")

    # inputs ---------------------------------------------------------------------------------
    def has(self, index):
        return index < len(self.proto.input) and self.proto.input[index] != ""

    def value(self, index):
        return self.folder.value(self.proto.input[index])

    def values(self):
        return [self.folder.value(n) for n in self.proto.input if n]

    def broadcast_values(self):
        """The inputs' values, checked to broadcast to a shape of bounded size."""
        values = self.values()
        try:
            shape = np.broadcast_shapes(*(v.shape for v in values))
        except ValueError:
            self.fail(f"inputs of shapes {', '.join(str(list(v.shape)) for v in values)} do not broadcast")
        self.check_size(shape)
        return values

    def shape(self, index):
        return tuple(self.folder.shape(self.proto.input[index]))

    def ints(self, index, what):
        """Input ``index`` as a list of ints (a 1-D or scalar integer tensor)."""
        value = self.value(index)
        if value.ndim > 1 or value.dtype.kind not in "iu":
            self.fail(f"{what} must be a 1-D integer tensor, got {value.dtype} of shape {value.shape}")
        return [int(v) for v in value.reshape(-1)]

    def scalar(self, index, what):
        value = self.value(index)
        if value.size != 1:
            self.fail(f"{what} must be a scalar, got shape {value.shape}")
        return value.reshape(-1)[0]

    # attributes -------------------------------------------------------------------------
    def attr(self, name, default=None):
        self.unread.discard(name)
        if name not in self.attrs:
            return default
        return self.folder.onnx.helper.get_attribute_value(self.attrs[name])

    def ints_of(self, name, index):
        """A list of ints that is attribute ``name`` in this op's version, or
        input ``index`` in a later one (Squeeze's axes since 13, say); None
        where absent."""
        if name in self.schema.attributes:
            value = self.attr(name)
            return None if value is None else [int(v) for v in value]
        return self.ints(index, name) if self.has(index) else None

    def axis(self, value, rank):
        if not -rank <= value < rank:
            self.fail(f"axis {value} is out of range for rank {rank}")
        return value % rank

    def axes(self, values, rank):
        axes = [self.axis(a, rank) for a in values]
        if len(set(axes)) != len(axes):
            self.fail(f"axes {values} repeat an axis")
        return axes

    def array(self, tensor, what):
        """The numpy value of a TensorProto attribute."""
        try:
            return self.folder.onnx.numpy_helper.to_array(tensor)
        except Exception as exc:  # corrupt data or unknown types
            self.fail(f"cannot read {what}: {exc}")

    def check_size(self, shape):
        if any(d < 0 for d in shape):
            self.fail(f"shape {list(shape)} has a negative size")
        if math.prod(shape) > MAX_ELEMENTS:
            self.fail(f"it makes a constant of shape {list(shape)}; clnn folds at most {MAX_ELEMENTS} elements")


def _count(low, high):
    return f"{low}" if low == high else f"{low} or more" if high > 1 << 20 else f"{low} to {high}"


def _attr_type(onnx, kind):
    return onnx.AttributeProto.AttributeType.Name(kind)


# evaluators: each takes a _Node and returns its output values (or, for If, the nodes
# that replace it; None leaves the node unfolded) ------------------------------------------

def _shape(node):
    shape = node.shape(0)
    start, end = node.attr("start", 0), node.attr("end", len(shape))
    return [np.array(shape[start:end], np.int64)]     # Python's slice clamps as ONNX does


def _size(node):
    return [np.array(math.prod(node.shape(0)), np.int64)]


def _constant(node):
    if len(node.attrs) != 1:
        node.fail(f"it sets {len(node.attrs)} value attributes ({', '.join(sorted(node.attrs))}); "
                  "exactly one is needed")
    (key,) = node.attrs
    value = node.attr(key)
    if key == "value":
        return [node.array(value, "its value")]
    return [np.array(value, np.float32 if "float" in key else np.int64)]


def _constant_of_shape(node):
    shape = node.ints(0, "the shape")
    node.check_size(shape)
    fill = node.attr("value")
    fill = np.zeros(1, np.float32) if fill is None else node.array(fill, "value")
    if fill.size != 1:
        node.fail(f"value must hold one element, got shape {fill.shape}")
    return [np.full(shape, fill.reshape(-1)[0], fill.dtype)]


def _identity(node):
    return [node.value(0)]


def _cast(node):
    node.attr("saturate")    # both change float8 results only, which are not folded
    node.attr("round_mode")
    to = node.attr("to")
    try:
        dtype = np.dtype(node.folder.onnx.helper.tensor_dtype_to_np_dtype(to))
    except Exception:
        node.fail(f"to={to} is not an ONNX element type")
    if dtype not in FOLDABLE:
        return None
    return [node.value(0).astype(dtype)]


def _gather(node):
    data, indices = node.value(0), node.value(1)
    axis = node.axis(node.attr("axis", 0), data.ndim)
    size = data.shape[axis]
    if indices.size and (indices.min() < -size or indices.max() >= size):
        node.fail(f"indices {indices.reshape(-1).tolist()} are out of range for axis {axis} of size {size}")
    return [np.take(data, np.where(indices < 0, indices + size, indices).astype(np.int64), axis=axis)]


def _slice_bounds(start, end, step, size):
    """Python's slice for ONNX Slice's start, end and step over ``size``."""
    start += size if start < 0 else 0
    end += size if end < 0 else 0
    if step > 0:
        return slice(min(max(start, 0), size), min(max(end, 0), size), step)
    start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
    return slice(start, None if end < 0 else end, step) if size else slice(0, 0)


def _slice(node):
    data = node.value(0)
    starts, ends = node.ints(1, "starts"), node.ints(2, "ends")
    axes = node.ints(3, "axes") if node.has(3) else list(range(len(starts)))
    steps = node.ints(4, "steps") if node.has(4) else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        node.fail(f"starts, ends, axes and steps have {len(starts)}, {len(ends)}, {len(axes)} and {len(steps)} "
                  "values; they must have as many")
    if 0 in steps:
        node.fail("steps must not be 0")
    index = [slice(None)] * data.ndim
    for axis, start, end, step in zip(node.axes(axes, data.ndim), starts, ends, steps):
        index[axis] = _slice_bounds(start, end, step, data.shape[axis])
    return [data[tuple(index)]]


def _concat(node):
    values = node.values()
    ranks = {v.ndim for v in values}
    if len(ranks) > 1:
        node.fail(f"inputs of ranks {sorted(ranks)}; they must have one rank")
    axis = node.axis(node.attr("axis"), ranks.pop())
    return [np.concatenate(values, axis=axis)]


def _squeeze(node):
    data = node.value(0)
    axes = node.ints_of("axes", 1)
    if axes is None:
        return [data.reshape([d for d in data.shape if d != 1])]
    axes = node.axes(axes, data.ndim)
    for a in axes:
        if data.shape[a] != 1:
            node.fail(f"axis {a} has size {data.shape[a]}; only axes of size 1 can be squeezed")
    return [np.squeeze(data, axis=tuple(axes))]


def _unsqueeze(node):
    data = node.value(0)
    axes = node.ints_of("axes", 1)
    if axes is None:
        node.fail("axes are required")
    return [np.expand_dims(data, tuple(node.axes(axes, data.ndim + len(axes))))]


def _split(node):
    data = node.value(0)
    axis = node.axis(node.attr("axis", 0), data.ndim)
    size, count = data.shape[axis], len(node.proto.output)
    sizes = node.ints_of("split", 1)
    parts = node.attr("num_outputs")
    if sizes is not None and parts is not None:
        node.fail("split and num_outputs cannot both be given")
    if sizes is None:
        if parts is not None and parts != count:
            node.fail(f"num_outputs {parts} differs from its {count} outputs")
        chunk = -(-size // count)
        if parts is None and size % count:
            node.fail(f"axis {axis} of size {size} does not split into {count} equal parts")
        sizes = [min(chunk, size - i * chunk) for i in range(count)]
    if len(sizes) != count or sum(sizes) != size or min(sizes) < 0:
        node.fail(f"split {sizes} does not cut axis {axis} of size {size} into {count} parts")
    return np.split(data, np.cumsum(sizes)[:-1], axis=axis)


def _reshape(node):
    data, target = node.value(0), node.ints(1, "the shape")
    shape = list(target)
    if not node.attr("allowzero", 0):
        shape = [data.shape[i] if s == 0 and i < data.ndim else s for i, s in enumerate(shape)]
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        node.fail(f"shape {target} has more than one -1 or a negative size")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape and known:
        shape[shape.index(-1)] = data.size // known
    if math.prod(shape) != data.size:
        node.fail(f"cannot reshape {list(data.shape)} to {target}")
    return [data.reshape(shape)]


def _transpose(node):
    data = node.value(0)
    perm = node.attr("perm")
    perm = list(range(data.ndim))[::-1] if perm is None else list(perm)
    if sorted(perm) != list(range(data.ndim)):
        node.fail(f"perm {perm} is not a permutation of the {data.ndim} axes")
    return [np.transpose(data, perm)]


def _flatten(node):
    data = node.value(0)
    axis = node.attr("axis", 1)
    if not -data.ndim <= axis <= data.ndim:
        node.fail(f"axis {axis} is out of range for rank {data.ndim}")
    axis += data.ndim if axis < 0 else 0
    return [data.reshape(math.prod(data.shape[:axis]), math.prod(data.shape[axis:]))]


def _expand(node):
    data, shape = node.value(0), node.ints(1, "the shape")
    if any(d < 0 for d in shape):
        node.fail(f"shape {shape} has a negative size")
    try:
        out = np.broadcast_shapes(data.shape, tuple(shape))
    except ValueError:
        node.fail(f"cannot expand {list(data.shape)} to {shape}")
    node.check_size(out)
    return [np.broadcast_to(data, out).copy()]


def _tile(node):
    data, repeats = node.value(0), node.ints(1, "repeats")
    if len(repeats) != data.ndim or min(repeats, default=0) < 0:
        node.fail(f"repeats {repeats} must be {data.ndim} non-negative values")
    node.check_size([d * r for d, r in zip(data.shape, repeats)])
    return [np.tile(data, repeats)]


def _range(node):
    start, limit, delta = (node.scalar(i, what) for i, what in enumerate(("start", "limit", "delta")))
    node.attr("stash_type")    # the precision of float ranges; exact for the integer ranges of shapes
    if delta == 0:
        node.fail("delta must not be 0")
    dtype = node.value(0).dtype
    count = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    if dtype.kind in "iu":
        count = max(-(-(int(limit) - int(start)) // int(delta)), 0)
    node.check_size([count])
    return [(start + np.arange(count) * delta).astype(dtype)]


def _where(node):
    return [np.where(*node.broadcast_values())]


def _if(node):
    if node.value(0).size != 1:
        node.fail(f"the condition must be one value, got shape {node.value(0).shape}")
    taken = "then_branch" if node.value(0).reshape(-1)[0] else "else_branch"
    node.attr("then_branch" if taken == "else_branch" else "else_branch")
    return node.folder.inline(node, node.attr(taken))


def _reduce(function):
    def evaluate(node):
        data = node.value(0)
        axes = node.ints_of("axes", 1)
        keep = bool(node.attr("keepdims", 1))
        if not axes:
            if node.attr("noop_with_empty_axes", 0):
                return [data]
            axes = list(range(data.ndim))
        return [function(data, axis=tuple(node.axes(axes, data.ndim)), keepdims=keep, dtype=data.dtype)]
    return evaluate


def _elementwise(function):
    """An op over its inputs (broadcast), its result in the first input's type."""
    def evaluate(node):
        values = node.broadcast_values()
        return [np.asarray(function(*values)).astype(values[0].dtype)]
    return evaluate


def _compare(function):
    def evaluate(node):
        return [function(*node.broadcast_values())]
    return evaluate


def _div(node):
    a, b = node.broadcast_values()
    if a.dtype.kind == "f":
        return [(a / b).astype(a.dtype)]
    if np.any(b == 0):
        node.fail("integer division by zero")
    quotient = np.abs(a) // np.abs(b)      # ONNX rounds integer quotients toward zero
    return [np.where((a < 0) != (b < 0), -quotient, quotient).astype(a.dtype)]


def _mod(node):
    a, b = node.broadcast_values()
    fmod = node.attr("fmod", 0)
    if fmod not in (0, 1):
        node.fail(f"fmod must be 0 or 1, got {fmod}")
    if a.dtype.kind == "f" and not fmod and node.schema.since_version < 28:
        node.fail(f"fmod=0 is not defined for {a.dtype} inputs before opset 28")
    if a.dtype.kind != "f" and np.any(b == 0):
        node.fail("integer modulo by zero")
    return [(np.fmod(a, b) if fmod else np.mod(a, b)).astype(a.dtype)]


def _pow(node):
    """x ** y in x's type (y may be of another numeric type, as since opset 12)."""
    x, y = node.broadcast_values()
    if x.dtype.kind != "f" and np.any(y < 0):
        node.fail("an integer base to a negative power")
    return [np.power(x, y.astype(x.dtype)).astype(x.dtype)]


def _cumsum(node):
    data = node.value(0)
    axis = node.axis(int(node.scalar(1, "axis")), data.ndim)
    reverse, exclusive = node.attr("reverse", 0), node.attr("exclusive", 0)
    values = np.flip(data, axis) if reverse else data
    out = np.cumsum(values, axis=axis, dtype=data.dtype)
    if exclusive:
        out = out - values
    return [np.flip(out, axis) if reverse else out]


def _clip(node):
    x = node.value(0)
    low = node.scalar(1, "min") if node.has(1) else None
    high = node.scalar(2, "max") if node.has(2) else None
    out = x if low is None else np.maximum(x, low)
    return [(out if high is None else np.minimum(out, high)).astype(x.dtype)]


SCATTER = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _scatter_nd(node):
    """data with the slices that indices' last axis points at replaced by (or
    reduced with) updates; Swin's attention mask is built this way."""
    data, indices, updates = node.values()
    reduction = node.attr("reduction", "none")
    reduction = reduction.decode() if isinstance(reduction, bytes) else reduction
    if reduction != "none" and reduction not in SCATTER:
        node.fail(f"reduction {reduction!r} is not none, add, mul, max or min")
    depth = indices.shape[-1] if indices.ndim else 0
    if indices.dtype.kind not in "iu" or indices.ndim < 1 or depth > data.ndim:
        node.fail(f"indices of shape {list(indices.shape)} do not index a {list(data.shape)} tensor")
    if updates.shape != indices.shape[:-1] + data.shape[depth:]:
        node.fail(f"updates of shape {list(updates.shape)} do not fit indices {list(indices.shape)} into "
                  f"{list(data.shape)}")
    where = indices.reshape(-1, depth).astype(np.int64)
    bounds = np.array(data.shape[:depth], np.int64)
    if where.size and (np.any(where < -bounds) or np.any(where >= bounds)):
        node.fail(f"indices are out of range for {list(data.shape)}")
    where = tuple(np.where(where < 0, where + bounds, where).T)
    out, rows = data.copy(), updates.reshape((-1,) + data.shape[depth:]).astype(data.dtype)
    if reduction == "none":
        out[where] = rows
    else:
        SCATTER[reduction].at(out, where, rows)
    return [out]


def _variadic(function):
    def evaluate(node):
        values = node.broadcast_values()
        out = values[0]
        for v in values[1:]:
            out = function(out, v)
        return [np.asarray(out).astype(values[0].dtype)]
    return evaluate


EVALUATORS = {
    "Shape": _shape, "Size": _size, "Constant": _constant, "ConstantOfShape": _constant_of_shape,
    "Identity": _identity, "Cast": _cast, "Gather": _gather, "Slice": _slice, "Concat": _concat,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Split": _split, "Reshape": _reshape,
    "Transpose": _transpose, "Flatten": _flatten, "Expand": _expand, "Tile": _tile, "Range": _range,
    "Where": _where, "If": _if,
    "ReduceSum": _reduce(np.sum), "ReduceProd": _reduce(np.prod),
    "Add": _elementwise(np.add), "Sub": _elementwise(np.subtract), "Mul": _elementwise(np.multiply),
    "Div": _div, "Mod": _mod, "Neg": _elementwise(np.negative), "Abs": _elementwise(np.abs),
    "Floor": _elementwise(np.floor), "Ceil": _elementwise(np.ceil), "Sqrt": _elementwise(np.sqrt),
    "Reciprocal": _elementwise(np.reciprocal), "Pow": _pow,
    "ScatterND": _scatter_nd, "CumSum": _cumsum, "Clip": _clip,
    # float functions of constants (positional encodings): numpy's float32 results may differ from
    # onnxruntime's in the last bit
    "Exp": _elementwise(np.exp), "Log": _elementwise(np.log), "Sin": _elementwise(np.sin),
    "Cos": _elementwise(np.cos),
    "Min": _variadic(np.minimum), "Max": _variadic(np.maximum),
    "Equal": _compare(np.equal), "Greater": _compare(np.greater), "Less": _compare(np.less),
    "GreaterOrEqual": _compare(np.greater_equal), "LessOrEqual": _compare(np.less_equal),
    "Not": _compare(np.logical_not), "And": _compare(np.logical_and), "Or": _compare(np.logical_or),
    "Xor": _compare(np.logical_xor),
}
