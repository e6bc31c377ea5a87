"""Type checking of an ONNX graph, as onnxruntime does before running it.

Each node's inputs and outputs are checked against its op's schema: every
value bound to one type parameter (Conv's X, W and B to T) has the same
element type, and that type is one the parameter allows. A model that
breaks this (a float16 weight on a float32 convolution) is refused with a
ModelError naming the node and both types, instead of being computed in
float32 anyway.
"""

from .errors import ModelError


def _element_types(onnx, graph):
    """{tensor name: element type} of every tensor whose type the graph
    states or onnx's own inference (not strict) finds."""
    found = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        if info.type.HasField("tensor_type") and info.type.tensor_type.elem_type:
            found[info.name] = info.type.tensor_type.elem_type
    for tensor in graph.initializer:
        found[tensor.name] = tensor.data_type
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value" and node.output:
                    found[node.output[0]] = attribute.t.data_type
    return found


def _skeleton(onnx, proto):
    """``proto`` without the values of its initializers (they become typed
    graph inputs): what type inference needs, without copying the weights."""
    model = onnx.ModelProto()
    model.ir_version = proto.ir_version
    model.opset_import.extend(proto.opset_import)
    model.functions.extend(proto.functions)
    graph = model.graph
    graph.node.extend(proto.graph.node)
    graph.input.extend(proto.graph.input)
    graph.output.extend(proto.graph.output)
    graph.value_info.extend(proto.graph.value_info)
    declared = {i.name for i in proto.graph.input}
    for tensor in proto.graph.initializer:
        if tensor.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
    return model


def _inferred(onnx, proto):
    try:
        return onnx.shape_inference.infer_shapes(_skeleton(onnx, proto), check_type=False, strict_mode=False).graph
    except Exception:  # inference is best effort here: what it cannot type is not checked
        return proto.graph


def _type_name(onnx, elem_type):
    return f"tensor({onnx.helper.tensor_dtype_to_string(elem_type).replace('TensorProto.', '').lower()})"


def _formal(onnx, schema, index, inputs):
    """The formal parameter that actual input (or output) ``index`` binds."""
    formals = schema.inputs if inputs else schema.outputs
    if index < len(formals):
        return formals[index]
    variadic = onnx.defs.OpSchema.FormalParameterOption.Variadic
    return formals[-1] if formals and formals[-1].option == variadic else None


def check_types(onnx, proto, opset):
    """ModelError for the first node whose types its schema does not allow."""
    graph = _inferred(onnx, proto)
    types = _element_types(onnx, graph)
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        where = f"node {node.name or (node.output[0] if node.output else '?')!r} ({node.op_type})"
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
        except Exception:  # an op onnx does not know: the importer refuses it by name
            continue
        allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
        bound = {}
        for names, inputs in ((node.input, True), (node.output, False)):
            for index, name in enumerate(names):
                formal = _formal(onnx, schema, index, inputs)
                if not name or formal is None or name not in types:
                    continue
                actual = _type_name(onnx, types[name])
                param = formal.type_str
                label = f"{'input' if inputs else 'output'} {formal.name} ({name!r})"
                if param in allowed and actual not in allowed[param]:
                    raise ModelError(f"{where}: {label} has type {actual}, which {node.op_type} does not take "
                                     f"(it takes {', '.join(sorted(allowed[param]))})")
                if param not in allowed and param.startswith("tensor(") and actual != param:
                    raise ModelError(f"{where}: {label} has type {actual}; {node.op_type} takes {param} there")
                if param in bound and bound[param][1] != actual:
                    other, other_type = bound[param]
                    raise ModelError(f"{where}: {label} has type {actual} but {other} has type {other_type}; "
                                     f"they must have one type ({param})")
                bound.setdefault(param, (label, actual))
