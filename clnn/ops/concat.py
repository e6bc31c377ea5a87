"""Concat on channels. Inputs that can be are written by their producers
straight into their channel range of the output, so the concat itself does
nothing; the others are copied in."""

import numpy as np

from ..errors import ModelError
from .base import In, Layer, Out
from .eltwise import B_TENSOR, flat_box_launch
from .registry import OpEntry


class Concat(Layer):
    op = "Concat"

    def __init__(self, name, inputs, axis=1):
        super().__init__(name, inputs)
        if axis != 1:
            raise ModelError(f"Concat node {name!r}: only the channel axis (1) is supported, got {axis}")
        # decided once the graph is known (the graph calls decide_in_place)
        self.in_place = [False] * len(self.inputs)
        self.offsets = []

    @property
    def arity(self):
        return len(self.inputs)

    @property
    def is_view(self):
        return all(self.in_place)

    def infer(self, in_dims):
        first = in_dims[0]
        for dims in in_dims[1:]:
            if len(dims) != len(first) or dims[:1] + dims[2:] != first[:1] + first[2:]:
                raise ModelError(f"Concat node {self.name!r}: inputs {[list(d) for d in in_dims]} differ outside "
                                 "the channel axis")
        channels = [d[1] for d in in_dims]
        self.offsets = [sum(channels[:i]) for i in range(len(channels))]
        return first[:1] + (sum(channels),) + first[2:]

    def flops(self):
        return 0

    def reference(self, *inputs):
        return np.concatenate(inputs, axis=1)

    def decide_in_place(self, graph, taken):
        """An input goes in place when a kernel layer produces it, nothing
        else already claimed it, and no view (Flatten) reads it."""
        self.in_place = []
        for tensor in self.inputs:
            producer = graph.producer.get(tensor)
            in_place = (producer is not None and not producer.is_view and tensor not in taken
                        and self.inputs.count(tensor) == 1 and tensor not in graph.output_names
                        and not any(c.is_view and c is not self for c in graph.consumers[tensor]))
            self.in_place.append(in_place)
            if in_place:
                taken.add(tensor)

    def in_place_inputs(self):
        return [(i, self.offsets[i]) for i, flag in enumerate(self.in_place) if flag]

    def input_box(self, out_box, index):
        lo, hi = self.offsets[index], self.offsets[index] + self.in_shapes[index][1]
        c0, c1 = max(out_box.c0, lo), min(out_box.c1, hi)
        if self.in_place[index] or c0 >= c1:
            return None
        return out_box.with_range("c", c0 - lo, c1 - lo)

    def written_boxes(self, out_box):
        found = []
        for index in range(len(self.inputs)):
            part = self.input_box(out_box, index)
            if part is not None:
                found.append(part.shifted_channels(self.offsets[index]))
        return found

    def launches(self, target, box):
        found = []
        for index, flag in enumerate(self.in_place):
            part = self.input_box(box, index)
            if flag or part is None:
                continue
            # the copy walks the input's box; the output is that box moved by offset channels
            args = {"out": Out(self.offsets[index]), "a": In(index), "b": In(index), "op": 0, "bmode": B_TENSOR,
                    "act": 0, "alpha": 0.0, "beta": 0.0}
            found.append(flat_box_launch(target, "clnn_eltwise_box", self.out_shape, part, args))
        return found

    def to_onnx(self, writer):
        writer.node(self, "Concat", list(self.inputs), axis=1)


def _from_onnx(node):
    tensors = [node.tensor(i) for i in range(len(node.proto.input))]
    ranks = {len(node.shape(t)) for t in tensors}
    if len(ranks) > 1:
        node.fail(f"inputs of different ranks {sorted(ranks)}")
    axis = node.attr("axis")
    if axis is None:
        node.fail("attribute axis is required")
    if node.axis(axis, ranks.pop()) != 1:
        node.fail(f"axis {axis} is not supported; only the channel axis (1) is")
    return Concat(node.out, tensors)


OP = OpEntry(layers=(Concat,), onnx={"Concat": _from_onnx}, sources=("eltwise",))
