"""Concat on any axis. On the channel axis, inputs that can be are written
by their producers straight into their channel range of the output, so the
concat itself does nothing, and the others are copied in. On any other
axis each input is an N-D copy into its part of the output."""

import numpy as np

from ..errors import ModelError
from .base import In, Layer, Out
from .eltwise import B_TENSOR, flat_box_launch
from .nd import Axis, IndexMap, Space
from .registry import OpEntry


class Concat(Layer):
    op = "Concat"

    def __init__(self, name, inputs, axis=1):
        super().__init__(name, inputs)
        self.axis = int(axis)
        # decided once the graph is known (the graph calls decide_in_place)
        self.in_place = [False] * len(self.inputs)
        self.offsets = []
        self.maps = None    # off the channel axis: each input's IndexMap

    @property
    def arity(self):
        return len(self.inputs)

    @property
    def is_view(self):
        return all(self.in_place)

    @property
    def on_channels(self):
        return self.maps is None

    def describe(self):
        return "Concat" if self.on_channels else f"Concat axis {self.axis % len(self.out_dims)}"

    def infer(self, in_dims):
        first = in_dims[0]
        rank = len(first)
        if not -rank <= self.axis < rank:
            raise ModelError(f"Concat node {self.name!r}: axis {self.axis} is out of range for rank {rank}")
        axis = self.axis % rank
        for dims in in_dims[1:]:
            if len(dims) != rank or dims[:axis] + dims[axis + 1:] != first[:axis] + first[axis + 1:]:
                raise ModelError(f"Concat node {self.name!r}: inputs {[list(d) for d in in_dims]} differ outside "
                                 f"axis {axis}")
        sizes = [d[axis] for d in in_dims]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        return first[:axis] + (sum(sizes),) + first[axis + 1:]

    def bind(self, in_dims):
        dims = super().bind(in_dims)
        axis = self.axis % len(dims)
        self.maps = None
        if axis != 1:
            out = Space(self.out_dims, self.out_shape)
            self.maps = [IndexMap(out, Space(d, s), [Axis(k, -offset if k == axis else 0) for k in range(len(d))],
                                  "skip")
                         for d, s, offset in zip(self.in_dims, self.in_shapes, self.offsets)]
        return dims

    def flops(self):
        return 0

    def reference(self, *inputs):
        parts = [x.reshape(d) for x, d in zip(inputs, self.in_dims)]
        return np.concatenate(parts, axis=self.axis % len(self.out_dims)).reshape(self.out_shape)

    def decide_in_place(self, graph, taken):
        """An input goes in place when the concat is on channels, a kernel
        layer produces it, nothing else already claimed it, and no view
        (Flatten) reads it."""
        self.in_place = []
        for tensor in self.inputs:
            producer = graph.producer.get(tensor)
            in_place = (self.on_channels and producer is not None and not producer.is_view and tensor not in taken
                        and self.inputs.count(tensor) == 1 and tensor not in graph.output_names
                        and not any(c.is_view and c is not self for c in graph.consumers[tensor]))
            self.in_place.append(in_place)
            if in_place:
                taken.add(tensor)

    def in_place_inputs(self):
        return [(i, self.offsets[i]) for i, flag in enumerate(self.in_place) if flag]

    def input_box(self, out_box, index):
        if not self.on_channels:
            return self.maps[index].input_box(self._part(out_box, index))
        lo, hi = self.offsets[index], self.offsets[index] + self.in_shapes[index][1]
        c0, c1 = max(out_box.c0, lo), min(out_box.c1, hi)
        if self.in_place[index] or c0 >= c1:
            return None
        return out_box.with_range("c", c0 - lo, c1 - lo)

    def _part(self, out_box, index):
        """The part of ``out_box`` that input ``index`` fills, where the
        axis is one of the box's dims (else all of it: the copy skips the
        rest)."""
        axis = self.axis % len(self.out_dims)
        if axis > 2:
            return out_box
        dim = "nch"[axis]
        lo, hi = out_box.range(dim)
        start = self.offsets[index]
        return out_box.with_range(dim, max(lo, start), min(hi, start + self.in_dims[index][axis]))

    def written_boxes(self, out_box):
        if not self.on_channels:
            return [out_box]
        found = []
        for index in range(len(self.inputs)):
            part = self.input_box(out_box, index)
            if part is not None:
                found.append(part.shifted_channels(self.offsets[index]))
        return found

    def params(self, target):
        return {f"map{i}": m.table() for i, m in enumerate(self.maps)} if self.maps else {}

    def launches(self, target, box):
        found = []
        for index, flag in enumerate(self.in_place):
            if not self.on_channels:
                part = self._part(box, index)
                if not part.empty:
                    found.append(self.maps[index].launch(target, self.out_shape, part, index, f"map{index}"))
                continue
            part = self.input_box(box, index)
            if flag or part is None:
                continue
            # the copy walks the input's box; the output is that box moved by offset channels
            args = {"out": Out(self.offsets[index]), "a": In(index), "b": In(index), "op": 0, "bmode": B_TENSOR,
                    "act": 0, "alpha": 0.0, "beta": 0.0}
            found.append(flat_box_launch(target, "clnn_eltwise_box", self.out_shape, part, args))
        return found

    def to_onnx(self, writer):
        writer.node(self, "Concat", list(self.inputs), axis=self.axis % len(self.out_dims))


def _from_onnx(node):
    tensors = [node.tensor(i) for i in range(len(node.proto.input))]
    ranks = {len(node.shape(t)) for t in tensors}
    if len(ranks) > 1:
        node.fail(f"inputs of different ranks {sorted(ranks)}")
    axis = node.attr("axis")
    if axis is None:
        node.fail("attribute axis is required")
    return Concat(node.out, tensors, node.axis(axis, ranks.pop()))


OP = OpEntry(layers=(Concat,), onnx={"Concat": _from_onnx}, sources=("eltwise", "nd"))
