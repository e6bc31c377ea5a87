"""Graph passes run when a model is built: fold a per-channel scale and
shift (an inference BatchNormalization) into the convolution before it,
fuse activations and residual adds into the layer that produces their input.

A fused layer keeps the name of the first layer of its chain, and the
layers that read the chain's last tensor read it under that name instead;
where the last tensor is a model output, the fused layer takes its name, so
outputs keep theirs.
"""

import numpy as np

from .ops import Activation, Binary, Conv2d, ScaleShift

FUSES_ACTIVATION = (Conv2d, Binary, ScaleShift)


def _consumers(layers):
    found = {}
    for layer in layers:
        for tensor in layer.inputs:
            found.setdefault(tensor, []).append(layer)
    return found


def _sole_consumer(layers, tensor, outputs):
    readers = _consumers(layers).get(tensor, [])
    if len(readers) != 1 or tensor in outputs:
        return None
    return readers[0]


def _merge(layers, first, last, outputs):
    """Replace the chain first..last by ``first``, which now computes last."""
    if last.name in outputs:
        first.name = last.name
    else:
        old = last.name
        for layer in layers:
            if old in layer.inputs:
                layer.inputs = tuple(first.name if t == old else t for t in layer.inputs)
    layers[layers.index(last)] = first
    del layers[[i for i, layer in enumerate(layers) if layer is first][0]]


def fold_scale_shift(layers, outputs):
    """conv -> ScaleShift becomes one conv with scaled weights and bias."""
    for conv in [layer for layer in layers if type(layer) is Conv2d]:
        follower = _sole_consumer(layers, conv.name, outputs)
        if not isinstance(follower, ScaleShift) or conv.activation or conv.has_residual:
            continue
        if follower.scale.size != conv.weight.shape[0]:
            continue
        scale, shift = follower.scale.astype(np.float64), follower.shift.astype(np.float64)
        conv.weight = (conv.weight * scale.reshape(-1, 1, 1, 1)).astype(np.float32)
        bias = conv.bias.astype(np.float64) if conv.bias is not None else 0.0
        conv.bias = (bias * scale + shift).astype(np.float32)
        conv.activation = follower.activation
        _merge(layers, conv, follower, outputs)
    return layers


def fuse_residual(layers, outputs):
    """Add(conv(x), r) -> conv(x) with r added before its activation."""
    for add in [layer for layer in layers if isinstance(layer, Binary)]:
        if add.op != "Add" or add.constant is not None or add.mode != 0 or len(set(add.inputs)) != 2:
            continue
        if add.in_shapes[0] != add.in_shapes[1]:
            continue
        for mine, other in ((0, 1), (1, 0)):
            conv = next((layer for layer in layers if layer.name == add.inputs[mine]), None)
            if (type(conv) is Conv2d and not conv.activation and not conv.has_residual
                    and _sole_consumer(layers, conv.name, outputs) is add):
                conv.inputs = conv.inputs + (add.inputs[other],)
                conv.activation = add.activation
                _merge(layers, conv, add, outputs)
                break
    return layers


def fuse_activations(layers, outputs):
    """producer -> Activation becomes the producer with a fused activation."""
    for act in [layer for layer in layers if type(layer) is Activation]:
        producer = next((layer for layer in layers if layer.name == act.inputs[0]), None)
        if (isinstance(producer, FUSES_ACTIVATION) and not producer.activation
                and _sole_consumer(layers, producer.name, outputs) is act):
            producer.activation = act.activation
            _merge(layers, producer, act, outputs)
    return layers


def optimize(layers, outputs):
    """All passes, in the order that lets each enable the next."""
    layers = list(layers)
    for fuse in (fold_scale_shift, fuse_activations, fuse_residual, fuse_activations):
        layers = fuse(layers, outputs)
    return layers
