"""Concat on channels. Inputs that can be are written by their producers
straight into their channel range of the output, so the concat itself does
nothing; the others are copied in."""

import numpy as np

from ..errors import ModelError
from .base import In, Launch, Layer, Out, activation_args, flat_launch, i32


class Concat(Layer):
    op = "Concat"

    def __init__(self, name, inputs, axis=1):
        super().__init__(name, inputs)
        if axis != 1:
            raise ModelError(f"Concat node {name!r}: only the channel axis (1) is supported, got {axis}")
        # decided once the graph is known (Model calls decide_in_place)
        self.in_place = [False] * len(self.inputs)

    @property
    def arity(self):
        return len(self.inputs)

    @property
    def is_view(self):
        return all(self.in_place)

    def infer(self, in_shapes):
        n, _, h, w = in_shapes[0]
        for shape in in_shapes[1:]:
            if (shape[0], shape[2], shape[3]) != (n, h, w):
                raise ModelError(f"Concat node {self.name!r}: inputs {in_shapes} differ outside the channel axis")
        self.offsets = list(np.cumsum([0] + [s[1] for s in in_shapes])[:-1])
        return (n, sum(s[1] for s in in_shapes), h, w)

    def flops(self):
        return 0

    def reference(self, *inputs):
        return np.concatenate(inputs, axis=1)

    def decide_in_place(self, model, taken):
        """An input goes in place when a kernel layer produces it, nothing
        else already claimed it, and no view (Flatten) reads it."""
        for index, tensor in enumerate(self.inputs):
            producer = model.producer.get(tensor)
            self.in_place[index] = (
                producer is not None and not producer.is_view and tensor not in taken
                and self.inputs.count(tensor) == 1 and tensor not in model.output_names
                and not any(c.is_view and c is not self for c in model.consumers[tensor]))
            if self.in_place[index]:
                taken.add(tensor)

    def in_place_inputs(self):
        return [(i, int(self.offsets[i])) for i, flag in enumerate(self.in_place) if flag]

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
                found.append(part.shifted_channels(int(self.offsets[index])))
        return found

    def launches(self, profile, box):
        _, _, h, w = self.out_shape
        found = []
        for index, flag in enumerate(self.in_place):
            part = self.input_box(box, index)
            if flag or part is None:
                continue
            offset = int(self.offsets[index])
            count = part.count(w)
            # the copy walks the input's box; the output is that box moved by offset channels
            args = [Out(offset), In(index), In(index), *i32(0, 0), *activation_args(None),
                    *i32(h, w, part.n0, part.c0, part.h0, part.c1 - part.c0, part.h1 - part.h0, count)]
            size, local = flat_launch(profile, count)
            found.append(Launch("eltwise", "clnn_eltwise_box", size, local, args))
        return found
