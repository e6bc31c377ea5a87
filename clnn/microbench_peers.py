"""The peers that clnn.microbench times each layer beside, in the same
process, runs interleaved with clnn's:

- a CPU device: onnxruntime's CPUExecutionProvider, with one intra-op
  thread per compute unit of the device, running the layer alone written as
  an ONNX model (clnn.onnx_export, with the layer's constants);
- a GPU device: torch with cuDNN on CUDA (fp32, TF32 off, cudnn.benchmark
  on), the layer as torch.nn.functional ops (``torch_op``); a layer with no
  torch op here runs in onnxruntime's CUDAExecutionProvider where that is
  installed.

Both are optional: where a peer is not installed, or a layer has none, the
row shows "-" and the JSON says why. Each row's outputs are compared once,
so that a peer time is only shown beside the same computation. A peer's
time is what comes closest to clnn's kernel time: onnxruntime's profiled
node times on the CPU, CUDA events around the op for torch, the wall time of
a run with device-bound inputs for onnxruntime's CUDA provider.
"""

import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .onnx_export import to_onnx
from .ops.eltwise import VARIADIC
from .timing import kernel_span

# float32 on both sides: outputs differ by rounding only (relative to the largest)
AGREEMENT = 1e-3
PEER_WARMUP = 2


class Unavailable(Exception):
    """No peer can run this layer (the message says why)."""


# the peers ---------------------------------------------------------------------------
class NoPeer:
    """Where no peer is installed for a device: every row says why."""

    def __init__(self, why):
        self.description = why

    def runner(self, model, feeds):
        raise Unavailable(self.description)


class OrtPeer:
    """onnxruntime with one execution provider, the layer as a one-layer
    ONNX model."""

    def __init__(self, ort, provider, threads=0, device_id=0):
        self.ort, self.provider, self.threads, self.device_id = ort, provider, threads, device_id
        threads_text = f", {threads} threads" if threads else ""
        self.description = f"onnxruntime {ort.__version__} {provider}{threads_text}"

    def runner(self, model, feeds):
        options = self.ort.SessionOptions()
        options.log_severity_level = 3
        if self.provider == "CPUExecutionProvider":   # its node times, as clnn's are kernel times
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "clnn-microbench-ort")
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        providers = [(self.provider, {"device_id": self.device_id})] if self.provider != "CPUExecutionProvider" \
            else [self.provider]
        try:
            proto = to_onnx(model)
            session = self.ort.InferenceSession(proto.SerializeToString(), options, providers=providers)
        except Exception as exc:  # a layer onnxruntime refuses is a row without a peer, not a failed benchmark
            raise Unavailable(f"onnxruntime: {type(exc).__name__}: {exc}".splitlines()[0][:200]) from exc
        if session.get_providers()[0] != self.provider:
            raise Unavailable(f"onnxruntime did not take {self.provider}")
        if self.provider == "CPUExecutionProvider":
            return OrtCpuRunner(session, feeds)
        return OrtDeviceRunner(self.ort, session, feeds, self.device_id)


class TorchPeer:
    """torch with cuDNN on a CUDA device; ``fallback`` (an OrtPeer or None)
    runs the layers that ``torch_op`` does not map."""

    def __init__(self, torch, index, fallback):
        self.torch, self.device, self.fallback = torch, torch.device("cuda", index), fallback
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True   # as a tuned torch deployment runs
        self.description = (f"torch {torch.__version__} cuDNN {torch.backends.cudnn.version()} on "
                            f"{torch.cuda.get_device_name(index)} (fp32, TF32 off)")
        if fallback:
            self.description += f"; unmapped layers: {fallback.description}"

    def runner(self, model, feeds):
        try:
            op = torch_op(model.layers[0], self.device)
        except Unavailable:
            if self.fallback is None:
                raise
            return self.fallback.runner(model, feeds)
        return TorchRunner(self.torch, op, [feeds[name] for name in model.input_names], self.device)


def peer_for(device):
    """The peer that times layers beside clnn's ``device``."""
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if device.kind == "cpu":
        if ort is None:
            return NoPeer("no peer: onnxruntime is not installed")
        return OrtPeer(ort, "CPUExecutionProvider", threads=device.compute_units)
    if device.kind != "gpu":
        return NoPeer(f"no peer for a {device.kind} device")
    try:
        import torch
    except ImportError:
        torch = None
    cuda = torch is not None and torch.cuda.is_available()
    index = _cuda_index(torch, device) if cuda else 0
    fallback = None
    if ort is not None and "CUDAExecutionProvider" in ort.get_available_providers():
        fallback = OrtPeer(ort, "CUDAExecutionProvider", device_id=index)
    if cuda:
        return TorchPeer(torch, index, fallback)
    return fallback or NoPeer("no peer: neither torch with CUDA nor onnxruntime's CUDA provider is installed")


def _cuda_index(torch, device):
    """The CUDA ordinal of the GPU that clnn names ``device`` (the first
    whose name matches; else 0)."""
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return next((i for i, name in enumerate(names) if name.strip() == device.name.strip()), 0)


# runners: one layer ready to run in a peer -------------------------------------------
# Each has output() (one run, its output), run() (one timed run), times(count)
# (seconds of the last ``count`` timed runs) and close(), timing what is
# closest to clnn's kernel time: the peer's own kernels, without its call
# overhead where the peer can tell.
class OrtCpuRunner:
    """onnxruntime on the CPU, timed by its profiler: the kernel time of the
    nodes of each run (its layout reorders included)."""
    label = "ort"
    shares_cpu = True   # its threads share the cores with clnn's CPU device: let them settle

    def __init__(self, session, feeds):
        self.session, self.feeds, self.events = session, feeds, None

    def output(self):
        return self.session.run(None, self.feeds)[0]

    def run(self):
        self.session.run(None, self.feeds)

    def close(self):
        """Stop profiling: read its file and remove it (a session left to be
        collected would write it anyway)."""
        if self.events is None:
            path = Path(self.session.end_profiling())
            self.events = json.loads(path.read_text())
            path.unlink()

    def times(self, count):
        self.close()
        events = self.events
        runs = [(e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run"][-count:]
        nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
        return [1e-6 * sum(e["dur"] for e in nodes if start <= e["ts"] <= end) for start, end in runs]


class OrtDeviceRunner:
    """onnxruntime on a GPU, inputs and output bound in device memory so
    that no copy is timed; wall time of each run, which returns once the
    device has finished."""
    label = "ort-cuda"
    shares_cpu = False

    def __init__(self, ort, session, feeds, device_id):
        self.session, self.binding, self.seconds = session, session.io_binding(), []
        for name, x in feeds.items():
            self.binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", device_id))
        self.binding.bind_output(session.get_outputs()[0].name, "cuda", device_id)

    def output(self):
        self.session.run_with_iobinding(self.binding)
        return self.binding.copy_outputs_to_cpu()[0]

    def run(self):
        started = time.perf_counter()
        self.session.run_with_iobinding(self.binding)
        self.seconds.append(time.perf_counter() - started)

    def times(self, count):
        return self.seconds[-count:]

    def close(self):
        pass


class TorchRunner:
    """A torch op on inputs already on the device, timed by CUDA events."""
    label = "torch"
    shares_cpu = False

    def __init__(self, torch, op, inputs, device):
        self.torch, self.op, self.events = torch, op, []
        self.inputs = [torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in inputs]

    def output(self):
        with self.torch.inference_mode():
            return self.op(*self.inputs).cpu().numpy()

    def run(self):
        start, end = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
        with self.torch.inference_mode():
            start.record()
            self.op(*self.inputs)
            end.record()
        end.synchronize()   # before clnn's run that follows
        self.events.append((start, end))

    def times(self, count):
        return [start.elapsed_time(end) * 1e-3 for start, end in self.events[-count:]]

    def close(self):
        pass


# measuring ---------------------------------------------------------------------------
def measure(executor, feeds, runs, peer):
    """(clnn's median kernel seconds, {"peer": which runner, "peer_seconds":
    its median, "clnn_per_peer": the ratio, "peer_rel_err": how far its
    output is from clnn's, "peer_note": why there is no peer time}) of a
    one-layer model; ``peer`` None times clnn alone. After a warm-up of
    each, clnn and the peer take turns run by run, so that a drift of the
    machine biases neither."""
    outputs = executor.run(feeds)   # warm-up: builds the kernels
    row = {"peer": None, "peer_seconds": None, "clnn_per_peer": None, "peer_rel_err": None, "peer_note": None}
    runner = None
    try:
        if peer is not None:
            runner = _ready(peer, executor.model, feeds, outputs[0], row)
        ours = []
        for _ in range(runs):
            if runner is not None and runner.shares_cpu:
                settle()
            executor.run(feeds)
            ours.append(kernel_span(executor.timeline()))
            if runner is not None:
                if runner.shares_cpu:
                    settle()
                runner.run()
        seconds = float(np.median(ours))
        if runner is not None:
            row["peer_seconds"] = float(np.median(runner.times(runs)))
            row["clnn_per_peer"] = seconds / row["peer_seconds"]
        return seconds, row
    finally:
        if runner is not None:
            runner.close()


def _ready(peer, model, feeds, expected, row):
    """The peer's runner of the layer, checked against clnn's output
    ``expected`` and warmed up; None (and ``row`` says why) where there is
    none or it computes something else."""
    try:
        runner = peer.runner(model, feeds)
    except Unavailable as exc:
        row["peer_note"] = str(exc)
        return None
    row["peer"] = runner.label
    row["peer_rel_err"] = relative_difference(runner.output(), expected)
    if not row["peer_rel_err"] <= AGREEMENT:
        row["peer_note"] = f"its output differs from clnn's (relative {row['peer_rel_err']:.2g})"
        runner.close()
        return None
    for _ in range(PEER_WARMUP):
        runner.run()
    return runner


def relative_difference(actual, expected):
    """Largest absolute difference relative to the largest magnitude of
    ``expected``; infinite where the shapes' sizes differ or a value is NaN."""
    actual, expected = np.asarray(actual, np.float64).ravel(), np.asarray(expected, np.float64).ravel()
    if actual.size != expected.size:
        return float("inf")
    difference = float(np.max(np.abs(actual - expected), initial=0.0))
    return difference / max(float(np.max(np.abs(expected), initial=0.0)), 1e-30) if difference == difference \
        else float("inf")


def settle(window_s=0.005, busy=0.1, limit_s=0.2):
    """Wait until this process's threads are idle: after a run,
    onnxruntime's worker threads spin for a while, which would slow clnn's
    CPU kernels that run next (and clnn's would slow the peer). Returns once
    a window of ``window_s`` used less than ``busy`` of one core, or after
    ``limit_s``."""
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(window_s)
        if time.process_time() - cpu < busy * (time.perf_counter() - wall):
            return


def cells(row):
    """The peer's columns of a printed row: peer ms, clnn/peer, which peer."""
    if row["peer_seconds"] is None:
        return f"{'-':>9} {'-':>9} {'-':<8}"
    return f"{row['peer_seconds'] * 1e3:9.3f} {row['clnn_per_peer']:9.2f} {row['peer']:<8}"


HEADER = f"{'peer ms':>9} {'clnn/peer':>9} {'peer':<8}"


# torch ops of clnn layers --------------------------------------------------------------
def torch_op(layer, device="cpu"):
    """f(*input tensors) -> output tensor computing bound ``layer`` in
    torch, on tensors of the layer's outside shapes (``layer.in_dims``), its
    constants on ``device``. Raises Unavailable for a layer with no torch
    op here."""
    import torch
    builder = _TORCH_BUILDERS.get(type(layer).__name__)
    if builder is None:
        raise Unavailable(f"no torch op for {type(layer).__name__}")

    def const(array):
        return torch.from_numpy(np.array(array, dtype=np.float32, order="C")).to(device)   # keeps 0-D as 0-D
    return builder(torch, layer, const)


def _torch_activation(torch, spec):
    F = torch.nn.functional
    if spec is None:
        return lambda x: x
    name, *v = spec if isinstance(spec, tuple) else (spec,)
    table = {
        "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "hard_swish": F.hardswish, "silu": F.silu,
        "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "softplus": F.softplus,
        "softsign": F.softsign, "mish": F.mish, "erf": torch.erf, "exp": torch.exp, "log": torch.log,
        "sqrt": torch.sqrt, "neg": torch.neg, "abs": torch.abs, "reciprocal": torch.reciprocal,
        "floor": torch.floor, "ceil": torch.ceil,
        "leaky_relu": lambda x: F.leaky_relu(x, v[0]), "clip": lambda x: torch.clamp(x, v[0], v[1]),
        "hard_sigmoid": lambda x: torch.clamp(v[0] * x + v[1], 0, 1), "elu": lambda x: F.elu(x, v[0]),
        "selu": lambda x: v[1] * torch.where(x > 0, x, v[0] * torch.expm1(x)), "celu": lambda x: F.celu(x, v[0]),
        "thresholded_relu": lambda x: F.threshold(x, v[0], 0.0),
    }
    if name not in table:
        raise Unavailable(f"no torch op for activation {name!r}")
    return table[name]


def _torch_conv2d(torch, layer, const):
    if len(layer.in_dims[0]) != 4:
        raise Unavailable("no torch op for a 1-D convolution")
    a, act = layer.attrs, _torch_activation(torch, layer.activation)
    top, left, bottom, right = a.pads
    even = (top, left) == (bottom, right)
    weight, bias = const(layer.weight), None if layer.bias is None else const(layer.bias)
    F = torch.nn.functional

    def conv(x, residual=None):
        if not even:   # torch pads both sides alike: pad the input first
            x = F.pad(x, (left, right, top, bottom))
        y = F.conv2d(x, weight, bias, a.stride, (top, left) if even else 0, a.dilation, layer.groups)
        return act(y if residual is None else y + residual)
    return conv


def _torch_dense(torch, layer, const):
    weight, bias = const(layer.weight), None if layer.bias is None else const(layer.bias)
    act = _torch_activation(torch, layer.activation)
    return lambda x: act(torch.nn.functional.linear(x.reshape(x.shape[0], -1), weight, bias))


def _torch_pool(torch, layer, const):
    F = torch.nn.functional
    if layer.is_global:
        if layer.kind == "max":
            return lambda x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True)
        return lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
    a = layer.attrs
    top, left, bottom, right = a.pads
    if len(layer.in_dims[0]) != 4 or (top, left) != (bottom, right) or top > a.kernel[0] // 2 \
            or left > a.kernel[1] // 2:
        raise Unavailable(f"no torch pool for a {len(layer.in_dims[0])}-D input with pads {a.pads}")
    if layer.kind == "max":
        return lambda x: F.max_pool2d(x, a.kernel, a.stride, (top, left), a.dilation, a.ceil_mode)
    if a.dilation != (1, 1):
        raise Unavailable("no torch op for a dilated average pool")
    return lambda x: F.avg_pool2d(x, a.kernel, a.stride, (top, left), a.ceil_mode, layer.count_include_pad)


def _torch_lrn(torch, layer, const):
    if layer.size % 2 == 0:   # torch's window of an even size sits one channel off ONNX's
        raise Unavailable(f"no torch op for an LRN of even size {layer.size}")
    return lambda x: torch.nn.functional.local_response_norm(x, layer.size, layer.alpha, layer.beta, layer.bias)


def _torch_concat(torch, layer, const):
    axis = layer.axis % len(layer.out_dims)
    return lambda *inputs: torch.cat(inputs, dim=axis)


def _torch_softmax(torch, layer, const):
    normalise = torch.log_softmax if layer.log else torch.softmax
    axes = layer.rows.axes
    if len(axes) == 1:
        return lambda x: normalise(x, dim=axes[0])
    return lambda x: normalise(x.flatten(axes[0]), dim=axes[0]).reshape(x.shape)   # every axis from axes[0] on


def _torch_activation_layer(torch, layer, const):
    return _torch_activation(torch, layer.activation)


def _torch_scaleshift(torch, layer, const):
    rank = len(layer.in_dims[0])
    shape = (1, -1) + (1,) * (rank - 2) if rank > 1 else (-1,)
    scale, shift = const(layer.scale.reshape(shape)), const(layer.shift.reshape(shape))
    act = _torch_activation(torch, layer.activation)
    return lambda x: act(x * scale + shift)


_TORCH_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "maximum",
                 "Min": "minimum"}


def _torch_binary(torch, layer, const):
    """The operands folded left to right, broadcast as numpy (and torch) do."""
    def step(op):
        if op == "PRelu":
            return lambda x, slope: torch.where(x < 0, x * slope, x)
        return getattr(torch, _TORCH_BINARY[op])
    steps = [step("Max"), step("Min")] if layer.op == "Clip" else \
        [step(VARIADIC.get(layer.op, layer.op))] * (len(layer.operands) - 1)
    operands = [o if isinstance(o, int) else const(o) for o in layer.operands]
    act = _torch_activation(torch, layer.activation)

    def binary(*inputs):
        values = [inputs[o] if isinstance(o, int) else o for o in operands]
        out = values[0]
        for fold, value in zip(steps, values[1:]):
            out = fold(out, value)
        return act(out / len(values) if layer.op == "Mean" else out)
    return binary


def _torch_conv_transpose2d(torch, layer, const):
    """torch's own padding and output padding where they give the layer's
    geometry; else the full output cropped (or extended) to it, then the
    bias, which the extension holds too."""
    F, act = torch.nn.functional, _torch_activation(torch, layer.activation)
    one_d = len(layer.in_dims[0]) == 3
    weight, bias = const(layer.weight), None if layer.bias is None else const(layer.bias.reshape(-1, 1, 1))
    (kh, kw), (sh, sw), (dh, dw) = layer.weight.shape[2:], layer.stride, layer.dilation
    (top, height), (left, width) = layer.geometry
    sizes = layer.in_dims[0][2:] + ((1,) if one_d else ())
    full = [(n - 1) * s + (k - 1) * d + 1 for n, s, k, d in zip(sizes, (sh, sw), (kh, kw), (dh, dw))]
    extra = [out - (f - 2 * pad) for out, f, pad in zip((height, width), full, (top, left))]
    native = top >= 0 and left >= 0 and all(0 <= e < max(s, d) for e, s, d in zip(extra, (sh, sw), (dh, dw)))

    def conv_transpose(x):
        x = x.unsqueeze(-1) if one_d else x
        if native:
            y = F.conv_transpose2d(x, weight, None, layer.stride, (top, left), tuple(extra), layer.groups,
                                   layer.dilation)
        else:   # negative pads of F.pad crop
            y = F.conv_transpose2d(x, weight, None, layer.stride, 0, 0, layer.groups, layer.dilation)
            y = F.pad(y, (-left, left + width - full[1], -top, top + height - full[0]))
        y = act(y if bias is None else y + bias)
        return y.squeeze(-1) if one_d else y
    return conv_transpose


def _torch_instance_norm(torch, layer, const):
    scale, bias = const(layer.scale), const(layer.bias)
    return lambda x: torch.nn.functional.instance_norm(x, weight=scale, bias=bias, eps=layer.epsilon)


# F.pad's name of each of clnn's pad modes other than constant
_TORCH_PAD_MODES = {"edge": "replicate", "reflect": "reflect", "wrap": "circular"}


def _torch_pad(torch, layer, const):
    """Constant pads (negative ones crop) in one F.pad; the other modes crop
    first, then pad the trailing dims from the first padded one on, which
    F.pad takes for at most three dims, with one or two dims before them."""
    F, dims, pads = torch.nn.functional, layer.in_dims[0], layer.pads
    rank = len(dims)
    if layer.mode == "constant":
        flat = tuple(p for k in reversed(range(rank)) for p in (pads[k], pads[rank + k]))   # last dim first
        return lambda x: F.pad(x, flat, value=layer.value)
    windows = [layer._window(k) for k in range(rank)]
    crop = tuple(slice(low, low + length) for low, length, _ in windows)
    widths = [(before, out - before - length) for (_, length, before), out in zip(windows, layer.out_dims)]
    padded = [k for k in range(rank) if widths[k] != (0, 0)]
    first = padded[0] if padded else rank
    if rank - first > 3:
        raise Unavailable(f"no torch pad in {layer.mode} mode over {rank - first} trailing dims (F.pad takes 3)")
    if layer.mode == "wrap" and any(max(w) > length for w, (_, length, _) in zip(widths, windows)):
        raise Unavailable(f"no torch pad wrapping around more than once ({layer.pads} of {list(dims)})")
    flat = tuple(p for k in reversed(range(first, rank)) for p in widths[k])
    inner = tuple(length for _, length, _ in windows[first:])
    outer = tuple(layer.out_dims)
    mode = _TORCH_PAD_MODES[layer.mode]

    def pad(x):
        x = x[crop]
        if not flat:
            return x.contiguous()
        if first not in (1, 2):   # F.pad wants one or two dims before the padded ones
            x = x.reshape((-1,) + inner)
        return F.pad(x, flat, mode=mode).reshape(outer)
    return pad


def _torch_space_to_depth(torch, layer, const):
    """torch's pixel_unshuffle is the CRD order; DCR permutes the blocked
    input as the layer does."""
    b = layer.blocksize
    if layer.mode == "CRD":
        return lambda x: torch.nn.functional.pixel_unshuffle(x, b)
    perm, blocked, out = layer.PERMS["DCR"], layer._blocked(), tuple(layer.out_dims)
    return lambda x: x.reshape(blocked).permute(perm).reshape(out)


def _torch_transpose(torch, layer, const):
    return lambda x: x.permute(layer.order).contiguous()   # the copy, as clnn's


def _torch_resize(torch, layer, const):
    """F.interpolate in the first of its modes that reads the same input
    positions with the same weights as the layer on each axis (found on
    the identity: interpolating it gives the weights), given the output
    size or the scales; Unavailable where none does."""
    F, spatial = torch.nn.functional, len(layer.scales)
    sizes = tuple(layer.out_dims[2:])
    candidates = [("nearest", None), ("nearest-exact", None)] if layer.mode == "nearest" else \
        [("linear", False), ("linear", True)]
    for (mode, corners), by_size in itertools.product(candidates, (True, False)):
        call = {"size": sizes} if by_size else {"scale_factor": layer.scales, "recompute_scale_factor": False}
        if corners is not None:
            call["align_corners"] = corners
        if all(_resize_weights_match(torch, F, mode, call, k, table, layer.in_dims[0][2 + k], sizes[k])
               for k, table in enumerate(layer.tables[:spatial])):
            mode = {1: mode, 2: "bilinear"}[spatial] if mode == "linear" else mode
            return lambda x: F.interpolate(x, mode=mode, **call)
    raise Unavailable(f"no torch interpolation for a {layer.mode} Resize with {layer.coordinate_mode} coordinates"
                      + (f" and {layer.nearest_mode} rounding" if layer.mode == "nearest" else "")
                      + f" by {list(layer.scales)}")


def _resize_weights_match(torch, F, mode, call, axis, table, in_len, out_len):
    """Whether F.interpolate(mode, **call) along ``axis`` gives the weights
    of the layer's (index, weight) ``table`` for that axis."""
    index, weight = table
    if (index < 0).any():   # tf_crop_and_resize's extrapolated positions: torch has none
        return False
    expected = np.zeros((in_len, out_len))
    for k in range(2):
        np.add.at(expected, (index[:, k], np.arange(out_len)), weight[:, k])
    one_axis = {key: (value[axis] if isinstance(value, tuple) else value) for key, value in call.items()}
    try:
        found = F.interpolate(torch.eye(in_len, dtype=torch.float64)[None], mode=mode, **one_axis)[0].numpy()
    except (RuntimeError, ValueError):
        return False
    return found.shape == expected.shape and np.allclose(found, expected, rtol=0, atol=1e-6)


_TORCH_BUILDERS = {"Conv2d": _torch_conv2d, "Dense": _torch_dense, "Pool": _torch_pool, "LRN": _torch_lrn,
                   "Concat": _torch_concat, "Softmax": _torch_softmax, "Activation": _torch_activation_layer,
                   "ScaleShift": _torch_scaleshift, "Binary": _torch_binary, "ConvTranspose2d": _torch_conv_transpose2d,
                   "InstanceNorm": _torch_instance_norm, "Pad": _torch_pad, "SpaceToDepth": _torch_space_to_depth,
                   "Transpose": _torch_transpose, "Resize": _torch_resize}
