"""Per-layer comparison on the CPU: each distinct layer shape of the zoo's
networks (as clnn.microbench picks them) on one clnn device against
onnxruntime running the same single layer (exported from clnn) with a
fixed number of threads; benchmarks/cpu_peers.py compares whole networks.

    PYTHONPATH=. python benchmarks/cpu_layers.py --devices portable --threads 2 \\
        --models vgg16,resnet18 [--ops Conv,MaxPool] [--batch 1] [--runs 10] [--json layers.json]

Times are kernel times: clnn's from the queue's profiling events, from the
first kernel's start to the last one's end; onnxruntime's from its profile,
the layer's nodes without the layout conversions it adds around a lone node
(inside a network they run once at each end). The two run in turns, run
after run, after a warm-up; the table shows medians and the ratio
clnn / onnxruntime (above 1: clnn is slower).
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np

from clnn import models
from clnn.executor import Executor
from clnn.graph import single_layer
from clnn.microbench import layer_shapes
from clnn.onnx_export import to_onnx
from clnn.plan import Plan
from clnn.runtime import select
from clnn.timing import kernel_span, random_feeds

# the layout conversions onnxruntime puts around a lone node (NCHW to its blocked NCHWc and back)
ORT_LAYOUT_NODES = ("ReorderInput", "ReorderOutput")


def ort_session(graph, threads):
    """A profiling onnxruntime CPU session of ``graph``, all graph optimisations on."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.gettempdir(), "clnn_ort_profile")
    proto = to_onnx(graph)
    proto.ir_version = min(proto.ir_version, 10)
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ort_kernel_seconds(sess):
    """End ``sess``'s profile; the kernel seconds of each of its runs, less
    the layout conversions."""
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.unlink(path)
    runs, current = [], 0.0
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            if event.get("args", {}).get("op_name") not in ORT_LAYOUT_NODES:
                current += event["dur"] * 1e-6
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            runs.append(current)
            current = 0.0
    return runs


def compare(layer, device, threads, runs, warmup=2):
    """Median kernel seconds of clnn and onnxruntime on one layer."""
    graph = single_layer(layer)
    feeds = random_feeds(graph)
    executor = Executor(graph, Plan.single(graph, device), [device])
    sess = ort_session(graph, threads)
    ort_feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
    ours = []
    for i in range(warmup + runs):
        executor.run(feeds)
        if i >= warmup:
            ours.append(kernel_span(executor.timeline()))
        sess.run(None, ort_feeds)
    return float(np.median(ours)), float(np.median(ort_kernel_seconds(sess)[warmup:]))


def main(argv=None):
    import onnxruntime
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(models.ZOO))
    parser.add_argument("--ops", default="", help="op types to keep (Conv, Gemm, MaxPool, ...); default all")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--devices", default=None, help="one clnn CPU device (default: CLNN_DEVICES)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="onnxruntime intra-op threads (default: this process's cores)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    device = select(args.devices)[0]
    ops = set(filter(None, args.ops.split(",")))
    print(f"batch {args.batch}; clnn on {device.id}; onnxruntime {onnxruntime.__version__} with {args.threads} "
          "threads")
    print(f"{'model':<10} {'layer':<24} {'input':<16} {'MFLOP':>8} {'clnn ms':>9} {'ort ms':>9} "
          f"{'clnn GF/s':>9} {'ort GF/s':>9} {'ratio':>6}")
    results = []
    for model_name, layer in layer_shapes(args.models.split(","), args.batch, ops):
        ours, theirs = compare(layer, device, args.threads, args.runs)
        flop = layer.flops()
        shape = "x".join(map(str, layer.in_shapes[0]))
        row = {"model": model_name, "layer": layer.name, "op": layer.describe(), "input": shape,
               "mflop": flop / 1e6, "clnn_ms": ours * 1e3, "ort_ms": theirs * 1e3,
               "clnn_gflops": flop / ours / 1e9, "ort_gflops": flop / theirs / 1e9, "ratio": ours / theirs}
        results.append(row)
        print(f"{model_name:<10} {row['op']:<24} {shape:<16} {row['mflop']:8.1f} {row['clnn_ms']:9.3f} "
              f"{row['ort_ms']:9.3f} {row['clnn_gflops']:9.1f} {row['ort_gflops']:9.1f} {row['ratio']:6.2f}",
              flush=True)
    if results:
        ours, theirs = (sum(r[k] for r in results) for k in ("clnn_ms", "ort_ms"))
        print(f"sum of the shapes above: clnn {ours:.3f} ms, onnxruntime {theirs:.3f} ms, ratio {ours / theirs:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, "device": device.id, "threads": args.threads,
                       "onnxruntime": onnxruntime.__version__, "runs": args.runs, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
