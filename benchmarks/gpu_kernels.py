"""clnn's GPU kernels against torch (cuDNN, fp32, TF32 off), layer by layer
and model by model, on NVIDIA's OpenCL device: one call on the GPU machine.

    source .whl/gpu-env.sh && python3 benchmarks/gpu_kernels.py            # ~5 minutes
    python benchmarks/gpu_kernels.py --quick --devices portable --gpu-kernels-on-cpu   # a check without a GPU

Stage "models": each model (the zoo, resnet50, mobilenet_v2; batch 1 and 16)
on the device with its default tuning: device time of its kernels replayed
back to back, wall time of a run (with the PCIe copies of input and
output), and torch's forward of the same layers and weights.

Stage "layers": every distinct conv, dense and pool shape of those models;
for each, every candidate kernel/parameter set (GEMM tiles with K split as
the cost model picks, no split, Winograd F(4x4) and F(2x2), GEMV work-group
shapes) timed with profiling events, and torch's version of the layer
(conv + bias + residual + activation) timed with CUDA events. Each output is
checked against torch's (against clnn's float64 reference without torch).

Prints a table as it goes and writes everything to $OUT/gpu-kernels.json
(--json), after every layer, so that a run cut short still leaves its
results. Candidates that fail print their error and the run goes on; once
--budget seconds are spent the remaining shapes are skipped (and listed).
"""

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import replace

import numpy as np

import clnn
from clnn import Model
from clnn import models as zoo
from clnn.partition.tune import launch_key, layer_run, replay_seconds
from clnn.box import Box
from clnn.executor import Executor
from clnn.ops import (LRN, Activation, Concat, Conv2d, Dense, GemmTile, GemvShape, Pool, Reshape, Softmax, Target,
                      winograd)
from clnn.ops.tuning import tuning_for
from clnn.plan import Plan

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the development machine: clnn alone
    torch = None

TILES = [GemmTile(128, 128, 8, 8, 8), GemmTile(64, 128, 8, 4, 8), GemmTile(128, 64, 16, 8, 4),
         GemmTile(64, 64, 16, 4, 4), GemmTile(64, 32, 16, 4, 4)]
GEMV_SHAPES = [GemvShape(16, 256, 64, 4), GemvShape(16, 256, 64, 2), GemvShape(16, 256, 128, 2),
               GemvShape(16, 128, 32, 4), GemvShape(16, 256, 128, 4)]
EVERYWHERE = {"winograd_min_channels": 1, "winograd_min_tiles": 1}
OPS = {"Conv", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
MODELS = ("vgg16", "resnet18", "resnet50", "squeezenet", "alexnet", "mobilenet_v2", "lenet5", "fcnn")


# models outside the zoo --------------------------------------------------------------
class Builder:
    """Layers with He-initialised weights and small biases (BatchNorm folded)."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.layers = []

    def conv(self, name, x, cin, cout, k, stride=1, groups=1, act="relu", residual=None):
        w = (self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2 / (cin // groups * k * k)))
        b = self.rng.standard_normal(cout) * 0.01
        inputs = (x, residual) if residual else x
        self.layers.append(Conv2d(name, inputs, w.astype(np.float32), b.astype(np.float32), stride=stride,
                                  pads=k // 2, groups=groups, activation=act))
        return name

    def head(self, x, features):
        self.layers += [Pool("avgpool", x, "avg"), Reshape("flatten", "avgpool"),
                        Dense("fc", "flatten", (self.rng.standard_normal((1000, features)) * 0.01).astype(np.float32),
                              np.zeros(1000, np.float32))]
        return "fc"


def resnet50(batch=1, seed=0):
    b = Builder(seed)
    x = b.conv("conv1", "input", 3, 64, 7, stride=2)
    b.layers.append(Pool("maxpool", x, "max", kernel=3, stride=2, pads=1))
    x, cin = "maxpool", 64
    for stage, (mid, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            name = f"layer{stage}.{block}"
            shortcut = x
            if block == 0:
                shortcut = b.conv(f"{name}.downsample", x, cin, mid * 4, 1, stride=stride, act=None)
            y = b.conv(f"{name}.conv1", x, cin, mid, 1)
            y = b.conv(f"{name}.conv2", y, mid, mid, 3, stride=stride)
            x = b.conv(f"{name}.conv3", y, mid, mid * 4, 1, residual=shortcut)
            cin = mid * 4
    return Model({"input": (batch, 3, 224, 224)}, b.layers, [b.head(x, 2048)], name="resnet50")


def mobilenet_v2(batch=1, seed=0):
    b = Builder(seed)
    relu6 = ("clip", 0.0, 6.0)
    x = b.conv("features.0", "input", 3, 32, 3, stride=2, act=relu6)
    cin, index = 32, 1
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)):
        for i in range(n):
            stride = s if i == 0 else 1
            name, hidden = f"features.{index}", cin * t
            y = b.conv(f"{name}.expand", x, cin, hidden, 1, act=relu6) if t != 1 else x
            y = b.conv(f"{name}.dw", y, hidden, hidden, 3, stride=stride, groups=hidden, act=relu6)
            x = b.conv(f"{name}.project", y, hidden, c, 1, act=None,
                       residual=x if stride == 1 and cin == c else None)
            cin, index = c, index + 1
    x = b.conv("features.18", x, cin, 1280, 1, act=relu6)
    return Model({"input": (batch, 3, 224, 224)}, b.layers, [b.head(x, 1280)], name="mobilenet_v2")


def get_model(name, batch):
    builders = {"resnet50": resnet50, "mobilenet_v2": mobilenet_v2}
    return builders[name](batch) if name in builders else zoo.get(name, batch=batch)


def quick_models(batch):
    """Tiny layers of every kind the candidates cover, for --quick."""
    b = Builder(0)
    x = b.conv("conv3x3", "input", 8, 32, 3)
    x = b.conv("conv3x3_c32", x, 32, 16, 3)
    y = b.conv("conv1x1", x, 16, 24, 1)
    y = b.conv("conv3x3_s2", y, 24, 24, 3, stride=2)
    y = b.conv("dw", y, 24, 24, 3, groups=24)
    b.layers.append(Pool("pool", y, "max", kernel=2, stride=2))
    b.layers.append(Reshape("flat", "pool"))
    rng = np.random.default_rng(1)
    b.layers.append(Dense("fc", "flat", (rng.standard_normal((40, 24 * 2 * 2)) * 0.1).astype(np.float32),
                          np.zeros(40, np.float32), activation="relu"))
    return {"quick": Model({"input": (batch, 8, 9, 9)}, b.layers, ["fc"], name="quick")}


# candidates ---------------------------------------------------------------------------
def candidates(layer, device):
    """(label, Tuning) pairs worth timing on ``layer``: the device's tuning
    ("default"), then each GEMM tile alone (K split as the cost model says),
    the default tiles with no split, and Winograd F(4x4) and F(2x2) forced
    (3x3 stride-1 layers with 16 input channels or more); GEMV shapes for
    dense layers; on NVIDIA, the default capped at 128 registers."""
    base = tuning_for(device)
    found = [("default", base)]
    if "NVIDIA" in device.platform and (isinstance(layer, Conv2d) and layer.groups == 1 or isinstance(layer, Dense)):
        found.append(("default maxrreg128", replace(base, build_options=("-cl-nv-maxrregcount=128",))))
    if isinstance(layer, Dense) and layer.uses_gemv(Target("gpu")):
        found += [(f"gemv {s}", replace(base, gemv=(s,))) for s in GEMV_SHAPES]
    elif isinstance(layer, Dense) or isinstance(layer, Conv2d) and layer.groups == 1:
        found += [(f"gemm {t}", replace(base, conv_tiles=(t,), winograd=0)) for t in TILES]
        found.append(("gemm no-split", replace(base, winograd=0, max_split=1)))
        if isinstance(layer, Conv2d) and winograd.eligible(layer) and layer.in_shapes[0][1] >= 16:
            found += [("wino4", replace(base, winograd=4, **EVERYWHERE)),
                      ("wino2", replace(base, winograd=2, **EVERYWHERE))]
    return found


def target_of(device, tuning, kind=None):
    """The device's Target with ``tuning``; ``kind`` forces the kernels of
    that kind (--gpu-kernels-on-cpu)."""
    target = Target.of(device, tuning)
    return replace(target, kind=kind) if kind else target


# torch -------------------------------------------------------------------------------
def torch_activation(y, activation):
    name, *values = (activation,) if not isinstance(activation, tuple) else activation
    if name is None:
        return y
    if name == "relu":
        return F.relu(y)
    if name == "leaky_relu":
        return F.leaky_relu(y, values[0])
    if name == "clip":
        return torch.clamp(y, values[0], values[1])
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh}[name](y)


def torch_layer(layer):
    """A function of torch tensors computing ``layer`` as clnn does (4-D
    tensors; dense ones N x K x 1 x 1)."""
    if isinstance(layer, Dense):
        w = torch.from_numpy(layer.weight.reshape(layer.weight.shape[:2])).cuda()
        b = None if layer.bias is None else torch.from_numpy(layer.bias).cuda()
        return lambda x: torch_activation(F.linear(x.reshape(x.shape[0], -1), w, b), layer.activation)[:, :, None, None]
    if isinstance(layer, Conv2d):
        w = torch.from_numpy(layer.weight).cuda()
        b = None if layer.bias is None else torch.from_numpy(layer.bias).cuda()
        pt, pl, pb, pr = layer.attrs.pads
        same = pt == pb and pl == pr

        def conv(x, residual=None):
            if not same:
                x = F.pad(x, (pl, pr, pt, pb))
            y = F.conv2d(x, w, b, layer.attrs.stride, (pt, pl) if same else 0, layer.attrs.dilation, layer.groups)
            if residual is not None:
                y = y + residual
            return torch_activation(y, layer.activation)
        return conv
    if isinstance(layer, Pool):
        if layer.is_global:
            return (lambda x: x.mean((2, 3), keepdim=True)) if layer.kind == "avg" else \
                (lambda x: x.amax((2, 3), keepdim=True))
        pt, pl, pb, pr = layer.attrs.pads
        if pt != pb or pl != pr:
            raise NotImplementedError("asymmetric pool padding")
        if layer.kind == "max":
            return lambda x: F.max_pool2d(x, layer.attrs.kernel, layer.attrs.stride, (pt, pl), layer.attrs.dilation,
                                          ceil_mode=layer.attrs.ceil_mode)
        return lambda x: F.avg_pool2d(x, layer.attrs.kernel, layer.attrs.stride, (pt, pl),
                                      ceil_mode=layer.attrs.ceil_mode, count_include_pad=layer.count_include_pad)
    if isinstance(layer, LRN):
        return lambda x: F.local_response_norm(x, layer.size, layer.alpha, layer.beta, layer.bias)
    if isinstance(layer, Activation):
        return lambda x: torch_activation(x, layer.activation)
    if isinstance(layer, Softmax):
        return lambda x: torch.softmax(x, 1)
    if isinstance(layer, Concat):
        return lambda *xs: torch.cat(xs, 1)
    if isinstance(layer, Reshape):
        return lambda x: x.reshape(layer.out_shape)
    raise NotImplementedError(f"no torch version of {type(layer).__name__}")


def torch_model(model):
    """A function of the input tensor running the model's layers in torch."""
    steps = [(layer.name, layer.inputs, torch_layer(layer)) for layer in model.layers]
    (source,) = model.input_names

    def forward(x):
        values = {source: x.reshape(model.shapes[source])}
        for name, inputs, fn in steps:
            values[name] = fn(*(values[i] for i in inputs))
        return values[model.output_names[0]]
    return forward


def torch_seconds(fn, args, budget=0.03, most=50):
    """Median seconds of fn(*args) by CUDA events, after warm-up."""
    for _ in range(3):
        fn(*args)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn(*args)
    end.record()
    torch.cuda.synchronize()
    reps = int(np.clip(budget / max(start.elapsed_time(end) * 1e-3, 1e-6), 5, most))
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in pairs:
        a.record()
        fn(*args)
        b.record()
    torch.cuda.synchronize()
    return float(np.median([a.elapsed_time(b) for a, b in pairs])) * 1e-3


def rel_err(actual, expected):
    actual = np.asarray(actual, np.float64).reshape(np.shape(expected))
    expected = np.asarray(expected, np.float64)
    scale = max(np.abs(expected).max(), 1e-30)
    diff = np.abs(actual - expected)
    return float("inf") if np.isnan(diff).any() else float(diff.max() / scale)


# measuring -----------------------------------------------------------------------------
def clnn_seconds(executor, budget=0.03, most=50):
    first = replay_seconds(executor, 2)
    return replay_seconds(executor, int(np.clip(budget / max(first, 1e-6), 5, most)))


def torch_reference(layer, feeds, row):
    """torch's output of ``layer`` on ``feeds`` (timing it into ``row``), or
    clnn's float64 reference where torch is absent; None if that fails."""
    inputs = [v.reshape(shape) for v, shape in zip(feeds.values(), layer.in_shapes)]
    try:
        if torch is None:
            return layer.reference(*inputs)
        fn = torch_layer(layer)
        tensors = [torch.from_numpy(np.ascontiguousarray(v)).cuda() for v in inputs]
        with torch.no_grad():
            expected = fn(*tensors).float().cpu().numpy()
            row["torch_ms"] = torch_seconds(fn, tensors) * 1e3
        return expected
    except Exception as exc:
        row["torch_error"] = f"{type(exc).__name__}: {exc}"
        print(f"  torch: FAILED {row['torch_error'][:400]}", flush=True)
        return None


def bench_layer(layer, batch, model_name, device, results, args):
    """Every candidate of ``layer``; outputs checked against torch's (or,
    where that failed, against the first candidate's)."""
    flops, nbytes = layer.flops(), layer.bytes()
    shape = "x".join(map(str, layer.in_shapes[0]))
    row = {"model": model_name, "layer": layer.name, "op": layer.describe(), "input": shape, "batch": batch,
           "flops": flops, "bytes": nbytes, "torch_ms": None, "candidates": []}
    results["layers"].append(row)
    expected, timed = None, {}  # expected: torch's output, once a candidate has run
    for label, tuning in candidates(layer, device):
        entry = {"label": label}
        row["candidates"].append(entry)
        try:
            target = target_of(device, tuning, args.kind)
            key = launch_key(layer, target)
            if key in timed:
                entry["same_as"] = timed[key]
                continue
            timed[key] = label
            entry["kernels"] = kernel_names(layer, target)
            executor, feeds, output = layer_run(layer, device, target)
            if expected is None:
                expected = torch_reference(layer, feeds, row)
                if expected is None:
                    entry["note"] = "errors are against this candidate"
                    expected = output
            seconds = clnn_seconds(executor)
            del executor
            torch_ms = row["torch_ms"]
            entry.update(ms=seconds * 1e3, tflops=flops / seconds * 1e-12, gbs=nbytes / seconds * 1e-9,
                         vs_torch=None if torch_ms is None else seconds * 1e3 / torch_ms,
                         rel_err=rel_err(output, expected))
        except Exception as exc:  # one candidate failing must not stop the others
            entry["error"] = f"{type(exc).__name__}: {exc}"
            print(f"  {label}: FAILED {entry['error'][:400]}", flush=True)
            if args.verbose:
                traceback.print_exc()
    print_layer(row)


def kernel_names(layer, target):
    return [f"{launch.kernel} {' '.join(o for o in launch.options if o.startswith('-D'))}".strip()
            for launch in layer.launches(target, Box.whole(layer.out_shape))]


def print_layer(row):
    torch_ms = row["torch_ms"]
    best = min((c for c in row["candidates"] if "ms" in c), key=lambda c: c["ms"], default=None)
    head = f"{row['model']:<12} b{row['batch']:<3} {row['op']:<24} {row['input']:<17}"
    print(f"{head} torch {torch_ms:8.3f} ms" if torch_ms is not None else f"{head} (no torch)", flush=True)
    for c in row["candidates"]:
        if "ms" not in c:
            note = f"= {c['same_as']}" if "same_as" in c else "failed"
            print(f"    {c['label']:<24} {note}")
            continue
        ratio = f"{c['vs_torch']:6.2f}x" if c["vs_torch"] is not None else "      "
        mark = " *" if c is best else ""
        bad = "" if c["rel_err"] < 1e-4 else "  ERROR TOO LARGE"
        print(f"    {c['label']:<24} {c['ms']:8.3f} ms {c['tflops']:7.2f} TFLOP/s {c['gbs']:8.1f} GB/s {ratio} "
              f"err {c['rel_err']:.1e}{mark}{bad}", flush=True)


def bench_model(model, batch, device, results, args):
    """The model with the device's tuning: device time of its kernels, wall
    time of a run; torch's forward of the same layers."""
    row = {"model": model.name, "batch": batch}
    results["models"].append(row)
    try:
        executor = Executor(model, Plan.single(model, device), [device],
                            targets={device.id: target_of(device, None, args.kind)})
        feeds = {i.name: np.random.default_rng(0).standard_normal(i.shape).astype(np.float32) for i in model.inputs}
        (output,) = executor.run(feeds)
        walls = []
        for _ in range(5):
            started = time.perf_counter()
            executor.run(feeds)
            walls.append(time.perf_counter() - started)
        row.update(clnn_wall_ms=float(np.median(walls)) * 1e3, clnn_kernels_ms=clnn_seconds(executor, 0.1, 20) * 1e3)
        del executor
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        print(f"{model.name:<12} b{batch:<3} FAILED {row['error'][:400]}", flush=True)
        return
    try:
        if torch is not None:
            fn = torch_model(model)
            (x,) = feeds.values()
            with torch.no_grad():
                tensor = torch.from_numpy(x).cuda()
                expected = fn(tensor).float().cpu().numpy()
                row["torch_ms"] = torch_seconds(fn, [tensor], 0.1, 20) * 1e3
            row["vs_torch"] = row["clnn_kernels_ms"] / row["torch_ms"]
            row["rel_err"] = rel_err(output, expected)
        elif args.quick:
            row["rel_err"] = rel_err(output, model.reference(feeds)[0])
    except Exception as exc:
        row["torch_error"] = f"{type(exc).__name__}: {exc}"
    torch_text = f"torch {row['torch_ms']:8.3f} ms  clnn/torch {row['vs_torch']:5.2f}x" if "torch_ms" in row else ""
    torch_text += f"  err {row['rel_err']:.1e}" if "rel_err" in row else ""
    torch_text += f"  torch FAILED {row['torch_error'][:300]}" if "torch_error" in row else ""
    print(f"{model.name:<12} b{batch:<3} clnn kernels {row['clnn_kernels_ms']:8.3f} ms  "
          f"run {row['clnn_wall_ms']:8.3f} ms  {torch_text}", flush=True)


def pick_device(selector):
    devices = clnn.select(selector)
    if not devices:
        raise SystemExit(f"no device matches {selector!r}")
    return devices[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="nvidia", help="clnn device selector (first match is used)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="16,1")
    parser.add_argument("--stages", default="models,layers")
    parser.add_argument("--budget", type=float, default=240, help="seconds before remaining shapes are skipped")
    parser.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."), "gpu-kernels.json"))
    parser.add_argument("--quick", action="store_true", help="tiny shapes (checks the script)")
    parser.add_argument("--gpu-kernels-on-cpu", action="store_true", help="GPU kernels on a CPU device")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.kind = "gpu" if args.gpu_kernels_on_cpu else None
    started = time.perf_counter()
    if torch is not None:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    device = pick_device(args.devices)
    batches = [int(b) for b in args.batches.split(",")]
    names = ["quick"] if args.quick else args.models.split(",")
    print(f"device {device}; torch {torch.__version__ if torch else 'absent'}"
          f"{' (cuDNN ' + str(torch.backends.cudnn.version()) + ', TF32 off)' if torch else ''}", flush=True)
    results = {"device": str(device), "torch": torch.__version__ if torch else None, "models": [], "layers": [],
               "skipped": [], "tuning": repr(tuning_for(device))}

    def save():
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)

    def models_for(batch):
        return quick_models(batch) if args.quick else {n: get_model(n, batch) for n in names}

    if "models" in args.stages:
        print("== models: kernels replayed (device time), run (wall, with copies), torch (CUDA events)")
        for batch in batches:
            for model in models_for(batch).values():
                if time.perf_counter() - started > args.budget * 0.3:
                    results["skipped"].append(f"model {model.name} b{batch}")
                    continue
                bench_model(model, batch, device, results, args)
                save()
    if "layers" in args.stages:
        print("== layers: candidates (ms, TFLOP/s, GB/s of input+output+weights, clnn/torch, error vs torch)")
        for batch in batches:
            built = models_for(batch)
            for model_name, layer in layer_shapes_of(built, OPS):
                if time.perf_counter() - started > args.budget:
                    results["skipped"].append(f"{model_name} b{batch} {layer.describe()} {layer.in_shapes[0]}")
                    continue
                bench_layer(layer, batch, model_name, device, results, args)
                save()
    if results["skipped"]:
        print(f"skipped for time ({len(results['skipped'])}): {'; '.join(results['skipped'][:20])}"
              f"{' ...' if len(results['skipped']) > 20 else ''}")
    save()
    print(f"done in {time.perf_counter() - started:.0f} s; results in {args.json}")
    return 0


def layer_shapes_of(built, ops):
    """(model name, layer) of every distinct layer shape, the most FLOPs
    first (what a cut-short run leaves out matters least)."""
    seen, found = set(), []
    for name, model in built.items():
        for layer in model.layers:
            if layer.is_view or layer.op not in ops:
                continue
            key = (layer.describe(), tuple(layer.in_shapes[0]), layer.out_shape)
            if key not in seen:
                seen.add(key)
                found.append((name, layer))
    return sorted(found, key=lambda item: -item[1].flops())


if __name__ == "__main__":
    sys.exit(main())
