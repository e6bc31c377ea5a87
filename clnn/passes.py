"""Graph passes run when a model is built: fold a per-channel scale and
shift (an inference BatchNormalization) into the layer before it, fuse
activations and residual adds into the layer that produces their input.

The passes ask layers what they can absorb (``with_scale_shift``,
``with_activation``, ``with_residual``) and what they are
(``scale_and_shift``, ``standalone_activation``, ``residual_operands``);
they know no layer types. They replace layers by fused copies and never
change a layer object they were given.

A fused layer keeps the name of the first layer of its chain, and the
layers that read the chain's last tensor read it under that name instead;
where the last tensor is a model output, the fused layer takes its name, so
outputs keep theirs.
"""

import copy


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


def optimize(layers, outputs):
    """All passes, in the order that lets each enable the next."""
    layers = list(layers)
    for fuse in (fold_scale_shift, fuse_activations, fuse_residual, fuse_activations):
        layers = fuse(layers, outputs)
    return layers
