"""Where tensors live and what a reader must receive.

Storage planning: a Concat input written in place is a channel range of the
Concat's storage, and a view (Flatten, Reshape) shares its source's storage;
every other tensor has its own. Both the executor (which allocates and binds
storage) and the planner (which prices what moves) use the same views, and
the same rule for which boxes a reader must receive from whom.

Storages whose lives do not overlap take turns in one slot of memory
(``share_storage``), so a run needs about the memory of the tensors alive at
once, not of all of them; the executor makes each new tenant's writers wait
for everything that touched the slot's previous one.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from .box import Box, subtract_all


@dataclass(frozen=True)
class View:
    """A tensor as a part of its storage: a channel range of it (a Concat
    input written in place) or all of it reshaped (Flatten, Reshape)."""
    storage: str
    shape: tuple                # the tensor's own 4-D storage shape
    c_offset: int = 0
    reshaped: bool = False

    def storage_box(self, box, storage_shape):
        """The box of the storage that holds ``box`` of this tensor."""
        if self.reshaped:
            if self.shape[0] == storage_shape[0]:  # batch items stay whole and in place
                return Box(box.n0, box.n1, 0, storage_shape[1], 0, storage_shape[2])
            return Box.whole(storage_shape)
        return box.shifted_channels(self.c_offset)

    def kernel_args(self, buffer, storage_shape):
        """(buffer, element offset, batch stride) as kernels address a tensor."""
        _, c, h, w = storage_shape
        plane = self.shape[2] * self.shape[3]
        batch_stride = int(np.prod(self.shape[1:])) if self.reshaped else c * h * w
        return [buffer, np.int32(self.c_offset * plane), np.int32(batch_stride)]


def plan_storage(graph):
    """{tensor: View}: which storage each tensor of ``graph`` lives in."""
    parent = {}
    for layer in reversed(graph.layers):
        for index, offset in layer.in_place_inputs():
            parent[layer.inputs[index]] = (layer.name, offset)
    views = {}

    def resolve(name):
        if name in views:
            return views[name]
        shape = graph.shapes[name]
        layer = graph.producer.get(name)
        if name in parent:
            owner, offset = parent[name]
            base = resolve(owner)
            view = View(base.storage, shape, base.c_offset + offset)
        elif layer is not None and layer.is_view and not layer.in_place_inputs():
            view = View(resolve(layer.inputs[0]).storage, shape, reshaped=True)
        else:
            view = View(name, shape)
        views[name] = view
        return view

    for name in graph.shapes:
        resolve(name)
    return views


def to_receive(box, held_here, held_elsewhere):
    """What a reader must receive to hold ``box`` of a tensor: [(tag,
    piece)], the parts of ``box`` not in ``held_here`` (boxes the reader
    already holds), each with the tag of a holder in ``held_elsewhere``
    ((box, tag) pairs) that has it, or None where nobody does."""
    missing = subtract_all(box, held_here)
    found = []
    for part_held, tag in held_elsewhere:
        if not missing:
            break
        remaining = []
        for piece in missing:
            common = piece.intersect(part_held)
            if common is None:
                remaining.append(piece)
            else:
                found.append((tag, common))
                remaining.extend(piece.subtract(part_held))
        missing = remaining
    return found + [(None, piece) for piece in missing]


@dataclass
class Slot:
    size: int                                    # elements: its largest tenant's
    tenants: list = field(default_factory=list)  # storage names, in the order they live there


def lifetimes(graph, views):
    """{storage: (index of the first layer that writes it, index of the last
    that reads it)}; model inputs live from before the first layer (-1) and
    outputs to after the last."""
    index = {layer.name: i for i, layer in enumerate(graph.layers)}
    end = len(graph.layers)
    first, last = {}, {}
    for name, view in views.items():
        storage = view.storage
        producer = graph.producer.get(name)
        if producer is None:
            first[storage] = -1
        elif not producer.is_view:
            first[storage] = min(first.get(storage, end), index[name])
        reads = [index[reader.name] for reader in graph.consumers.get(name, [])]
        if name in graph.output_names:
            reads.append(end)
        last[storage] = max([last.get(storage, -1), *reads])
    return {s: (first[s], max(last.get(s, first[s]), first[s])) for s in first}


def share_storage(graph, views, share=True):
    """Slots of memory, each holding storages whose lives do not overlap in
    turn; model inputs and outputs (which the host fills and reads) keep
    slots of their own, and every storage does with ``share=False``. A
    storage takes the smallest free slot it fits, else the largest free one
    grows to fit it, else a new slot."""
    lives = lifetimes(graph, views)
    own = set(lives) if not share else {views[n].storage for n in graph.input_names + graph.output_names}
    slots, busy, free = [], [], []     # busy: (last reader, slot index)
    for storage in sorted(lives, key=lambda s: (lives[s][0], s)):
        start, end = lives[storage]
        size = math.prod(graph.shapes[storage])
        for ended in [b for b in busy if b[0] < start]:
            busy.remove(ended)
            free.append(ended[1])
        fits = sorted((i for i in free if slots[i].size >= size), key=lambda i: slots[i].size)
        if storage in own or not free:
            slots.append(Slot(size))
            chosen = len(slots) - 1
        else:
            chosen = fits[0] if fits else max(free, key=lambda i: slots[i].size)
            free.remove(chosen)
            slots[chosen].size = max(slots[chosen].size, size)
        slots[chosen].tenants.append(storage)
        if storage not in own:
            busy.append((end, chosen))
    return slots
