"""The peer that a Jetson user would otherwise run: torch with cuDNN (fp32,
TF32 off) on the same network with the same weights as a clnn model, on a
slice of the GPU's SMs through torch's green contexts.

``Network(model)`` is a torch module that runs a clnn model's layers (after
clnn's fusions: BatchNorm folded into convolutions, activations and residual
adds fused) with torch's functional ops. ``python benchmarks/torch_peer.py``
is a worker that edge_balance.py talks to over stdin and stdout, one JSON
request and one JSON reply per line, so that torch and CUDA's libraries stay
out of the process that runs PoCL and clnn's CUDA contexts.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # clnn of this checkout

import clnn  # noqa: E402
from clnn.ops.eltwise import B_CHANNEL, B_SCALAR  # noqa: E402
from clnn.timing import random_feeds  # noqa: E402

CHECK_TOLERANCE = 1e-3  # fp32 on both sides: differences are rounding


def _activation(activation):
    name, *values = (activation,) if not isinstance(activation, tuple) else activation
    return {
        None: lambda x: x,
        "relu": F.relu,
        "leaky_relu": lambda x: F.leaky_relu(x, values[0] if values else 0.01),
        "clip": lambda x: torch.clamp(x, *values),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
    }[name]


def _window(attrs):
    """(padding for torch, or None where the pads are uneven)."""
    top, left, bottom, right = attrs.pads
    if (top, left) != (bottom, right):
        return None
    return top, left


class Network(torch.nn.Module):
    """A clnn model's layers as torch ops, over the same 4-D storage shapes
    that clnn's numpy reference uses."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.steps = []
        for index, layer in enumerate(model.layers):
            self.steps.append((layer, self._op(layer, f"l{index}")))

    def _tensor(self, prefix, name, array):
        key = f"{prefix}_{name}"
        self.register_buffer(key, torch.from_numpy(np.ascontiguousarray(array, np.float32)))
        return key

    def _op(self, layer, prefix):
        kind = type(layer).__name__
        builder = getattr(self, f"_{kind.lower()}", None)
        if builder is None:
            raise NotImplementedError(f"no torch peer for {kind} ({layer.name})")
        return builder(layer, prefix)

    def _conv2d(self, layer, prefix):
        w = self._tensor(prefix, "w", layer.weight)
        b = self._tensor(prefix, "b", layer.bias) if layer.bias is not None else None
        attrs, act = layer.attrs, _activation(layer.activation)
        padding = _window(attrs)
        top, left, bottom, right = attrs.pads

        def conv(x, residual=None):
            if padding is None:
                x = F.pad(x, (left, right, top, bottom))
            y = F.conv2d(x, getattr(self, w), getattr(self, b) if b else None, attrs.stride, padding or 0,
                         attrs.dilation, layer.groups)
            return act(y + residual if residual is not None else y)
        return conv

    def _dense(self, layer, prefix):
        w = self._tensor(prefix, "w", layer.weight)
        b = self._tensor(prefix, "b", layer.bias) if layer.bias is not None else None
        act = _activation(layer.activation)
        return lambda x: act(F.linear(x.reshape(x.shape[0], -1), getattr(self, w), getattr(self, b) if b else None))

    def _pool(self, layer, prefix):
        if layer.is_global:
            return (lambda x: x.amax(dim=(2, 3), keepdim=True)) if layer.kind == "max" else \
                (lambda x: x.mean(dim=(2, 3), keepdim=True))
        attrs = layer.attrs
        padding = _window(attrs)
        if padding is None:
            raise NotImplementedError(f"{layer.name}: uneven pool padding {attrs.pads}")
        if layer.kind == "max":
            return lambda x: F.max_pool2d(x, attrs.kernel, attrs.stride, padding, attrs.dilation, attrs.ceil_mode)
        if attrs.dilation != (1, 1):
            raise NotImplementedError(f"{layer.name}: dilated average pool")
        return lambda x: F.avg_pool2d(x, attrs.kernel, attrs.stride, padding, attrs.ceil_mode,
                                      layer.count_include_pad)

    def _lrn(self, layer, prefix):
        if layer.size % 2 == 0:  # torch's window of an even size sits one channel off ONNX's
            raise NotImplementedError(f"{layer.name}: LRN of even size {layer.size}")
        return lambda x: F.local_response_norm(x, layer.size, layer.alpha, layer.beta, layer.bias)

    def _concat(self, layer, prefix):
        return lambda *inputs: torch.cat(inputs, dim=1)

    def _reshape(self, layer, prefix):
        return lambda x: x

    def _softmax(self, layer, prefix):
        return lambda x: torch.softmax(x, dim=1)

    def _activation(self, layer, prefix):
        return _activation(layer.activation)

    def _scaleshift(self, layer, prefix):
        scale = self._tensor(prefix, "scale", layer.scale.reshape(1, -1, 1, 1))
        shift = self._tensor(prefix, "shift", layer.shift.reshape(1, -1, 1, 1))
        act = _activation(layer.activation)
        return lambda x: act(x * getattr(self, scale) + getattr(self, shift))

    def _binary(self, layer, prefix):
        ops = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}
        op, act = ops[layer.op], _activation(layer.activation)
        constant = None
        if layer.constant is not None:
            constant = self._tensor(prefix, "b", layer._operand4(layer.constant))

        def binary(a, b=None):
            b = getattr(self, constant) if constant else _operand(layer, b)
            return act(op(b, a) if layer.reverse else op(a, b))
        return binary

    def forward(self, *inputs):
        model = self.model
        values = {name: x.reshape(model.shapes[name]) for name, x in zip(model.input_names, inputs)}
        for layer, op in self.steps:
            values[layer.name] = op(*[values[t] for t in layer.inputs]).reshape(layer.out_shape)
        return [values[n].reshape(model.dims[n]) for n in model.output_names]


def _operand(layer, b):
    """A second input tensor shaped for broadcasting as clnn's kernel reads it."""
    if layer.mode == B_SCALAR:
        return b.reshape(1, 1, 1, 1)
    if layer.mode == B_CHANNEL:
        return b.reshape(1, -1, 1, 1)
    return b.reshape((-1,) + tuple(layer.out_shape[1:]))


def rel_err(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def _median_ms(run, sync, runs, warmup):
    for _ in range(warmup):
        run()
    sync()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        sync()
        samples.append(time.perf_counter() - started)
    return 1e3 * float(np.median(samples))


def load(spec, batch):
    """A zoo model by name, or an ONNX file by path, as clnn loads it."""
    return clnn.models.get(spec, batch=batch) if spec in clnn.models.ZOO else clnn.load(spec, batch=batch)


def export(request):
    """torchvision's ``export`` network (random weights) as ONNX at ``path``,
    for a batch of ``batch`` 224x224 images."""
    import torchvision
    network = getattr(torchvision.models, request["export"])(weights=None).eval()
    example = (torch.randn(request["batch"], 3, 224, 224),)
    try:  # the TorchScript exporter: needs neither onnxscript nor a network
        torch.onnx.export(network, example, request["path"], opset_version=17, dynamo=False)
    except TypeError:  # a torch without the dynamo switch
        torch.onnx.export(network, example, request["path"], opset_version=17)
    return {"path": request["path"]}


def measure(request):
    """Median milliseconds of the model per SM count (None: the whole GPU),
    and the relative difference of its outputs from ``expected`` (a .npy of
    clnn's first output for the same seeded feeds)."""
    model = load(request["model"], request["batch"])
    device = torch.device(request.get("device", "cuda"))
    torch.backends.cudnn.benchmark = request.get("cudnn_benchmark", True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    network = Network(model).to(device).eval()
    inputs = [torch.from_numpy(a).to(device) for a in random_feeds(model).values()]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    reply = {"ms": {}}
    with torch.inference_mode():
        outputs = network(*inputs)
        sync()
        if request.get("expected"):
            reply["rel_err"] = rel_err(outputs[0].cpu().numpy(), np.load(request["expected"]))
        for sms in request["sms"]:
            green = None
            if sms is not None and device.type == "cuda":
                green = torch.cuda.green_contexts.GreenContext.create(num_sms=sms, device_id=device.index or 0)
                green.set_context()
            try:
                reply["ms"][str(sms)] = _median_ms(lambda: network(*inputs), sync, request["runs"],
                                                   request.get("warmup", 3))
            finally:
                if green is not None:
                    sync()
                    green.pop_context()
    return reply


def worker():
    """Replies go to the original stdout; anything else written there, by
    Python or by a library, goes to stderr instead."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = export(request) if "export" in request else measure(request)
        except Exception as exc:  # reported in the row, the sweep goes on
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    worker()
