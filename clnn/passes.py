"""Graph passes run when a model is built: recognise activations written
as several elementwise nodes, fold a per-channel scale and shift (an
inference BatchNormalization) into the layer before it, fuse activations and
residual adds into the layer that produces their input.

The passes ask layers what they can absorb (``with_scale_shift``,
``with_activation``, ``with_residual``), what they are
(``scale_and_shift``, ``standalone_activation``, ``residual_operands``,
``pointwise``) and for a replacement (``as_activation``); they know no
layer types. They replace layers by fused copies and never change a layer
object they were given.

A fused layer keeps the name of the first layer of its chain, and the
layers that read the chain's last tensor read it under that name instead;
where the last tensor is a model output, the fused layer takes its name, so
outputs keep theirs.
"""

import copy
import functools

import numpy as np

from .ops.base import COMPOSITE_ACTIVATIONS, apply_activation


def _readers(layers, tensor):
    return [layer for layer in layers if tensor in layer.inputs]


def _sole_reader(layers, tensor, outputs):
    readers = _readers(layers, tensor)
    if len(readers) != 1 or tensor in outputs:
        return None
    return readers[0]


def _producer(layers, tensor):
    return next((layer for layer in layers if layer.name == tensor), None)


def _current(layers, test):
    """The layers that pass ``test``, looked up afresh by name as the pass
    replaces layers by fused or renamed copies."""
    for name in [layer.name for layer in layers if test(layer)]:
        layer = _producer(layers, name)
        if layer is not None and test(layer):
            yield layer


def _merge(layers, first, fused, last, outputs):
    """Replace the chain first..last by ``fused`` (a copy of first that now
    computes last)."""
    if last.name in outputs:
        fused.name = last.name
    else:
        for index, layer in enumerate(layers):
            if last.name in layer.inputs:
                renamed = copy.copy(layer)
                renamed.inputs = tuple(fused.name if t == last.name else t for t in layer.inputs)
                layers[index] = renamed
    layers[layers.index(last)] = fused
    layers.remove(first)


def fold_scale_shift(layers, outputs):
    """producer -> per-channel scale and shift becomes one producer."""
    for follower in _current(layers, lambda layer: layer.scale_and_shift() is not None):
        producer = _producer(layers, follower.inputs[0])
        if producer is None or _sole_reader(layers, producer.name, outputs) is not follower:
            continue
        fused = producer.with_scale_shift(*follower.scale_and_shift())
        if fused is not None and follower.activation:
            fused = fused.with_activation(follower.activation)
        if fused is not None:
            _merge(layers, producer, fused, follower, outputs)
    return layers


def fuse_residual(layers, outputs):
    """Add(p(x), r) -> p(x) with r added before its activation."""
    for add in _current(layers, lambda layer: layer.residual_operands() is not None):
        operands = add.residual_operands()
        for mine, other in ((0, 1), (1, 0)):
            producer = _producer(layers, operands[mine])
            if producer is None or _sole_reader(layers, producer.name, outputs) is not add:
                continue
            fused = producer.with_residual(operands[other])
            if fused is not None and add.activation:
                fused = fused.with_activation(add.activation)
            if fused is not None:
                _merge(layers, producer, fused, add, outputs)
                break
    return layers


def fuse_activations(layers, outputs):
    """producer -> Activation becomes the producer with a fused activation."""
    for act in _current(layers, lambda layer: layer.standalone_activation() is not None):
        producer = _producer(layers, act.inputs[0])
        if producer is None or _sole_reader(layers, producer.name, outputs) is not act:
            continue
        fused = producer.with_activation(act.standalone_activation())
        if fused is not None:
            _merge(layers, producer, fused, act, outputs)
    return layers


# Where a group of elementwise layers is compared with an activation: a
# fine grid over the range where activations bend, off the points where
# they have kinks (0, +-3), and large values of both signs.
_FAR = np.array([20.0, 50.0, 100.0, 1e3, 1e4])
PROBES = np.concatenate([np.linspace(-12, 12, 601) + 0.0137, _FAR, -_FAR])
# the most layers one group may have (GELU's tanh form takes 8)
MAX_GROUP = 10


class _Pointwise:
    """The pointwise layers of a graph, and which layers read each tensor."""

    def __init__(self, layers, outputs):
        self.functions = {layer.name: layer.pointwise() for layer in layers}
        self.layers = {layer.name: layer for layer in layers if self.functions[layer.name] is not None}
        self.readers = {}
        for layer in layers:
            for tensor in set(layer.inputs):
                self.readers.setdefault(tensor, []).append(layer.name)
        self.outputs = set(outputs)

    def inner(self, tensor):
        """Whether ``tensor`` may be inside a group: made and read by
        pointwise layers only, and not a model output."""
        return (tensor in self.layers and tensor not in self.outputs
                and all(r in self.layers for r in self.readers.get(tensor, ())))

    def ancestors(self, root):
        """{name: layer} of root and the pointwise layers above it that may
        be inside a group with it, nearest first, at most MAX_GROUP."""
        members, frontier = {root.name: root}, list(root.inputs)
        while frontier and len(members) < MAX_GROUP:
            tensor = frontier.pop(0)
            if tensor not in members and self.inner(tensor):
                members[tensor] = self.layers[tensor]
                frontier.extend(members[tensor].inputs)
        return members

    def group(self, members, root, source):
        """The members that compute root from tensor ``source`` alone, their
        inner tensors read only among them; None where there are none."""
        group = {}

        def reaches(tensor):
            if tensor == source or tensor in group:
                return True
            if tensor not in members:
                return False
            group[tensor] = members[tensor]
            return all(reaches(t) for t in members[tensor].inputs)

        if not reaches(root.name):
            return None
        if any(r not in group for name in group if name != root.name for r in self.readers.get(name, ())):
            return None
        return group

    def replace(self, group, replacement):
        """Note that ``replacement`` took the place of ``group``."""
        for name, layer in group.items():
            for tensor in set(layer.inputs):
                self.readers[tensor].remove(name)
            del self.layers[name], self.functions[name]
        self.layers[replacement.name] = replacement
        self.functions[replacement.name] = replacement.pointwise()
        for tensor in set(replacement.inputs):
            self.readers.setdefault(tensor, []).append(replacement.name)

    def value(self, group, tensor, source, values):
        """The values ``tensor`` takes on PROBES for ``source``."""
        if tensor == source:
            return PROBES
        if tensor not in values:
            inputs = [self.value(group, t, source, values) for t in group[tensor].inputs]
            values[tensor] = np.broadcast_to(self.functions[tensor](*inputs), PROBES.shape)
        return values[tensor]


@functools.lru_cache(maxsize=1)
def _candidates():
    """The values of COMPOSITE_ACTIVATIONS on PROBES (a row each), and how
    far from them a group may be: float32 precision of the value and of
    the input."""
    with np.errstate(all="ignore"):
        values = np.array([apply_activation(PROBES, name) for name in COMPOSITE_ACTIVATIONS])
    return values, 1e-6 * (1 + np.abs(PROBES) + np.abs(values))


def _identify(found):
    """The activation of COMPOSITE_ACTIVATIONS whose values on PROBES
    ``found`` are; None where there is none."""
    values, tolerance = _candidates()
    close = (np.abs(found - values) <= tolerance) | (np.isnan(found) & np.isnan(values))
    matches = np.flatnonzero(close.all(axis=1))
    return COMPOSITE_ACTIVATIONS[matches[0]] if matches.size else None


def recognise_activations(layers, outputs):
    """A group of elementwise layers that computes an activation of one
    tensor becomes that activation (x * Sigmoid(x) is SiLU, x * 0.5 * (1 +
    Erf(x / sqrt 2)) is GELU, Max(x, 0) is ReLU), which the later passes
    fuse into the tensor's producer. The group's inner tensors must be read
    only inside it; the largest group wins."""
    graph = _Pointwise(layers, outputs)
    for name in list(graph.layers):
        root = graph.layers.get(name)
        if root is None:    # replaced, or taken into a group
            continue
        members, best = graph.ancestors(root), None
        with np.errstate(all="ignore"):
            for source in dict.fromkeys(t for layer in members.values() for t in layer.inputs):
                group = graph.group(members, root, source)
                if group is None or (best and len(group) <= len(best[1])):
                    continue
                activation = _identify(graph.value(group, root.name, source, {}))
                if activation is not None and (len(group) > 1 or activation != root.standalone_activation()):
                    best = (source, group, activation)
        replacement = best and root.as_activation(best[0], best[2])
        if replacement:
            layers[layers.index(root)] = replacement
            for member in best[1].values():
                if member is not root:
                    layers.remove(member)
            graph.replace(best[1], replacement)
    return layers


def optimize(layers, outputs):
    """All passes, in the order that lets each enable the next."""
    layers = list(layers)
    for fuse in (recognise_activations, fold_scale_shift, fuse_activations, fuse_residual, fuse_activations):
        layers = fuse(layers, outputs)
    return layers
